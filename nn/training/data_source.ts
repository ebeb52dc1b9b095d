/**
 * In-memory data for `fit`/`evaluate`/`predict`, Keras style: {@link arraySource} turns host arrays
 * (or GPU tensors) x and integer labels y into a {@link DataSource} of batches (shuffled per epoch
 * from a seed, last batch smaller), {@link splitArrays} takes Keras' `validationSplit` (the last
 * fraction of the examples, before shuffling), and {@link toDataSource} accepts what a data argument
 * may be: a DataSource (e.g. a data Loader) or an array of batches.
 * @module
 */
import { Rng } from "../../gpu/rng.ts";
import { sizeOf, Tensor } from "../../gpu/tensor.ts";
import type { Batch } from "../../data/types.ts";
import { checkOptions, type OptionKeys, optionKeys } from "../options.ts";
import type { DataSource } from "./state.ts";

/** Nested arrays of numbers (e.g. `[[0.1, 0.2], [0.3, 0.4]]` for two examples of 2 features). */
export type NestedArray = number[] | NestedArray[];

/**
 * Inputs x held in memory: a GPU {@link Tensor} (batch first), `{ data, shape }` (row-major, batch
 * first), nested arrays, or a flat typed array / number array (its per-example shape is taken from
 * `inputShape`, else the examples are vectors: [N, x.length / N]).
 */
export type ArrayInput =
  | Tensor
  | { data: Float32Array | Uint8Array | number[]; shape: readonly number[] }
  | Float32Array
  | Uint8Array
  | NestedArray;

/** Integer class labels y in [0, K): a typed array, a number array or a GPU tensor [N]. */
export type LabelInput = Int32Array | Uint8Array | Uint16Array | Float32Array | number[] | Tensor;

/** What a data argument may be: a {@link DataSource} or an array of batches (every epoch the same). */
export type DataInput = DataSource | Batch[];

/** Options of {@link arraySource}. */
export interface ArraySourceOptions {
  /** Examples per batch (default 32, as Keras); the last batch of an epoch may be smaller. */
  batchSize?: number;
  /** Shuffle the examples every epoch (default false). */
  shuffle?: boolean;
  /** Seed of the shuffling (combined with the epoch; default 0). */
  seed?: number;
  /** Per-example shape of flat x (e.g. [32, 32, 3]); default [x.length / N]. */
  inputShape?: readonly number[];
  /** Number of classes for `classCounts()` (default: largest label + 1). */
  numClasses?: number;
}

const ARRAY_SOURCE_KEYS: OptionKeys = optionKeys<ArraySourceOptions>({
  batchSize: true,
  shuffle: true,
  seed: true,
  inputShape: true,
  numClasses: true,
});

/** Host arrays x [N, ...] and labels y [N], validated. */
export interface HostArrays {
  /** The examples, row-major. */
  x: Float32Array;
  /** Shape of x, batch first. */
  shape: number[];
  /** One label per example. */
  y: Int32Array;
}

function isBatch(b: unknown): b is Batch {
  const o = b as Batch;
  return typeof o === "object" && o !== null && o.images instanceof Float32Array &&
    o.labels instanceof Int32Array && Array.isArray(o.shape);
}

/** Whether `d` can serve as data directly (a DataSource or an array of batches). */
export function isDataInput(d: unknown): d is DataInput {
  if (Array.isArray(d)) return d.length > 0 && d.every(isBatch);
  return typeof d === "object" && d !== null && !(d instanceof Tensor) &&
    typeof (d as DataSource).batches === "function";
}

/**
 * A DataSource for a data argument: a DataSource as is, an array of batches as a source that
 * yields them in order every epoch. Throws naming `where` for anything else.
 */
export function toDataSource(data: DataInput, where: string): DataSource {
  if (Array.isArray(data)) {
    if (!data.length) throw new Error(`collapse: ${where}: the array of batches is empty`);
    data.forEach((b, i) => {
      if (!isBatch(b)) {
        throw new Error(
          `collapse: ${where}: element ${i} of the batch array is not a Batch ` +
            "{ images: Float32Array, labels: Int32Array, shape }",
        );
      }
    });
    const batches = data;
    return { batches: () => batches, batchesPerEpoch: () => batches.length };
  }
  if (typeof data !== "object" || data === null || typeof data.batches !== "function") {
    throw new Error(
      `collapse: ${where}: data must be a DataSource (an object with batches(epoch), such as a ` +
        `Loader) or an array of batches; for arrays x, y call ${
          where.replace("()", "")
        }(x, y, ...)`,
    );
  }
  return data;
}

