/**
 * The data loader: turns a source (an in-memory ImageArray or a shard folder), a sampler and an
 * augmentation into an async stream of float32 NHWC batches. With `workers: 1` the batches are made
 * in a Worker (./loader_worker.ts) with `prefetch` batches in flight, so decoding and augmentation
 * overlap training; with `workers: 0` they are made inline. Both give identical batches: the order
 * comes from the sampler (seed, epoch) and augmentation randomness from (seed, epoch, batch number).
 * @module
 */

import type { Batch, ImageArray } from "./types.ts";
import type { AugmentSpec } from "./augment.ts";
import {
  BatchMaker,
  type ImageSource,
  MemorySource,
  ShardSource,
  type SourceSpec,
} from "./batch_maker.ts";
import { classCounts } from "./long_tail.ts";
import { makeSampler, type Sampler, type SamplerKind } from "./samplers.ts";
import { loadShardsToMemory, readManifest } from "./shards/reader.ts";
import type { WorkerRequest } from "./loader_worker.ts";

/** Options of {@link Loader}. */
export interface LoaderOptions {
  /** An in-memory dataset, or the path of a shard folder. */
  source: ImageArray | string;
  /** A sampler, or a kind built over the source's labels (default "instance": plain shuffle). */
  sampler?: Sampler | SamplerKind;
  batchSize: number;
  /** Drop the last incomplete batch (default false). */
  dropLast?: boolean;
  augment: AugmentSpec;
  /** Seed of the sampler (when built from a kind) and of augmentation (default 0). */
  seed?: number;
  /** Epoch used by `batches()` without an argument (default 0). */
  epoch?: number;
  /** Indices per epoch, for samplers built from a kind (default: the dataset size). */
  epochLength?: number;
  /** Total epochs, for the "progressive" sampler (default 200). */
  totalEpochs?: number;
  /** 0: make batches inline; 1 (default): in a worker. */
  workers?: 0 | 1;
  /** Batches in flight with a worker (default 3). */
  prefetch?: number;
  /**
   * Raw shard folders up to this many bytes are loaded into memory instead of read per record
   * (default 2 GiB).
   */
  memoryLimitBytes?: number;
}

interface Deferred {
  resolve(b: Batch): void;
  reject(e: Error): void;
  promise: Promise<Batch>;
}

function deferred(): Deferred {
  let resolve!: (b: Batch) => void, reject!: (e: Error) => void;
  const promise = new Promise<Batch>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {}); // rejections are observed where awaited
  return { resolve, reject, promise };
}

/**
 * Batches of a dataset, epoch after epoch.
 *
 * @example
 * ```ts
 * import { Loader } from "./loader.ts";
 * import { syntheticDataset } from "./synthetic.ts";
 * import { DATASET_STATS } from "./normalize.ts";
 * const { train } = syntheticDataset({ ratio: 0.1 });
 * const loader = new Loader({
 *   source: train,
 *   batchSize: 128,
 *   augment: { kind: "crop_flip", pad: 4, ...DATASET_STATS.synthetic },
 *   seed: 1,
 *   workers: 0,
 * });
 * for await (const batch of loader.batches(0)) console.log(batch.shape, batch.labels[0]);
 * loader.close();
 * ```
 */
export class Loader {
  readonly options: LoaderOptions;
  #init: Promise<{ source: ImageSource; spec: SourceSpec; sampler: Sampler }> | null = null;
  #worker: Worker | null = null;
  #workerReady: Promise<void> | null = null;
  #pending = new Map<string, Deferred>();
  #epochId = 0;
  #failure: Error | null = null;
  #samplerLength: number | null = null;
  #classCounts: number[] | null = null;

  constructor(options: LoaderOptions) {
    if (!(Number.isInteger(options.batchSize) && options.batchSize > 0)) {
      throw new Error(`Loader: bad batchSize ${options.batchSize}`);
    }
    this.options = options;
  }

  /** Resolves the source and sampler (done by `batches` on first use). */
  ready(): Promise<{ source: ImageSource; spec: SourceSpec; sampler: Sampler }> {
    this.#init ??= this.#setup();
    return this.#init;
  }

