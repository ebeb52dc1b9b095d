/**
 * Class weights, as Keras' `fit(..., { classWeight })`: each example's loss is multiplied by the
 * weight of its label and the batch loss is the mean of the weighted losses (Keras' sample-weighted
 * "sum over batch size" reduction). `"balanced"` weights are n / (K n_c) from the training counts
 * (scikit-learn's `compute_class_weight("balanced")`). The weights live in a GPU tensor gathered by
 * the labels, so a captured step replays them.
 * @module
 */
import { mul } from "../../gpu/ops/elementwise.ts";
import { gather } from "../../gpu/ops/indexing.ts";
import { mean } from "../../gpu/ops/reduce.ts";
import { untrack } from "../../gpu/scope.ts";
import { type Tensor, tensor } from "../../gpu/tensor.ts";
import type { ModelOutputs } from "../types.ts";
import type { Loss, LossCallOptions } from "./loss.ts";

/** Class weights: one per class, a map class -> weight (missing classes weigh 1), or "balanced". */
export type ClassWeight = readonly number[] | Readonly<Record<number, number>> | "balanced";

/** Checks per-class counts (non-negative integers, at least one positive); returns a copy. */
export function checkClassCounts(where: string, counts: unknown): number[] {
  const ok = Array.isArray(counts) && counts.length >= 2 &&
    counts.every((c) => Number.isInteger(c) && c >= 0) && counts.some((c) => c > 0);
  if (!ok) {
    throw new Error(
      `collapse: ${where}: classCounts must list the training examples of every class ` +
        `(>= 2 non-negative integers), got ${JSON.stringify(counts)?.slice(0, 80)}`,
    );
  }
  return [...counts];
}

/**
 * Keras/scikit-learn "balanced" class weights n / (K n_c) from per-class training counts (a class
 * without examples gets weight 0: it never occurs as a label).
 *
 * @example
 * ```ts
 * import { balancedClassWeights } from "./class_weighted.ts";
 * balancedClassWeights([300, 100]); // [0.6667, 2]
 * ```
 */
export function balancedClassWeights(counts: readonly number[]): number[] {
  const c = checkClassCounts("balancedClassWeights()", counts);
  const n = c.reduce((a, b) => a + b, 0);
  return c.map((m) => (m > 0 ? n / (c.length * m) : 0));
}

/**
 * One weight per class (length `numClasses`) from a {@link ClassWeight}; "balanced" needs the
 * training counts. Throws naming the problem (negative weight, class out of range, ...).
 */
export function resolveClassWeight(
  spec: ClassWeight,
  numClasses: number,
  counts?: readonly number[],
): number[] {
  const where = "fit(): classWeight";
  if (spec === "balanced") {
    if (!counts) {
      throw new Error(
        `collapse: ${where} "balanced" needs the training class counts: pass arrays ` +
          "(fit(x, y, ...)), a DataSource with classCounts(), or explicit weights " +
          "(balancedClassWeights(counts))",
      );
    }
    const w = balancedClassWeights(counts);
    while (w.length < numClasses) w.push(0);
    return w;
  }
  const out = new Array<number>(numClasses).fill(1);
  const entries: [string, unknown][] = Array.isArray(spec)
    ? spec.map((v, i) => [String(i), v])
    : typeof spec === "object" && spec !== null
    ? Object.entries(spec)
    : [];
  if (!entries.length) {
    throw new Error(
      `collapse: ${where} must be "balanced", an array of weights or { class: weight }, got ${
        JSON.stringify(spec)
      }`,
    );
  }
  if (Array.isArray(spec) && spec.length !== numClasses) {
    throw new Error(`collapse: ${where} has ${spec.length} weights for ${numClasses} classes`);
  }
  for (const [k, v] of entries) {
    const c = Number(k);
    if (!Number.isInteger(c) || c < 0 || c >= numClasses) {
      throw new Error(`collapse: ${where}: class ${k} is outside [0, ${numClasses})`);
    }
    if (typeof v !== "number" || !(v >= 0) || !Number.isFinite(v)) {
      throw new Error(`collapse: ${where}: the weight of class ${k} must be >= 0, got ${v}`);
    }
    out[c] = v;
  }
  return out;
}

/** A loss whose per-example values are multiplied by the weight of each example's label. */
export class ClassWeightedLoss implements Loss {
  /** "class_weighted_<base name>". */
  readonly name: string;
  /** The loss whose per-example values are weighted. */
  readonly base: Loss;
  /** The weight of each class. */
  readonly weights: readonly number[];
  #w: Tensor | null = null;

  /** Weights `base` (a loss with `perExample`) by one weight per class. */
  constructor(base: Loss, weights: readonly number[]) {
    if (typeof base?.perExample !== "function") {
      throw new Error(
        `collapse: class weights need a loss with per-example values; ${
          base?.name ?? String(base)
        } has no perExample()`,
      );
    }
    if (!weights.every((w) => Number.isFinite(w) && w >= 0)) {
      throw new Error(`collapse: ClassWeightedLoss: weights must be >= 0, got [${weights}]`);
    }
    this.base = base;
    this.weights = [...weights];
    this.name = `class_weighted_${base.name}`;
  }

  /** The weights as a GPU tensor [K] (created on first use, outside any captured step). */
  get weightTensor(): Tensor {
    this.#w ??= untrack(tensor(Float32Array.from(this.weights), [this.weights.length]));
    return this.#w;
  }

  /** w_{y_i} * l_i [B]. */
  perExample(outputs: ModelOutputs, labels: Tensor, options?: LossCallOptions): Tensor {
    const rows = this.base.perExample!(outputs, labels, options);
    return mul(rows, gather(this.weightTensor, labels, 0));
  }

  /** mean_i w_{y_i} l_i. */
  compute(outputs: ModelOutputs, labels: Tensor, options?: LossCallOptions): Tensor {
    return mean(this.perExample(outputs, labels, options));
  }

  onEpochBegin(epoch: number, epochs: number): void {
    this.base.onEpochBegin?.(epoch, epochs);
  }

  getConfig(): Record<string, unknown> {
    return { name: this.name, classWeight: this.weights, base: this.base.getConfig() };
  }

  /** Frees the weight tensor. */
  dispose(): void {
    this.#w?.dispose();
    this.#w = null;
  }
}