function nestedShape(a: NestedArray, where: string): number[] {
  const shape: number[] = [];
  let cur: unknown = a;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    if (!cur.length) break;
    cur = cur[0];
  }
  if (typeof cur !== "number" && shape[shape.length - 1] !== 0) {
    throw new Error(`collapse: ${where}: x must hold numbers, found ${typeof cur}`);
  }
  return shape;
}

function flattenNested(a: NestedArray, shape: number[], where: string): Float32Array {
  const out = new Float32Array(sizeOf(shape));
  let k = 0;
  const walk = (v: unknown, depth: number) => {
    if (depth === shape.length) {
      if (typeof v !== "number") throw new Error(`collapse: ${where}: x must hold numbers`);
      out[k++] = v;
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[depth]) {
      throw new Error(
        `collapse: ${where}: x is ragged (expected length ${shape[depth]} at depth ${depth})`,
      );
    }
    for (const e of v) walk(e, depth + 1);
  };
  walk(a, 0);
  return out;
}

function checkLabelValues(y: ArrayLike<number>, where: string): Int32Array {
  const out = new Int32Array(y.length);
  for (let i = 0; i < y.length; i++) {
    const v = y[i];
    if (!Number.isInteger(v) || v < 0) {
      throw new Error(
        `collapse: ${where}: y must hold integer class labels >= 0; y[${i}] is ${v}` +
          " (one-hot targets: pass their argmax)",
      );
    }
    out[i] = v;
  }
  return out;
}

/**
 * Reads and validates x and y into host arrays (GPU tensors are read back once): x gets its shape
 * (batch first), y must hold N integer labels for the N examples of x.
 */
export async function hostArrays(
  x: ArrayInput,
  y: LabelInput,
  where: string,
  inputShape?: readonly number[],
): Promise<HostArrays> {
  let ys: ArrayLike<number>;
  if (y instanceof Tensor) {
    if (y.rank !== 1) {
      throw new Error(`collapse: ${where}: y must be labels [N], got ${y.describe()}`);
    }
    ys = await y.data() as ArrayLike<number>;
  } else if (Array.isArray(y) || ArrayBuffer.isView(y)) ys = y as ArrayLike<number>;
  else {
    throw new Error(`collapse: ${where}: y must be an array of integer labels or a Tensor`);
  }
  const labels = checkLabelValues(ys, where);
  const n = labels.length;
  if (n === 0) throw new Error(`collapse: ${where}: no examples (y is empty)`);
  let data: Float32Array;
  let shape: number[];
  if (x instanceof Tensor) {
    data = Float32Array.from(await x.data() as ArrayLike<number>);
    shape = [...x.shape];
  } else if (x instanceof Float32Array || x instanceof Uint8Array) {
    data = x instanceof Float32Array ? x : Float32Array.from(x);
    shape = [n, ...(inputShape ?? [x.length / n])];
  } else if (Array.isArray(x)) {
    const nested = x.length > 0 && Array.isArray(x[0]);
    if (nested) {
      shape = nestedShape(x, where);
      data = flattenNested(x, shape, where);
    } else {
      data = Float32Array.from(x as number[]);
      shape = [n, ...(inputShape ?? [x.length / n])];
    }
  } else if (typeof x === "object" && x !== null && "data" in x && "shape" in x) {
    data = x.data instanceof Float32Array ? x.data : Float32Array.from(x.data);
    shape = [...x.shape];
  } else {
    throw new Error(
      `collapse: ${where}: x must be a Tensor, { data, shape }, nested arrays or a flat ` +
        `Float32Array/Uint8Array`,
    );
  }
  if (!shape.every((d) => Number.isInteger(d) && d >= 0) || sizeOf(shape) !== data.length) {
    throw new Error(
      `collapse: ${where}: x has ${data.length} values, which is not [${shape.join(", ")}]` +
        (inputShape ? "" : " (pass inputShape, or x with its shape)"),
    );
  }
  if (shape[0] !== n) {
    throw new Error(`collapse: ${where}: x has ${shape[0]} examples but y has ${n} labels`);
  }
  return { x: data, shape, y: labels };
}

