/**
 * The dispatcher: encodes every kernel launch of a step into one command encoder and compute pass,
 * caches pipelines (by WGSL source) and immutable uniform buffers (by content), turns WebGPU
 * validation errors into thrown errors that name the kernel, reads tensors back in one round trip,
 * and records a step's dispatch list for replay ({@link CapturedStep}). A launch binding tensors
 * stored in half precision gets its code adapted to them (half_storage.ts).
 *
 * Device-side errors: kernels that index with data (gather indices, class labels) can
 * bind the engine's persistent error words ({@link Engine.errorBinding}, WGSL from
 * {@link deviceErrorWgsl}) and call `report_error(code, value, bound, pos, extra)` with a code from
 * {@link registerDeviceError} when an index is out of range. Every readback ({@link Engine.read})
 * and {@link Engine.sync} copies and clears those words in the same submission (no extra round
 * trip) and throws an Error naming the op. The buffer never moves, so captured steps report too.
 * @module
 */
import { BufferPool, type PoolStats } from "./buffer_pool.ts";
import { gpu } from "./device.ts";
import { halfStorageSource } from "./half_storage.ts";

/** A GPU allocation (or a view into one) that tensors share by reference count. */
export class Storage {
  /** Number of tensors sharing the allocation; at 0 it returns to its pool. */
  refs = 1;
  /** Holds f32 values as binary16 (a half-stored tensor's; copies and views check it). */
  half = false;
  /** A view of `byteLength` bytes of `buffer` from `byteOffset`, with one reference. */
  constructor(
    readonly buffer: GPUBuffer,
    readonly byteOffset: number,
    readonly byteLength: number,
    /** Where the buffer goes when the last reference is dropped; null: owned elsewhere. */
    readonly pool: BufferPool | null,
  ) {}
}

/** One recorded kernel launch. */
export interface DispatchRecord {
  /** Marks a kernel launch. */
  kind: "dispatch";
  /** The kernel name, for errors and profiles. */
  name: string;
  /** The compiled compute pipeline. */
  pipeline: GPUComputePipeline;
  /** The buffers bound for the launch. */
  bindGroup: GPUBindGroup;
  /** Workgroups along x. */
  x: number;
  /** Workgroups along y. */
  y: number;
  /** Workgroups along z. */
  z: number;
  /** Arithmetic work of the launch (GEMMs: 2 M N K), for benches. */
  flops?: number;
}
/** One recorded buffer-to-buffer copy. */
export interface CopyRecord {
  /** Marks a buffer-to-buffer copy. */
  kind: "copy";
  /** The buffer copied from. */
  src: GPUBuffer;
  /** Byte offset in `src`. */
  srcOffset: number;
  /** The buffer copied to. */
  dst: GPUBuffer;
  /** Byte offset in `dst`. */
  dstOffset: number;
  /** Bytes copied. */
  size: number;
}
/** One recorded piece of work of a {@link CapturedStep}. */
export type StepRecord = DispatchRecord | CopyRecord;

/** A binding for {@link Engine.dispatch}: a storage (tensor storage) or raw buffer range. */
export interface Bindable {
  /** The storage to bind (from its byte offset). */
  storage: Storage;
  /** Bytes to bind; defaults to the storage's byteLength. */
  byteLength?: number;
  /** The bytes hold f32 values as binary16 (the kernel's code is adapted; half_storage.ts). */
  half?: boolean;
}

/** A kernel launch description. */
export interface Launch {
  /** Kernel name, used in error messages. */
  name: string;
  /** WGSL source. Must use `@group(0)`; bindings 0..n-1 are `bindings`, binding n the uniforms. */
  code: string;
  /**
   * Storage buffers, in binding order. A kernel that reports device-side errors binds
   * `engine().errorBinding()` like any other buffer, declared with {@link deviceErrorWgsl}.
   */
  bindings: Bindable[];
  /** Uniform block contents (bound after the storage buffers), or undefined for none. */
  uniforms?: ArrayBufferView;
  /** Workgroup counts. */
  workgroups: [number, number?, number?];
  /** Entry point name (default "main"). */
  entryPoint?: string;
  /** Arithmetic work (GEMMs: 2 M N K), kept in the step's records for benches. */
  flops?: number;
}

