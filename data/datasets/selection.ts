/**
 * Which images of a split a prepared dataset keeps: the official long-tailed subset of a training
 * split (n_i = floor(n_max r^(i/(K-1))) with n_max = len(split) / K; a class with fewer images
 * than asked keeps all it has) and the `limit` cap for quick runs (per class in proportion).
 *
 * @module
 */

import { classCounts, exponentialCounts, longTailIndices } from "../long_tail.ts";

/** The long-tailed subset of a split: indices, and the counts asked and kept per class. */
export interface LongTailSelection {
  /** Kept indices, ascending. */
  indices: Int32Array;
  /** floor(n_max r^(i/(K-1))) per class. */
  requested: number[];
  /** What each class kept: min(requested, what it has). */
  kept: number[];
}

/**
 * The official exponential long-tailed subset of a split at imbalance `ratio` (ImbalancedLearning,
 * after LDAM-DRW): n_max = len(split) / K (fractional, e.g. 7325.7 for SVHN's train split),
 * n_i = floor(n_max r^(i/(K-1))), and a class with fewer images than n_i keeps all it has. Which
 * images: the first n_i of a shuffle of the class seeded by `seed`. `ratio >= 1` keeps everything.
 *
 * @example
 * ```ts
 * import { longTailSubset } from "./selection.ts";
 * const labels = Int32Array.from({ length: 100 }, (_, i) => i % 10);
 * console.log(longTailSubset(labels, 10, 0.1, 0).kept); // [10, 7, 5, 4, 3, 2, 2, 1, 1, 1]
 * ```
 */
export function longTailSubset(
  labels: ArrayLike<number>,
  numClasses: number,
  ratio: number,
  seed: number,
): LongTailSelection {
  const have = classCounts(labels, numClasses);
  if (ratio >= 1 || labels.length === 0) {
    return {
      indices: Int32Array.from({ length: labels.length }, (_, i) => i),
      requested: have,
      kept: have,
    };
  }
  const requested = exponentialCounts(labels.length / numClasses, numClasses, ratio);
  const kept = requested.map((n, c) => Math.min(n, have[c]));
  return { indices: longTailIndices(labels, kept, seed), requested, kept };
}

/** The indices of {@linkcode longTailSubset}. */
export function longTailSelection(
  labels: ArrayLike<number>,
  numClasses: number,
  ratio: number,
  seed: number,
): Int32Array {
  return longTailSubset(labels, numClasses, ratio, seed).indices;
}

/**
 * Indices of at most `limit` items, per class in proportion to the class counts (every non-empty
 * class keeps at least one while the budget allows), the first ones of each class in order.
 *
 * @example
 * ```ts
 * import { capPerClass } from "./selection.ts";
 * const labels = Int32Array.from([0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 0, 1]);
 * console.log(capPerClass(labels, 3, 6)); // Int32Array [0, 1, 2, 6, 7, 9]
 * ```
 */
export function capPerClass(
  labels: ArrayLike<number>,
  numClasses: number,
  limit: number | undefined,
): Int32Array {
  const n = labels.length;
  if (limit === undefined || limit >= n) return Int32Array.from({ length: n }, (_, i) => i);
  const counts = classCounts(labels, numClasses);
  const take = new Array<number>(numClasses).fill(0);
  const order = counts.map((c, k) => [c, k]).filter(([c]) => c > 0).sort((a, b) =>
    b[0] - a[0] || a[1] - b[1]
  );
  let left = limit;
  for (const [, k] of order) {
    if (left === 0) break;
    take[k] = 1;
    left--;
  }
  if (left > 0) {
    const rest = order.map(([c, k]) => [c - take[k], k]);
    const total = rest.reduce((s, [c]) => s + c, 0);
    const quota = rest.map(([c, k]) => ({ k, q: left * c / total, c }));
    let used = 0;
    for (const e of quota) {
      const f = Math.min(e.c, Math.floor(e.q));
      take[e.k] += f;
      used += f;
    }
    quota.sort((a, b) => (b.q - Math.floor(b.q)) - (a.q - Math.floor(a.q)) || a.k - b.k);
    for (const e of quota) {
      if (used >= left) break;
      if (take[e.k] < counts[e.k]) {
        take[e.k]++;
        used++;
      }
    }
  }
  const out: number[] = [];
  const seen = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < n; i++) {
    const y = labels[i];
    if (seen[y] < take[y]) {
      seen[y]++;
      out.push(i);
    }
  }
  return Int32Array.from(out);
}
