/**
 * The GPU tensor: shape, dtype and a reference-counted storage; creation from host arrays, async
 * readback, reshape views, and the autograd fields the ops fill in.
 * @module
 */
import { type DType, dtypeOf, type HostArray, viewFor } from "./dtype.ts";
import { type Bindable, engine, Storage } from "./engine.ts";
import { decodeHalf } from "./half_storage.ts";
import { track } from "./scope.ts";

/** How a tensor was computed, for reverse-mode autograd. */
export interface GradNode {
  /** Op name, for error messages. */
  op: string;
  /** The op's inputs (null where the op takes a non-differentiable argument). */
  inputs: (Tensor | null)[];
  /** Given dL/d(output), returns dL/d(input) for each input (null where none). */
  backward: (dy: Tensor) => (Tensor | null)[];
}

/** Product of a shape's dimensions. */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Formats a shape for messages: [2, 3]. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

function checkShape(shape: readonly number[], where: string): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new Error(`collapse: ${where}: invalid shape ${fmtShape(shape)}`);
    }
  }
}

/** A dense row-major tensor on the GPU. */
export class Tensor {
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
  /** Element type. */
  readonly dtype: DType;
  /** Number of elements (the product of the shape). */
  readonly size: number;
  /** Set on leaves whose gradient is wanted (parameters). */
  requiresGrad = false;
  /** Set by ops when any input requires a gradient. */
  node: GradNode | null = null;
  /** Optional name (parameters), used in messages and checkpoints. */
  name?: string;
  /**
   * Whether the f32 values are stored as IEEE binary16 (2 bytes each, as its storage says; see
   * half_storage.ts): kernels read and write them in f32, the engine adapts their code.
   */
  readonly half: boolean;
  #storage: Storage | null;

  /** Wraps a storage (used by ops; users call {@link tensor}, {@link zeros}, ...). */
  constructor(storage: Storage, shape: readonly number[], dtype: DType = "f32") {
    checkShape(shape, "Tensor");
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.size = sizeOf(shape);
    this.half = storage.half;
    if (this.half && (dtype !== "f32" || this.size % 4 !== 0)) {
      throw new Error(`collapse: half storage needs f32 and a size divisible by 4`);
    }
    if (storage.byteLength < this.#bytes()) {
      throw new Error(
        `collapse: Tensor ${
          fmtShape(shape)
        } needs ${this.#bytes()} bytes, storage has ${storage.byteLength}`,
      );
    }
    this.#storage = storage;
    track(this);
  }

  /** Number of dimensions. */
  get rank(): number {
    return this.shape.length;
  }

  /** The storage; throws if the tensor was disposed. */
  get storage(): Storage {
    if (!this.#storage) {
      throw new Error(`collapse: use of a disposed tensor ${this.describe()}`);
    }
    return this.#storage;
  }

  /** Whether {@link dispose} was called. */
  get disposed(): boolean {
    return this.#storage === null;
  }