// ---------------------------------------------------------------- device-side errors

/** What a kernel reported through `report_error` (the first report since the last readback). */
export interface DeviceErrorInfo {
  /** The offending value (an index or label), as i32. */
  value: number;
  /** The exclusive upper bound it violated (e.g. the axis size or the class count). */
  bound: number;
  /** Where it was found (e.g. the position in the index tensor or the row). */
  pos: number;
  /** A kernel-specific extra word (e.g. the axis). */
  extra: number;
}

/** Words of the error buffer: [flag, code, value, bound, pos, extra, unused, unused]. */
const ERROR_WORDS = 8;
const deviceErrors: ((e: DeviceErrorInfo) => string)[] = [];

/**
 * Registers a kind of device-side error (once, at module load) and returns its code for WGSL's
 * `report_error`. `format` writes the message after "collapse: ", e.g. "gather: index 12 ...".
 */
export function registerDeviceError(format: (e: DeviceErrorInfo) => string): number {
  deviceErrors.push(format);
  return deviceErrors.length; // codes start at 1; 0 means "no error"
}

/**
 * WGSL declaring the error words at `@binding(binding)` and
 * `fn report_error(code: u32, value: i32, bound: u32, pos: u32, extra: u32)`, which keeps the
 * first report (later ones are dropped). Bind {@link Engine.errorBinding} there; the kernel must
 * call `report_error` somewhere (pipelines use layout "auto").
 */
export function deviceErrorWgsl(binding: number): string {
  return `
@group(0) @binding(${binding}) var<storage, read_write> collapse_err: array<atomic<u32>, ${ERROR_WORDS}>;
fn report_error(code: u32, value: i32, bound: u32, pos: u32, extra: u32) {
  if (atomicLoad(&collapse_err[0]) != 0u) { return; }
  if (atomicAdd(&collapse_err[0], 1u) != 0u) { return; }
  atomicStore(&collapse_err[1], code);
  atomicStore(&collapse_err[2], bitcast<u32>(value));
  atomicStore(&collapse_err[3], bound);
  atomicStore(&collapse_err[4], pos);
  atomicStore(&collapse_err[5], extra);
}`;
}

/** Counters that benches and tests read. */
export interface EngineStats extends PoolStats {
  /** Kernel launches encoded so far. */
  dispatches: number;
  /** Command buffers submitted so far. */
  submits: number;
  /** Compute pipelines compiled (one per distinct kernel source). */
  pipelines: number;
  /** Uniform buffers cached (one per distinct uniform block). */
  uniformBuffers: number;
  /** Host readbacks (`read` round trips) so far. */
  readbacks: number;
}

/**
 * A recorded step: its dispatch list replays with one encoder and one compute pass per run.
 * Buffers it allocated stay owned by it until {@link CapturedStep.dispose}.
 */
export class CapturedStep {
  /** The recorded launches and copies, replayed in order by {@link CapturedStep.run}. */
  readonly records: StepRecord[] = [];
  /** Buffers first allocated inside the capture (private pool). */
  readonly pool: BufferPool;
  /** Global storages released during capture; they stay reserved while the step lives. */
  readonly adopted: Storage[] = [];
  #disposed = false;

  /** An empty step owned by `engine` (made by {@link Engine.capture}). */
  constructor(private engine: Engine) {
    this.pool = new BufferPool(engine.device);
  }

  /** Number of kernel launches per replay. */
  get dispatchCount(): number {
    return this.records.filter((r) => r.kind === "dispatch").length;
  }

