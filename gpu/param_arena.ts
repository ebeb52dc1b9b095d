/**
 * The parameter arena: many parameter tensors packed into one flat f32 buffer (each slot aligned to
 * the device's storage-offset alignment, padding zeroed), with parallel flat buffers for gradients
 * and optimizer state, so that an optimizer step is one dispatch over the whole buffer. Generic: it
 * knows names, shapes and a weight-decay flag, never layers.
 * @module
 */
import { gpu } from "./device.ts";
import { engine } from "./engine.ts";
import { fillLaunch } from "./kernels/fill.ts";
import { keep } from "./scope.ts";
import { empty, fmtShape, type Tensor, viewOf } from "./tensor.ts";

/** One parameter to pack. */
export interface ParamSpec {
  name: string;
  value: Tensor;
  /** Whether weight decay applies to it. */
  decay: boolean;
}

/** Where one parameter lives in the arena. */
export interface ParamSlot {
  /** The parameter's name. */
  name: string;
  /** The parameter's shape. */
  shape: readonly number[];
  /** Element offset of the slot in the flat buffers. */
  offset: number;
  /** Number of elements (without padding). */
  size: number;
  /** Whether weight decay applies to the parameter. */
  decay: boolean;
}

/** Options for {@link ParamArena.pack}. */
export interface PackOptions {
  /** Also allocate the second optimizer-state buffer (Adam's v) now (default false: on first use). */
  adam?: boolean;
}

function zeroFill(t: Tensor): void {
  if (t.size) engine().dispatch(fillLaunch(t, 0));
}

/**
 * Parameters packed into one flat buffer. Decayed parameters come first: elements
 * `[0, decayCount)` get weight decay, the rest do not. `params[i]` / `grads[i]` are views of the
 * i-th parameter given to {@link ParamArena.pack} (in that order) into the value / gradient buffers.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { initDevice, ParamArena, sgdStep_, tensor } from "@collapse/collapse/gpu";
 *
 * await initDevice();
 * const arena = ParamArena.pack([{ name: "w", value: tensor([1, 2], [2]), decay: true }]);
 * const w = arena.params[0]; // train on the view: layers read it, backward fills arena.grads[0]
 * arena.setGrads([tensor([10, -10], [2])]);
 * sgdStep_(arena, { lr: tensor([0.01], [1]), momentum: 0.9, weightDecay: 0 });
 * assertEquals((await w.array()).map((v) => Math.round(v * 1e6) / 1e6), [0.9, 2.1]);
 * ```
 */
export class ParamArena {
  /** Flat f32 values, `total` elements. */
  readonly flatParams: Tensor;
  /** Flat f32 gradients, parallel to {@link flatParams}. */
  readonly flatGrads: Tensor;
  /** First optimizer-state buffer (SGD momentum, Adam m), zero-initialised. */
  readonly state1: Tensor;
  #state2: Tensor | null = null;
  /** A u32[1] flag that SGD with dampening uses to detect its first step (0 until then). */
  readonly sgdStarted: Tensor;
  /** Value views, in the order given to `pack`. */
  readonly params: Tensor[];
  /** Gradient views, in the order given to `pack`. */
  readonly grads: Tensor[];
  /** Slots, in the order given to `pack`. */
  readonly slots: ParamSlot[];
  /** Total flat length in elements (including padding). */
  readonly total: number;
  /** Number of leading flat elements that get weight decay. */
  readonly decayCount: number;
  #byName = new Map<string, number>();
  #disposed = false;

  private constructor(slots: ParamSlot[], total: number, decayCount: number) {
    this.slots = slots;
    this.total = total;
    this.decayCount = decayCount;
    const n = Math.max(1, total);
    this.flatParams = keep(empty([n], "f32", "arena.params"));
    this.flatGrads = keep(empty([n], "f32", "arena.grads"));
    this.state1 = keep(empty([n], "f32", "arena.state1"));
    this.sgdStarted = keep(empty([1], "u32", "arena.sgdStarted"));
    for (const t of [this.flatParams, this.flatGrads, this.state1, this.sgdStarted]) zeroFill(t);
    this.params = slots.map((s) => keep(viewOf(this.flatParams.storage, s.offset, s.shape)));
    this.grads = slots.map((s) => keep(viewOf(this.flatGrads.storage, s.offset, s.shape)));
    slots.forEach((s, i) => {
      this.#byName.set(s.name, i);
      this.params[i].name = s.name;
      this.params[i].requiresGrad = true;
      this.grads[i].name = s.name + ".grad";
    });
  }