  #bytes(): number {
    return this.size * (this.half ? 2 : 4);
  }

  /** A binding of this tensor's bytes for a kernel launch. */
  get binding(): Bindable {
    return this.half
      ? { storage: this.storage, byteLength: this.#bytes(), half: true }
      : { storage: this.storage, byteLength: this.#bytes() };
  }

  /** "f32[2, 3] 'name'" for error messages. */
  describe(): string {
    return `${this.dtype}${fmtShape(this.shape)}${this.name ? ` '${this.name}'` : ""}`;
  }

  /** Frees the tensor's reference to its storage. Idempotent. */
  dispose(): void {
    if (!this.#storage) return;
    engine().release(this.#storage);
    this.#storage = null;
    this.node = null;
  }

  /** Reads the values back to the host (one GPU round trip, >= ~10 ms on Deno). */
  async data(): Promise<HostArray> {
    const [buf] = await engine().read([this.storage]);
    return hostView(this, buf);
  }

  /** Reads back as a plain number array. */
  async array(): Promise<number[]> {
    return Array.from(await this.data());
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`collapse: item() on ${this.describe()}`);
    return (await this.data())[0];
  }
}

/** Reads several tensors back in one round trip. */
export async function readAll(tensors: Tensor[]): Promise<HostArray[]> {
  const bufs = await engine().read(tensors.map((t) => t.storage));
  return bufs.map((b, i) => hostView(tensors[i], b));
}

function hostView(t: Tensor, buf: ArrayBufferLike): HostArray {
  return t.half ? decodeHalf(new Uint16Array(buf, 0, t.size)) : viewFor(t.dtype, buf, 0, t.size);
}

/** A new uninitialised tensor (contents undefined until a kernel writes it). */
export function empty(shape: readonly number[], dtype: DType = "f32", label?: string): Tensor {
  checkShape(shape, "empty");
  return new Tensor(engine().alloc(sizeOf(shape) * 4, label), shape, dtype);
}

/**
 * A new uninitialised f32 tensor stored in half precision (see {@link Tensor.half}; the size must
 * be a multiple of 4).
 */
export function emptyHalf(shape: readonly number[], label?: string): Tensor {
  checkShape(shape, "emptyHalf");
  const storage = engine().alloc(sizeOf(shape) * 2, label);
  storage.half = true;
  return new Tensor(storage, shape, "f32");
}

/**
 * A tensor holding a copy of host data.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { initDevice, tensor } from "@collapse/collapse/gpu";
 *
 * await initDevice();
 * const x = tensor(new Float32Array([1, 2, 3, 4]), [2, 2]);
 * assertEquals(await x.array(), [1, 2, 3, 4]);
 * const labels = tensor([3, 1], [2], "i32"); // plain arrays work too, with a dtype
 * assertEquals([...(await labels.data())], [3, 1]);
 * ```
 */
export function tensor(
  data: HostArray | number[],
  shape?: readonly number[],
  dtype?: DType,
): Tensor {
  const arr: HostArray = Array.isArray(data)
    ? (dtype === "i32"
      ? Int32Array.from(data)
      : dtype === "u32"
      ? Uint32Array.from(data)
      : Float32Array.from(data))
    : data;
  const dt = dtypeOf(arr);
  if (dtype && dtype !== dt) {
    throw new Error(`collapse: tensor(): data is ${dt} but dtype ${dtype} was asked for`);
  }
  const shp = shape ?? [arr.length];
  checkShape(shp, "tensor");
  if (sizeOf(shp) !== arr.length) {
    throw new Error(
      `collapse: tensor(): ${arr.length} values do not fill shape ${fmtShape(shp)} (${
        sizeOf(shp)
      })`,
    );
  }
  const e = engine();
  const storage = e.alloc(arr.length * 4, undefined, true);
  if (arr.length) e.write(storage, arr);
  return new Tensor(storage, shp, dt);
}

/** Overwrites a tensor's contents with host data of the same size and dtype (step inputs). */
export function writeTensor(t: Tensor, data: HostArray): void {
  if (data.length !== t.size || dtypeOf(data) !== t.dtype) {
    throw new Error(
      `collapse: writeTensor: ${dtypeOf(data)}[${data.length}] into ${t.describe()}`,
    );
  }
  engine().write(t.storage, data);
}

/** A view of `t` with another shape of the same size, sharing its storage (no copy). */
export function reshapeView(t: Tensor, shape: readonly number[]): Tensor {
  const n = shape.indexOf(-1);
  let shp = [...shape];
  if (n >= 0) {
    const rest = sizeOf(shape.filter((_, i) => i !== n));
    shp[n] = rest === 0 ? 0 : t.size / rest;
  }
  if (sizeOf(shp) !== t.size || shp.some((d) => !Number.isInteger(d))) {
    throw new Error(`collapse: reshape: cannot view ${t.describe()} as ${fmtShape(shape)}`);
  }
  shp = shp.map((d) => d);
  const s = t.storage;
  s.refs++;
  return new Tensor(s, shp, t.dtype);
}

/** A tensor viewing `size` elements of a shared storage at an element offset (parameter arenas). */
export function viewOf(
  storage: Storage,
  elementOffset: number,
  shape: readonly number[],
  dtype: DType = "f32",
): Tensor {
  if (storage.half) throw new Error("collapse: viewOf: the storage is half-stored");
  const view = new Storage(
    storage.buffer,
    storage.byteOffset + elementOffset * 4,
    sizeOf(shape) * 4,
    null,
  );
  return new Tensor(view, shape, dtype);
}