  /** Encodes and submits the recorded work once (after the caller wrote the step's inputs). */
  run(): void {
    if (this.#disposed) throw new Error("collapse: CapturedStep.run after dispose");
    this.engine.replay(this.records);
  }

  /** Frees the buffers the step owns. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.engine.flush();
    for (const s of this.adopted) s.pool?.release(s.buffer, this.engine.batchId);
    this.pool.trim();
  }
}

/** The per-device dispatcher. Use {@link engine} to get it. */
export class Engine {
  /** The device the engine encodes for. */
  readonly device: GPUDevice;
  /** The pool every storage outside a capture comes from. */
  readonly pool: BufferPool;
  /** Id of the submission currently being encoded. */
  batchId = 1;
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #batchKernels: string[] = [];
  #pipelines = new Map<string, { pipeline: GPUComputePipeline; name: string }>();
  #halfSources = new Map<string, string>();
  #uniforms = new Map<string, GPUBuffer>();
  #errors: Promise<Error | null>[] = [];
  #firstError: Error | null = null;
  #capture: CapturedStep | null = null;
  #stats = { dispatches: 0, submits: 0, readbacks: 0 };
  /** The persistent device-side error words (see {@link deviceErrorWgsl}). */
  #errorWords: Storage;

  /** The dispatcher of `device` (one per device; {@link engine} returns it). */
  constructor(device: GPUDevice) {
    this.device = device;
    this.pool = new BufferPool(device);
    const errBuf = device.createBuffer({
      size: ERROR_WORDS * 4,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      label: "collapse_error_words",
    }); // zero-initialised by WebGPU
    this.#errorWords = new Storage(errBuf, 0, ERROR_WORDS * 4, null);
    device.addEventListener("uncapturederror", (e) => {
      const err = (e as GPUUncapturedErrorEvent).error;
      this.#firstError ??= new Error(`collapse: WebGPU error: ${err.message}`);
    });
  }

  /** Throws a pending asynchronous GPU error, if one is known already. */
  throwIfFailed(): void {
    if (this.#firstError) {
      const e = this.#firstError;
      this.#firstError = null; // reported once; the device stays usable for later work
      throw e;
    }
  }

  /** The binding of the persistent device-side error words, for kernels that report errors. */
  errorBinding(): Bindable {
    return { storage: this.#errorWords };
  }

  /** Allocates storage of `byteLength` bytes (from the capture's pool while capturing). */
  alloc(byteLength: number, label?: string, forUpload = false): Storage {
    this.throwIfFailed();
    const bytes = Math.max(4, Math.ceil(byteLength / 4) * 4);
    const pool = this.#capture ? this.#capture.pool : this.pool;
    if (forUpload && this.#capture) {
      throw new Error(
        `collapse: host data uploaded inside a captured step${label ? ` (${label})` : ""}; ` +
          "write step inputs into tensors allocated before capture instead",
      );
    }
    const buffer = pool.acquire(bytes, this.batchId, forUpload, label);
    return new Storage(buffer, 0, byteLength, pool);
  }

  /** Drops one reference; the buffer returns to its pool at zero. */
  release(s: Storage): void {
    if (--s.refs > 0 || !s.pool) return;
    if (this.#capture && s.pool === this.pool) {
      this.#capture.adopted.push(s);
      return;
    }
    s.pool.release(s.buffer, this.batchId);
  }

  /** Writes host data into a storage. Flushes first if encoded work is pending. */
  write(s: Storage, data: ArrayBufferView, byteOffset = 0): void {
    if (this.#capture) {
      throw new Error(
        "collapse: host data written inside a captured step; write inputs before run()",
      );
    }
    if (this.#encoder) this.flush();
    this.device.queue.writeBuffer(
      s.buffer,
      s.byteOffset + byteOffset,
      data.buffer as ArrayBuffer,
      data.byteOffset,
      data.byteLength,
    );
  }

  /** Encodes a kernel launch into the current pass (and records it while capturing). */
  dispatch(launch: Launch): void {
    this.throwIfFailed();
    let half: number[] | null = null;
    for (let i = 0; i < launch.bindings.length; i++) {
      const b = launch.bindings[i];
      if (b.storage.half !== !!b.half) {
        throw new Error(
          `collapse: kernel ${launch.name}: binding ${i} ${
            b.half ? "says half storage for" : "binds"
          } a ${b.storage.half ? "half-stored" : "f32"} buffer${
            b.half ? "" : " without saying so (bind tensor.binding)"
          }`,
        );
      }
      if (b.half) (half ??= []).push(i);
    }
    if (half) launch = { ...launch, code: this.#halfSource(launch, half) };
    const { pipeline } = this.#pipeline(launch);
    const entries: GPUBindGroupEntry[] = launch.bindings.map((b, i) => ({
      binding: i,
      resource: {
        buffer: b.storage.buffer,
        offset: b.storage.byteOffset,
        size: Math.max(4, Math.ceil((b.byteLength ?? b.storage.byteLength) / 4) * 4),
      },
    }));
    if (launch.uniforms) {
      entries.push({
        binding: launch.bindings.length,
        resource: { buffer: this.#uniformBuffer(launch.uniforms) },
      });
    }
    this.#ensurePass();
    const bindGroup = this.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries,
      label: launch.name,
    });
    const [x, y = 1, z = 1] = launch.workgroups;
    const maxDim = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxDim || y > maxDim || z > maxDim || x < 0 || y < 0 || z < 0) {
      throw new Error(
        `collapse: kernel ${launch.name} asked for workgroups [${x}, ${y}, ${z}] ` +
          `(limit ${maxDim} per dimension)`,
      );
    }
    if (x === 0 || y === 0 || z === 0) return;
    const rec: DispatchRecord = {
      kind: "dispatch",
      name: launch.name,
      pipeline,
      bindGroup,
      x,
      y,
      z,
      flops: launch.flops,
    };
    this.#encode(rec);
    this.#capture?.records.push(rec);
  }

  /** Encodes a buffer copy (ends the compute pass; the next dispatch opens a new one). */
  copy(src: Storage, dst: Storage, byteLength = src.byteLength, srcOffset = 0, dstOffset = 0) {
    if (src.half !== dst.half) {
      throw new Error("collapse: a copy between a half-stored and an f32 buffer would mix formats");
    }
    const rec: CopyRecord = {
      kind: "copy",
      src: src.buffer,
      srcOffset: src.byteOffset + srcOffset,
      dst: dst.buffer,
      dstOffset: dst.byteOffset + dstOffset,
      size: Math.ceil(byteLength / 4) * 4,
    };
    this.#ensureEncoder();
    this.#encode(rec);
    this.#capture?.records.push(rec);
  }

  #encode(rec: StepRecord): void {
    if (rec.kind === "dispatch") {
      const pass = this.#ensurePass();
      pass.setPipeline(rec.pipeline);
      pass.setBindGroup(0, rec.bindGroup);
      pass.dispatchWorkgroups(rec.x, rec.y, rec.z);
      this.#batchKernels.push(rec.name);
      this.#stats.dispatches++;
    } else {
      this.#endPass();
      this.#ensureEncoder().copyBufferToBuffer(
        rec.src,
        rec.srcOffset,
        rec.dst,
        rec.dstOffset,
        rec.size,
      );
    }
  }

  /** Re-encodes recorded work and submits it. */
  replay(records: StepRecord[]): void {
    this.#ensureEncoder();
    for (const r of records) this.#encode(r);
    this.flush();
  }

  /** Ends the pass and submits everything encoded so far. */
  flush(): void {
    if (!this.#encoder || this.#capture) return;
    this.#endPass();
    const kernels = this.#batchKernels;
    this.#batchKernels = [];
    const cmd = this.#encoder.finish();
    this.#encoder = null;
    this.device.queue.submit([cmd]);
    this.#stats.submits++;
    this.batchId++;
    const scope = this.device.popErrorScope().then((err) =>
      err
        ? new Error(
          `collapse: GPU validation error in a submission of [${
            summarise(kernels)
          }]: ${err.message}`,
        )
        : null
    );
    this.#errors.push(scope);
  }

  /** Waits for all submitted work and throws the first error any of it raised. */
  async sync(): Promise<void> {
    if (this.#capture) {
      this.flush(); // a no-op while capturing, as before
      await this.device.queue.onSubmittedWorkDone();
      return await this.#drainErrors();
    }
    // The error words ride along with the submission, as in read().
    this.#ensureEncoder();
    this.#endPass();
    const errStage = this.#stageErrorWords();
    this.flush();
    await errStage.mapAsync(GPUMapMode.READ);
    const words = this.#takeWords(errStage);
    await this.#drainErrors();
    this.#throwDeviceError(words);
  }

  /** Copies the error words into a new staging buffer and clears them (in the open encoder). */
  #stageErrorWords(): GPUBuffer {
    const buf = this.device.createBuffer({
      size: ERROR_WORDS * 4,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const enc = this.#encoder!;
    enc.copyBufferToBuffer(this.#errorWords.buffer, 0, buf, 0, ERROR_WORDS * 4);
    enc.clearBuffer(this.#errorWords.buffer, 0, ERROR_WORDS * 4);
    return buf;
  }

  #takeWords(buf: GPUBuffer): Uint32Array {
    const words = new Uint32Array(buf.getMappedRange().slice(0));
    buf.unmap();
    buf.destroy();
    return words;
  }

  /** Throws the error a kernel reported in `words`, if any. */
  #throwDeviceError(words: Uint32Array): void {
    if (words[0] === 0) return;
    const format = deviceErrors[words[1] - 1];
    const info: DeviceErrorInfo = {
      value: words[2] | 0,
      bound: words[3],
      pos: words[4],
      extra: words[5],
    };
    const what = format ? format(info) : `unknown device error code ${words[1]}`;
    throw new Error(`collapse: ${what} (detected on the GPU)`);
  }

  async #drainErrors(): Promise<void> {
    const pending = this.#errors;
    this.#errors = [];
    for (const e of await Promise.all(pending)) if (e) this.#firstError ??= e;
    this.throwIfFailed();
  }

  /** Copies storages to the host in one round trip. */
  async read(storages: Storage[]): Promise<ArrayBuffer[]> {
    if (this.#capture) throw new Error("collapse: tensor readback inside a captured step");
    this.#ensureEncoder();
    this.#endPass();
    const staging = storages.map((s) => {
      const size = Math.max(4, Math.ceil(s.byteLength / 4) * 4);
      const buf = this.device.createBuffer({
        size,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
      this.#encoder!.copyBufferToBuffer(s.buffer, s.byteOffset, buf, 0, size);
      return buf;
    });
    const errStage = this.#stageErrorWords(); // same submission, no extra sync
    this.flush();
    this.#stats.readbacks++;
    await Promise.all([...staging, errStage].map((b) => b.mapAsync(GPUMapMode.READ)));
    const words = this.#takeWords(errStage);
    const outs = staging.map((b, i) => {
      const out = b.getMappedRange().slice(0, storages[i].byteLength);
      b.unmap();
      b.destroy();
      return out;
    });
    await this.#drainErrors();
    this.#throwDeviceError(words);
    return outs;
  }

  /** Records every launch made by `fn` (without running it) into a {@link CapturedStep}. */
  capture<T>(fn: () => T): { step: CapturedStep; result: T } {
    if (this.#capture) throw new Error("collapse: nested step capture");
    this.flush();
    const step = new CapturedStep(this);
    this.#capture = step;
    // Record only: the work encoded while capturing is discarded, then replayed by step.run().
    let result: T;
    try {
      result = fn();
    } finally {
      this.#capture = null;
      this.#discardEncoded();
    }
    return { step, result };
  }

  /** Records of the capture being recorded (0 when none): the index the next record gets. */
  get capturedRecords(): number {
    return this.#capture?.records.length ?? 0;
  }

  /** Whether a capture is being recorded. */
  get capturing(): boolean {
    return this.#capture !== null;
  }

  #discardEncoded(): void {
    if (!this.#encoder) return;
    this.#endPass();
    this.#encoder.finish();
    this.#encoder = null;
    this.#batchKernels = [];
    const scope = this.device.popErrorScope().then((err) =>
      err
        ? new Error(`collapse: GPU validation error while capturing a step: ${err.message}`)
        : null
    );
    this.#errors.push(scope);
    this.batchId++;
  }

  /** Dispatch/submit/pool counters. */
  stats(): EngineStats {
    return {
      ...this.#stats,
      ...this.pool.stats(),
      pipelines: this.#pipelines.size,
      uniformBuffers: this.#uniforms.size,
    };
  }

  #ensureEncoder(): GPUCommandEncoder {
    if (!this.#encoder) {
      this.device.pushErrorScope("validation");
      this.#encoder = this.device.createCommandEncoder();
    }
    return this.#encoder;
  }

  #ensurePass(): GPUComputePassEncoder {
    if (!this.#pass) this.#pass = this.#ensureEncoder().beginComputePass();
    return this.#pass;
  }

  #endPass(): void {
    if (this.#pass) {
      this.#pass.end();
      this.#pass = null;
    }
  }

  /** A launch's code with half-stored bindings (memoised: eager steps launch the same code often). */
  #halfSource(launch: Launch, half: number[]): string {
    const key = `${half.join(",")}\n${launch.code}`;
    let code = this.#halfSources.get(key);
    if (code === undefined) {
      code = halfStorageSource(launch.code, half, launch.name);
      this.#halfSources.set(key, code);
    }
    return code;
  }

  #pipeline(launch: Launch): { pipeline: GPUComputePipeline; name: string } {
    const key = launch.entryPoint ? launch.entryPoint + "\n" + launch.code : launch.code;
    let p = this.#pipelines.get(key);
    if (p) return p;
    this.device.pushErrorScope("validation");
    const module = this.device.createShaderModule({ code: launch.code, label: launch.name });
    const pipeline = this.device.createComputePipeline({
      layout: "auto",
      compute: { module, entryPoint: launch.entryPoint ?? "main" },
      label: launch.name,
    });
    const name = launch.name;
    this.#errors.push(
      this.device.popErrorScope().then((err) =>
        err ? new Error(`collapse: kernel ${name} failed to compile: ${err.message}`) : null
      ),
    );
    p = { pipeline, name };
    this.#pipelines.set(key, p);
    return p;
  }

  #uniformBuffer(data: ArrayBufferView): GPUBuffer {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const words = new Uint32Array(Math.ceil(bytes.length / 4));
    new Uint8Array(words.buffer).set(bytes);
    const key = words.join(",");
    let buf = this.#uniforms.get(key);
    if (buf) return buf;
    const size = Math.max(16, Math.ceil(words.byteLength / 16) * 16);
    buf = this.device.createBuffer({
      size,
      usage: GPUBufferUsage.UNIFORM,
      mappedAtCreation: true,
    });
    new Uint32Array(buf.getMappedRange()).set(words);
    buf.unmap();
    this.#uniforms.set(key, buf);
    return buf;
  }
}

function summarise(names: string[]): string {
  const uniq = [...new Set(names)];
  return uniq.length > 12
    ? uniq.slice(0, 12).join(", ") + `, ... (${uniq.length} kernels)`
    : uniq.join(", ");
}

let theEngine: Engine | null = null;

/** The engine of the device acquired by `initDevice()`. */
export function engine(): Engine {
  const { device } = gpu();
  if (!theEngine || theEngine.device !== device) theEngine = new Engine(device);
  return theEngine;
}
