/**
 * Epoch samplers: which dataset indices make up an epoch, deterministic for (seed, epoch).
 *
 * - instance-balanced: a plain shuffle (every image once per epoch; the paper's default);
 * - class-balanced: classes equally often (shuffled cycles of the classes), then an image of the class;
 * - square-root: class probability proportional to sqrt(n_c);
 * - progressive: class probability (1 - t) n_c / N + t / K with t = epoch / totalEpochs.
 * The class-based samplers draw with replacement across epochs: each class's images come in a seeded
 * shuffled cycle (every image of a class once before any repeats).
 * @module
 */

import { Rng } from "../gpu/rng.ts";

/** Something that lists the dataset indices of an epoch. */
export interface Sampler {
  /** Number of indices per epoch. */
  readonly length: number;
  /** The indices of `epoch`; the same (seed, epoch) always gives the same array. */
  epochIndices(epoch: number): Int32Array;
}

/** Sampler kinds known to {@link makeSampler}. */
export type SamplerKind = "instance" | "class" | "sqrt" | "progressive";

/** Hashes a seed with further integers (epoch, batch...) into a 32-bit seed for {@link Rng}. */
export function mixSeed(seed: number, ...parts: number[]): number {
  let h = (seed ^ 0x5bd1e995) >>> 0;
  for (const p of [...parts, parts.length]) {
    let k = Math.imul(p | 0, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) >>> 0;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Options shared by the samplers. */
export interface SamplerOptions {
  /** Seed of the sampler's randomness (default 0). */
  seed?: number;
  /** Indices per epoch; default: the dataset size. */
  epochLength?: number;
}

/**
 * Instance-balanced sampler: a fresh permutation of 0..size-1 each epoch (or 0..size-1 in order with
 * `shuffle: false`, for evaluation). A longer epoch chains permutations; a shorter one truncates.
 *
 * @example
 * ```ts
 * import { InstanceSampler } from "./samplers.ts";
 * const s = new InstanceSampler(10, { seed: 1 });
 * console.log(s.epochIndices(0)); // a permutation of 0..9
 * ```
 */
export class InstanceSampler implements Sampler {
  readonly length: number;
  #size: number;
  #seed: number;
  #shuffle: boolean;

  /** A sampler over `size` images, shuffled per epoch unless `shuffle` is false. */
  constructor(size: number, opts: SamplerOptions & { shuffle?: boolean } = {}) {
    if (!(Number.isInteger(size) && size > 0)) throw new Error(`InstanceSampler: bad size ${size}`);
    this.#size = size;
    this.#seed = opts.seed ?? 0;
    this.#shuffle = opts.shuffle ?? true;
    this.length = opts.epochLength ?? size;
  }

  epochIndices(epoch: number): Int32Array {
    const out = new Int32Array(this.length);
    const rng = new Rng(mixSeed(this.#seed, 0x1157, epoch));
    const perm = new Int32Array(this.#size);
    for (let filled = 0; filled < this.length;) {
      for (let i = 0; i < this.#size; i++) perm[i] = i;
      if (this.#shuffle) rng.shuffle(perm);
      const n = Math.min(this.#size, this.length - filled);
      out.set(perm.subarray(0, n), filled);
      filled += n;
    }
    return out;
  }
}

/**
 * Draws each class independently from per-epoch class probabilities, then the next image of that
 * class's shuffled cycle. Base of the square-root and progressive samplers.
 */
export class ClassWeightedSampler implements Sampler {
  readonly length: number;
  /** Number of classes. */
  readonly numClasses: number;
  /** Image indices of each class. */
  readonly byClass: Int32Array[];
  #seed: number;
  #weights: (epoch: number, counts: number[]) => number[];

  /**
   * A sampler over images with `labels`, drawing classes by `weights`.
   * @param labels one label per image
   * @param weights unnormalised class weights for an epoch, given the class counts
   */
  constructor(
    labels: ArrayLike<number>,
    numClasses: number,
    weights: (epoch: number, counts: number[]) => number[],
    opts: SamplerOptions = {},
  ) {
    const lists: number[][] = Array.from({ length: numClasses }, () => []);
    for (let i = 0; i < labels.length; i++) {
      const y = labels[i];
      if (!(y >= 0 && y < numClasses)) {
        throw new Error(`sampler: label ${y} at index ${i} is outside [0, ${numClasses})`);
      }
      lists[y].push(i);
    }
    if (labels.length === 0) throw new Error("sampler: empty dataset");
    this.byClass = lists.map((l) => Int32Array.from(l));
    this.numClasses = numClasses;
    this.#seed = opts.seed ?? 0;
    this.#weights = weights;
    this.length = opts.epochLength ?? labels.length;
  }

  /** Class probabilities of `epoch` (empty classes get 0). */
  classProbabilities(epoch: number): Float64Array {
    const counts = this.byClass.map((l) => l.length);
    const w = this.#weights(epoch, counts);
    const p = new Float64Array(this.numClasses);
    let sum = 0;
    for (let c = 0; c < this.numClasses; c++) {
      p[c] = counts[c] > 0 ? Math.max(0, w[c]) : 0;
      sum += p[c];
    }
    if (!(sum > 0)) throw new Error("sampler: all class weights are zero");
    for (let c = 0; c < this.numClasses; c++) p[c] /= sum;
    return p;
  }

  epochIndices(epoch: number): Int32Array {
    const p = this.classProbabilities(epoch);
    const k = this.numClasses;
    const cdf = new Float64Array(k);
    let acc = 0;
    for (let c = 0; c < k; c++) cdf[c] = acc += p[c];
    cdf[k - 1] = 1;
    const rng = new Rng(mixSeed(this.#seed, 0xc1a5, epoch));
    const pick = new ClassCycler(this.byClass, rng);
    const out = new Int32Array(this.length);
    for (let i = 0; i < this.length; i++) {
      const u = rng.next();
      let lo = 0, hi = k - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (cdf[mid] > u) hi = mid;
        else lo = mid + 1;
      }
      while (p[lo] === 0) lo--; // rounding left trailing empty classes at cdf = 1
      out[i] = pick.next(lo);
    }
    return out;
  }
}

/**
 * Images of each class in a seeded shuffled order, reshuffled each time a class is exhausted
 * (class-aware sampling, Shen et al. 2016): every image of a class is drawn before any repeats.
 */
class ClassCycler {
  #lists: Int32Array[];
  #pos: Int32Array;
  #rng: Rng;

  constructor(byClass: Int32Array[], rng: Rng) {
    this.#lists = byClass.map((l) => l.slice());
    this.#pos = new Int32Array(byClass.length);
    this.#rng = rng;
    for (const l of this.#lists) rng.shuffle(l);
  }

  next(c: number): number {
    const l = this.#lists[c];
    if (this.#pos[c] >= l.length) {
      this.#rng.shuffle(l);
      this.#pos[c] = 0;
    }
    return l[this.#pos[c]++];
  }
}

/**
 * Class-balanced (class-aware) sampler: the class sequence is a chain of shuffled permutations of the
 * non-empty classes, so every class appears equally often (within one per K draws, so within every
 * batch of at least K images), and each class's images are drawn in a shuffled cycle.
 */
export class ClassBalancedSampler implements Sampler {
  readonly length: number;
  /** Number of classes. */
  readonly numClasses: number;
  /** Image indices of each class. */
  readonly byClass: Int32Array[];
  #seed: number;

  /** A class-balanced sampler over images with `labels`. */
  constructor(labels: ArrayLike<number>, numClasses: number, opts: SamplerOptions = {}) {
    const base = new ClassWeightedSampler(labels, numClasses, (_e, n) => n.map(() => 1), opts);
    this.byClass = base.byClass;
    this.numClasses = numClasses;
    this.length = base.length;
    this.#seed = opts.seed ?? 0;
  }

  epochIndices(epoch: number): Int32Array {
    const rng = new Rng(mixSeed(this.#seed, 0xba1a, epoch));
    const present = Int32Array.from(
      this.byClass.map((l, c) => (l.length > 0 ? c : -1)).filter((c) => c >= 0),
    );
    const pick = new ClassCycler(this.byClass, rng);
    const out = new Int32Array(this.length);
    for (let i = 0; i < this.length; i++) {
      const j = i % present.length;
      if (j === 0) rng.shuffle(present);
      out[i] = pick.next(present[j]);
    }
    return out;
  }
}

/** Class-balanced sampler: every (non-empty) class equally often (see {@link ClassBalancedSampler}). */
export function classBalancedSampler(
  labels: ArrayLike<number>,
  numClasses: number,
  opts: SamplerOptions = {},
): ClassBalancedSampler {
  return new ClassBalancedSampler(labels, numClasses, opts);
}

/** Square-root sampler: class probability proportional to sqrt(n_c). */
export function sqrtSampler(
  labels: ArrayLike<number>,
  numClasses: number,
  opts: SamplerOptions = {},
): ClassWeightedSampler {
  return new ClassWeightedSampler(labels, numClasses, (_e, n) => n.map(Math.sqrt), opts);
}

/**
 * Progressively balanced sampler (Kang et al. 2020): p_c(t) = (1 - t) n_c / N + t / K',
 * t = min(1, epoch / totalEpochs), K' the number of non-empty classes.
 */
export function progressiveSampler(
  labels: ArrayLike<number>,
  numClasses: number,
  totalEpochs: number,
  opts: SamplerOptions = {},
): ClassWeightedSampler {
  if (!(totalEpochs > 0)) throw new Error(`progressiveSampler: bad totalEpochs ${totalEpochs}`);
  return new ClassWeightedSampler(labels, numClasses, (epoch, n) => {
    const t = Math.min(1, Math.max(0, epoch / totalEpochs));
    const total = n.reduce((a, b) => a + b, 0);
    const present = n.filter((x) => x > 0).length;
    return n.map((x) => (x > 0 ? (1 - t) * x / total + t / present : 0));
  }, opts);
}

/**
 * Any sampler by kind.
 *
 * @example
 * ```ts
 * import { makeSampler } from "./samplers.ts";
 * const labels = Int32Array.from([0, 0, 0, 0, 1]);
 * const s = makeSampler("class", labels, 2, { seed: 3 });
 * console.log(s.epochIndices(0)); // about half the draws are index 4
 * ```
 */
export function makeSampler(
  kind: SamplerKind,
  labels: ArrayLike<number>,
  numClasses: number,
  opts: SamplerOptions & { totalEpochs?: number } = {},
): Sampler {
  switch (kind) {
    case "instance":
      return new InstanceSampler(labels.length, opts);
    case "class":
      return classBalancedSampler(labels, numClasses, opts);
    case "sqrt":
      return sqrtSampler(labels, numClasses, opts);
    case "progressive":
      return progressiveSampler(labels, numClasses, opts.totalEpochs ?? 200, opts);
    default:
      throw new Error(`makeSampler: unknown kind "${kind}"`);
  }
}