  /**
   * Packs parameters into a new arena, copying each value into its slot (on the GPU). Slots are
   * aligned to `gpu().storageAlign` bytes; decayed parameters are laid out first.
   */
  static pack(params: ParamSpec[], opts: PackOptions = {}): ParamArena {
    const alignElems = Math.max(1, Math.ceil(gpu().storageAlign / 4));
    const names = new Set<string>();
    for (const p of params) {
      if (p.value.dtype !== "f32") {
        throw new Error(`collapse: ParamArena.pack: '${p.name}' is ${p.value.describe()}, not f32`);
      }
      if (names.has(p.name)) {
        throw new Error(`collapse: ParamArena.pack: duplicate parameter name '${p.name}'`);
      }
      names.add(p.name);
    }
    const order = [...params.keys()].sort((a, b) =>
      (params[a].decay === params[b].decay) ? a - b : params[a].decay ? -1 : 1
    );
    const slots: ParamSlot[] = new Array(params.length);
    let offset = 0;
    let decayCount = 0;
    for (const i of order) {
      const p = params[i];
      slots[i] = {
        name: p.name,
        shape: [...p.value.shape],
        offset,
        size: p.value.size,
        decay: p.decay,
      };
      offset += Math.ceil(p.value.size / alignElems) * alignElems;
      if (p.decay) decayCount = offset;
    }
    const maxBytes = gpu().device.limits.maxStorageBufferBindingSize;
    if (offset * 4 > maxBytes) {
      throw new Error(
        `collapse: ParamArena.pack: ${offset} parameters (${offset * 4} bytes) exceed ` +
          `maxStorageBufferBindingSize (${maxBytes})`,
      );
    }
    const arena = new ParamArena(slots, offset, decayCount);
    const e = engine();
    params.forEach((p, i) => {
      if (p.value.size) e.copy(p.value.storage, arena.params[i].storage, p.value.size * 4);
    });
    if (opts.adam) arena.ensureState2();
    return arena;
  }

  /** The slot index of a parameter by name or index; throws if unknown. */
  indexOf(param: string | number): number {
    const i = typeof param === "number" ? param : this.#byName.get(param);
    if (i === undefined || i < 0 || i >= this.slots.length || !Number.isInteger(i)) {
      throw new Error(`collapse: ParamArena: no parameter ${JSON.stringify(param)}`);
    }
    return i;
  }

  /** The value and gradient views of one parameter (by name or pack index). */
  viewOf(param: string | number): { value: Tensor; grad: Tensor; slot: ParamSlot } {
    const i = this.indexOf(param);
    return { value: this.params[i], grad: this.grads[i], slot: this.slots[i] };
  }

  /** The second optimizer-state buffer (Adam's v), if allocated. */
  get state2(): Tensor | null {
    return this.#state2;
  }

  /**
   * Allocates (zeroed) the second optimizer-state buffer if missing. Must happen outside a captured
   * step (call it, or pack with `{adam: true}`, before capturing).
   */
  ensureState2(): Tensor {
    if (this.#state2) return this.#state2;
    if (engine().capturing) {
      throw new Error(
        "collapse: ParamArena: optimizer state allocated inside a captured step; " +
          "pack with {adam: true} or call arena.ensureState2() before capturing",
      );
    }
    this.#state2 = keep(empty([Math.max(1, this.total)], "f32", "arena.state2"));
    zeroFill(this.#state2);
    return this.#state2;
  }

  /**
   * Copies gradients into their slots (GPU copies, no readback); a null gradient zero-fills its
   * slot. `grads` is in the order given to `pack`.
   */
  setGrads(grads: (Tensor | null)[]): void {
    if (grads.length !== this.slots.length) {
      throw new Error(
        `collapse: ParamArena.setGrads: ${grads.length} gradients for ${this.slots.length} params`,
      );
    }
    const e = engine();
    grads.forEach((g, i) => {
      const s = this.slots[i];
      const dst = this.grads[i];
      if (g === null) return zeroFill(dst);
      if (g.size !== s.size || g.dtype !== "f32") {
        throw new Error(
          `collapse: ParamArena.setGrads: gradient ${g.describe()} for '${s.name}' ${
            fmtShape(s.shape)
          }`,
        );
      }
      if (
        g.storage === dst.storage || (g.storage.buffer === dst.storage.buffer &&
          g.storage.byteOffset === dst.storage.byteOffset)
      ) return; // already in place
      if (s.size) e.copy(g.storage, dst.storage, s.size * 4);
    });
  }

  /** Zero-fills all gradients. */
  zeroGrads(): void {
    zeroFill(this.flatGrads);
  }

  /** Frees the arena's buffers (views become unusable). */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const t of [...this.params, ...this.grads]) t.dispose();
    for (const t of [this.flatParams, this.flatGrads, this.state1, this.sgdStarted]) t.dispose();
    this.#state2?.dispose();
  }
}