  async #setup() {
    const o = this.options;
    let source: ImageSource;
    let spec: SourceSpec;
    if (typeof o.source === "string") {
      const m = await readManifest(o.source);
      const bytes = m.shape ? m.total * m.shape[0] * m.shape[1] * m.shape[2] : Infinity;
      if (m.kind === "raw" && bytes <= (o.memoryLimitBytes ?? 2 ** 31)) {
        const arr = await loadShardsToMemory(o.source);
        source = new MemorySource(arr);
        spec = memorySpec(arr, (o.workers ?? 1) === 1);
      } else {
        source = await ShardSource.open(o.source);
        spec = { kind: "shards", dir: o.source };
      }
    } else {
      source = new MemorySource(o.source);
      spec = memorySpec(o.source, (o.workers ?? 1) === 1);
    }
    const sampler = typeof o.sampler === "object" ? o.sampler : makeSampler(
      o.sampler ?? "instance",
      source.labels,
      source.numClasses,
      { seed: o.seed ?? 0, epochLength: o.epochLength, totalEpochs: o.totalEpochs },
    );
    this.#samplerLength = sampler.length;
    this.#classCounts = classCounts(source.labels, source.numClasses);
    return { source, spec, sampler };
  }

  /**
   * Batches per epoch, so that `fit` can size its progress bar and per-step schedules. Known up
   * front for an in-memory source, an explicit sampler or `epochLength`; for a shard folder after
   * `await loader.ready()` (0 before).
   */
  batchesPerEpoch(_epoch = 0): number {
    const o = this.options;
    const length = typeof o.sampler === "object" ? o.sampler.length : o.epochLength ??
      (typeof o.source === "string" ? this.#samplerLength : o.source.labels.length);
    return length === null ? 0 : this.numBatches(length);
  }

  /**
   * Images per class of the source (what `fit`'s `classWeight: "balanced"` weighs by). Known up
   * front for an in-memory source; for a shard folder after `await loader.ready()`.
   */
  classCounts(): number[] {
    if (this.#classCounts) return [...this.#classCounts];
    const src = this.options.source;
    if (typeof src === "string") {
      throw new Error(`Loader: classCounts() of ${src} needs \`await loader.ready()\` first`);
    }
    return classCounts(src.labels, src.numClasses);
  }

  /** Number of batches of an epoch (after `ready()`), for a sampler of `length` indices. */
  numBatches(length: number): number {
    const bs = this.options.batchSize;
    return this.options.dropLast ? Math.floor(length / bs) : Math.ceil(length / bs);
  }

  /** The batches of `epoch` (default: options.epoch), in sampler order. */
  async *batches(epoch = this.options.epoch ?? 0): AsyncGenerator<Batch> {
    const { source, spec, sampler } = await this.ready();
    const indices = sampler.epochIndices(epoch);
    const bs = this.options.batchSize;
    const nb = this.numBatches(indices.length);
    const seed = this.options.seed ?? 0;
    const count = (b: number) => Math.min(bs, indices.length - b * bs);
    if ((this.options.workers ?? 1) === 0) {
      const maker = new BatchMaker(source, this.options.augment, seed);
      for (let b = 0; b < nb; b++) yield await maker.make(indices, b * bs, count(b), epoch, b);
      return;
    }
    const worker = await this.#startWorker(spec, seed);
    const epochId = ++this.#epochId;
    worker.postMessage({ type: "epoch", epochId, epoch, indices } satisfies WorkerRequest);
    const prefetch = Math.max(1, this.options.prefetch ?? 3);
    const request = (b: number) => {
      const d = deferred();
      this.#pending.set(`${epochId}:${b}`, d);
      worker.postMessage(
        {
          type: "batch",
          epochId,
          batchNo: b,
          start: b * bs,
          count: count(b),
        } satisfies WorkerRequest,
      );
    };
    try {
      for (let b = 0; b < Math.min(prefetch, nb); b++) request(b);
      for (let b = 0; b < nb; b++) {
        const d = this.#pending.get(`${epochId}:${b}`)!;
        const batch = await d.promise;
        this.#pending.delete(`${epochId}:${b}`);
        if (b + prefetch < nb) request(b + prefetch);
        yield batch;
      }
    } finally {
      for (const key of [...this.#pending.keys()]) {
        if (key.startsWith(`${epochId}:`)) this.#pending.delete(key);
      }
    }
  }

  #startWorker(spec: SourceSpec, seed: number): Promise<Worker> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (!this.#worker) {
      const w = new Worker(new URL("./loader_worker.ts", import.meta.url).href, { type: "module" });
      this.#worker = w;
      let ready!: () => void, fail!: (e: Error) => void;
      this.#workerReady = new Promise<void>((res, rej) => {
        ready = res;
        fail = rej;
      });
      this.#workerReady.catch(() => {});
      w.onmessage = (e: MessageEvent) => {
        const m = e.data;
        if (m.type === "ready") ready();
        else if (m.type === "batch") {
          const d = this.#pending.get(`${m.epochId}:${m.batchNo}`);
          d?.resolve({ images: m.images, labels: m.labels, shape: m.shape });
        } else if (m.type === "error") {
          const err = new Error(`Loader worker: ${m.message}`);
          if (m.epochId === undefined) {
            fail(err);
            this.#failAll(err);
          } else this.#pending.get(`${m.epochId}:${m.batchNo}`)?.reject(err);
        }
      };
      w.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        const err = new Error(`Loader worker crashed: ${e.message}`);
        fail(err);
        this.#failAll(err);
      };
      w.postMessage(
        { type: "init", source: spec, augment: this.options.augment, seed } satisfies WorkerRequest,
      );
    }
    return this.#workerReady!.then(() => this.#worker!);
  }

  #failAll(err: Error): void {
    this.#failure = err;
    for (const d of this.#pending.values()) d.reject(err);
  }

  /** Stops the worker (if any). The loader can be used again afterwards (a new worker starts). */
  close(): void {
    this.#worker?.terminate();
    this.#worker = null;
    this.#workerReady = null;
    const err = new Error("Loader closed");
    for (const d of this.#pending.values()) d.reject(err);
    this.#pending.clear();
    this.#failure = null;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** A memory source spec; with `shared`, pixels are copied once into a SharedArrayBuffer. */
function memorySpec(a: ImageArray, shared: boolean): SourceSpec {
  let images = a.images;
  if (shared && !(images.buffer instanceof SharedArrayBuffer)) {
    const sab = new SharedArrayBuffer(images.length);
    const copy = new Uint8Array(sab);
    copy.set(images);
    images = copy as unknown as Uint8Array;
  }
  return {
    kind: "memory",
    images,
    labels: a.labels,
    height: a.height,
    width: a.width,
    channels: a.channels,
    numClasses: a.numClasses,
  };
}