/**
 * Splits host arrays as Keras' `validationSplit`: the last `fraction` of the examples (before any
 * shuffling) become the validation part. Both parts keep at least one example.
 */
export function splitArrays(
  a: HostArrays,
  fraction: number,
  where: string,
): { train: HostArrays; validation: HostArrays } {
  if (!(fraction > 0 && fraction < 1)) {
    throw new Error(`collapse: ${where}: validationSplit must be in (0, 1), got ${fraction}`);
  }
  const n = a.shape[0];
  const nVal = Math.floor(n * fraction);
  if (nVal < 1 || nVal >= n) {
    throw new Error(
      `collapse: ${where}: validationSplit ${fraction} of ${n} examples leaves an empty part`,
    );
  }
  const per = sizeOf(a.shape.slice(1));
  const cut = n - nVal;
  return {
    train: {
      x: a.x.subarray(0, cut * per),
      shape: [cut, ...a.shape.slice(1)],
      y: a.y.subarray(0, cut),
    },
    validation: {
      x: a.x.subarray(cut * per),
      shape: [nVal, ...a.shape.slice(1)],
      y: a.y.subarray(cut),
    },
  };
}

/** Per-class counts of labels (length `numClasses`, default largest label + 1). */
export function countClasses(labels: ArrayLike<number>, numClasses?: number): number[] {
  let k = numClasses ?? 0;
  if (numClasses === undefined) {
    for (let i = 0; i < labels.length; i++) k = Math.max(k, labels[i] + 1);
  }
  const counts = new Array<number>(k).fill(0);
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] >= k) {
      throw new Error(`collapse: label ${labels[i]} is outside [0, ${k}) (numClasses ${k})`);
    }
    counts[labels[i]]++;
  }
  return counts;
}

/** A DataSource over validated host arrays (see {@link arraySource}). */
export function hostArraySource(
  a: HostArrays,
  options: Omit<ArraySourceOptions, "inputShape"> = {},
): DataSource & { classCounts(): number[]; readonly length: number } {
  const bs = options.batchSize ?? 32;
  if (!(Number.isInteger(bs) && bs >= 1)) {
    throw new Error(`collapse: batchSize must be a positive integer, got ${bs}`);
  }
  const n = a.shape[0];
  const per = sizeOf(a.shape.slice(1));
  const seed = options.seed ?? 0;
  const shuffle = options.shuffle ?? false;
  const batches = function* (epoch: number): Generator<Batch> {
    const order = shuffle ? new Rng(seed * 1000003 + epoch + 0x5eed).permutation(n) : null;
    for (let start = 0; start < n; start += bs) {
      const b = Math.min(bs, n - start);
      const images = new Float32Array(b * per);
      const labels = new Int32Array(b);
      for (let i = 0; i < b; i++) {
        const j = order ? order[start + i] : start + i;
        images.set(a.x.subarray(j * per, (j + 1) * per), i * per);
        labels[i] = a.y[j];
      }
      yield { images, labels, shape: [b, ...a.shape.slice(1)] as Batch["shape"] };
    }
  };
  return {
    length: n,
    batches,
    batchesPerEpoch: () => Math.ceil(n / bs),
    classCounts: () => countClasses(a.y, options.numClasses),
  };
}

/**
 * A {@link DataSource} over in-memory x and integer labels y: batches of `batchSize` (the last one
 * smaller), optionally reshuffled every epoch from `seed`. What `fit(x, y, ...)` builds; pass it
 * anywhere a DataSource is taken.
 *
 * @example
 * ```ts ignore
 * const train = await arraySource(x, y, { batchSize: 64, shuffle: true, inputShape: [8, 8, 3] });
 * await model.fit(train, { epochs: 5 });
 * ```
 */
export async function arraySource(
  x: ArrayInput,
  y: LabelInput,
  options: ArraySourceOptions = {},
): Promise<DataSource & { classCounts(): number[]; readonly length: number }> {
  checkOptions("arraySource()", options, ARRAY_SOURCE_KEYS);
  const a = await hostArrays(x, y, "arraySource()", options.inputShape);
  return hostArraySource(a, options);
}
