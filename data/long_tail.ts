/**
 * Long-tailed subsets of balanced datasets, as in the paper's official code (ImbalancedLearning, after
 * LDAM-DRW): per-class counts for the exponential and step profiles, and the selection of which images
 * of each class are kept.
 * @module
 */

import type { ImageArray } from "./types.ts";
import { Rng } from "../gpu/rng.ts";

/** Shape of the class-count profile. */
export type LongTailProfile = "exp" | "step";

/**
 * Per-class counts of the exponential profile: n_i = floor(nMax * ratio^(i / (K - 1))), i = 0..K-1
 * (the official `int(img_max * imb_factor ** (cls_idx / (cls_num - 1.0)))`). `nMax` may be
 * fractional, as the official `img_max = len(split) / K` is (7325.7 for SVHN's train split).
 *
 * @example
 * ```ts
 * import { exponentialCounts } from "./long_tail.ts";
 * const c = exponentialCounts(5000, 10, 0.01); // [5000, 2997, 1796, ..., 50]
 * console.log(c.reduce((a, b) => a + b)); // 12406
 * ```
 */
export function exponentialCounts(nMax: number, numClasses: number, ratio: number): number[] {
  checkArgs(nMax, numClasses, ratio);
  if (numClasses === 1) return [Math.floor(nMax)];
  const out: number[] = [];
  for (let i = 0; i < numClasses; i++) {
    out.push(Math.floor(nMax * Math.pow(ratio, i / (numClasses - 1))));
  }
  return out;
}

/**
 * Per-class counts of the step profile: the first floor(K/2) classes keep nMax images, the others
 * floor(nMax * ratio) (the official `cls_num // 2` split).
 */
export function stepCounts(nMax: number, numClasses: number, ratio: number): number[] {
  checkArgs(nMax, numClasses, ratio);
  const half = Math.floor(numClasses / 2);
  const out: number[] = [];
  for (let i = 0; i < numClasses; i++) out.push(Math.floor(i < half ? nMax : nMax * ratio));
  return out;
}

/** Per-class counts of either profile. `ratio` = n_min / n_max (0.01 means imbalance factor 100). */
export function longTailCounts(
  profile: LongTailProfile,
  nMax: number,
  numClasses: number,
  ratio: number,
): number[] {
  if (profile === "exp") return exponentialCounts(nMax, numClasses, ratio);
  if (profile === "step") return stepCounts(nMax, numClasses, ratio);
  throw new Error(`longTailCounts: unknown profile "${profile}" (expected "exp" or "step")`);
}

/** Number of images per class in `labels`. */
export function classCounts(labels: ArrayLike<number>, numClasses: number): number[] {
  const out = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (!(y >= 0 && y < numClasses)) {
      throw new Error(`classCounts: label ${y} at index ${i} is outside [0, ${numClasses})`);
    }
    out[y]++;
  }
  return out;
}

/**
 * Indices of a long-tailed subset: for each class c, `counts[c]` images of that class.
 *
 * Which images: with `seed` undefined (the default), the first counts[c] images of class c in file
 * order, as the official ImbalancedLearning code does; with a seed, the first counts[c] of a seeded
 * shuffle of that class's images (deterministic for the seed). Either way the returned indices are in
 * ascending (file) order. Throws if a class has fewer images than asked.
 */
export function longTailIndices(
  labels: ArrayLike<number>,
  counts: readonly number[],
  seed?: number,
): Int32Array {
  const k = counts.length;
  const perClass: number[][] = Array.from({ length: k }, () => []);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (!(y >= 0 && y < k)) {
      throw new Error(`longTailIndices: label ${y} at index ${i} is outside [0, ${k})`);
    }
    perClass[y].push(i);
  }
  const rng = seed === undefined ? null : new Rng(seed);
  const total = counts.reduce((a, b) => a + b, 0);
  const out = new Int32Array(total);
  let n = 0;
  for (let c = 0; c < k; c++) {
    const idx = perClass[c];
    if (counts[c] > idx.length) {
      throw new Error(`longTailIndices: class ${c} has ${idx.length} images, ${counts[c]} asked`);
    }
    if (rng) rng.shuffle(idx);
    for (let j = 0; j < counts[c]; j++) out[n++] = idx[j];
  }
  return out.sort();
}

/** A new ImageArray holding the images at `indices` (copied, in that order). */
export function subsetImageArray(data: ImageArray, indices: ArrayLike<number>): ImageArray {
  const stride = data.height * data.width * data.channels;
  const images = new Uint8Array(indices.length * stride);
  const labels = new Int32Array(indices.length);
  const n = data.labels.length;
  for (let i = 0; i < indices.length; i++) {
    const j = indices[i];
    if (!(j >= 0 && j < n)) throw new Error(`subsetImageArray: index ${j} outside [0, ${n})`);
    images.set(data.images.subarray(j * stride, (j + 1) * stride), i * stride);
    labels[i] = data.labels[j];
  }
  return { ...data, images, labels };
}

/** Options of {@link makeLongTailed}. */
export interface LongTailOptions {
  /** n_min / n_max, e.g. 0.01. */
  ratio: number;
  /** "exp" (default) or "step". */
  profile?: LongTailProfile;
  /** Images of the largest class; default: the smallest class count of the balanced input. */
  nMax?: number;
  /** See {@link longTailIndices}: undefined keeps the first images in file order. */
  seed?: number;
}

/**
 * The long-tailed version of a balanced training split (class 0 the head, class K-1 the tail).
 *
 * @example
 * ```ts
 * import { makeLongTailed } from "./long_tail.ts";
 * import { syntheticDataset } from "./synthetic.ts";
 * const { test } = syntheticDataset({ testPerClass: 50 });
 * const lt = makeLongTailed(test, { ratio: 0.1 });
 * console.log(lt.labels.length); // 50 + 38 + ... + 5 = 204
 * ```
 */
export function makeLongTailed(data: ImageArray, opts: LongTailOptions): ImageArray {
  const have = classCounts(data.labels, data.numClasses);
  const nMax = opts.nMax ?? Math.min(...have);
  const counts = longTailCounts(opts.profile ?? "exp", nMax, data.numClasses, opts.ratio);
  return subsetImageArray(data, longTailIndices(data.labels, counts, opts.seed));
}

function checkArgs(nMax: number, numClasses: number, ratio: number): void {
  if (!(Number.isFinite(nMax) && nMax > 0)) throw new Error(`long tail: bad nMax ${nMax}`);
  if (!(Number.isInteger(numClasses) && numClasses > 0)) {
    throw new Error(`long tail: bad numClasses ${numClasses}`);
  }
  if (!(ratio > 0 && ratio <= 1)) throw new Error(`long tail: ratio ${ratio} not in (0, 1]`);
}
