/**
 * LDAM loss with deferred re-weighting (Cao et al., NeurIPS 2019, as the authors' code): the
 * label's logit is lowered by a class margin m_c = maxMargin * n_c^(-1/4) / max_j n_j^(-1/4), the
 * logits are scaled by `scale` (s = 30 for cosine logits, e.g. the ETF head's normalised features
 * against unit-norm prototypes), and the loss is the weighted softmax cross-entropy
 * sum_i w_{y_i} l_i / sum_i w_{y_i} (PyTorch's `weight=` reduction). Deferred re-weighting (DRW):
 * the weights are 1 before epoch `drwEpoch` and the class-balanced "effective number" weights
 * (1 - beta) / (1 - beta^n_c), normalised to sum to K, from then on. Margins and weights are GPU
 * tensors; `onEpochBegin` (called by `fit`) writes the weights of the epoch.
 * @module
 */
import { div, mul, mulScalar, sub } from "../../gpu/ops/elementwise.ts";
import { gather, oneHot } from "../../gpu/ops/indexing.ts";
import { sum } from "../../gpu/ops/reduce.ts";
import { reshape } from "../../gpu/ops/shape.ts";
import { softmaxCrossEntropy } from "../../gpu/ops/softmax.ts";
import { untrack } from "../../gpu/scope.ts";
import { type Tensor, tensor, writeTensor } from "../../gpu/tensor.ts";
import { checkOptions, type OptionKeys, optionKeys } from "../options.ts";
import type { ModelOutputs } from "../types.ts";
import { checkClassCounts } from "./class_weighted.ts";
import { checkLabels, type Loss, type LossCallOptions } from "./loss.ts";

/** Options of {@link LDAMLoss}. */
export interface LDAMLossOptions {
  /** Training examples per class. Required. */
  classCounts: readonly number[];
  /** The largest margin (of the rarest class); default 0.5. */
  maxMargin?: number;
  /** Logit scale s (default 30, for cosine logits; use 1 for unnormalised logits). */
  scale?: number;
  /** First 0-based epoch of the re-weighting (default: never; the paper: 160 of 200). */
  drwEpoch?: number;
  /** beta of the effective-number weights (default 0.9999). */
  drwBeta?: number;
}

const KEYS: OptionKeys = optionKeys<LDAMLossOptions>({
  classCounts: true,
  maxMargin: true,
  scale: true,
  drwEpoch: true,
  drwBeta: true,
});

/** LDAM margins m_c = maxMargin * n_c^(-1/4) / max_j n_j^(-1/4) (a class without examples: 0). */
export function ldamMargins(counts: readonly number[], maxMargin: number): Float32Array {
  const inv = counts.map((n) => (n > 0 ? n ** -0.25 : 0));
  const top = Math.max(...inv);
  return Float32Array.from(inv, (v) => (maxMargin * v) / top);
}

/** Class-balanced weights (1 - beta) / (1 - beta^n_c), normalised to sum to K (empty class: 0). */
export function effectiveNumberWeights(counts: readonly number[], beta: number): Float32Array {
  const raw = counts.map((n) => (n > 0 ? (1 - beta) / (1 - beta ** n) : 0));
  const total = raw.reduce((a, b) => a + b, 0);
  return Float32Array.from(raw, (w) => (w * counts.length) / total);
}

/** Label-distribution-aware margin loss, optionally with deferred re-weighting. */
export class LDAMLoss implements Loss {
  /** "ldam". */
  readonly name: string = "ldam";
  /** Training examples per class. */
  readonly classCounts: readonly number[];
  /** The margin of the rarest class. */
  readonly maxMargin: number;
  /** Logit scale s. */
  readonly scale: number;
  /** First epoch of the deferred re-weighting (null: never). */
  readonly drwEpoch: number | null;
  /** beta of the effective-number weights. */
  readonly drwBeta: number;
  /** Whether the re-weighting is active (set by `onEpochBegin`). */
  reweighting: boolean = false;
  readonly #margins: Float32Array;
  #m: Tensor | null = null;
  #w: Tensor | null = null;

  /** Needs `classCounts`; see {@link LDAMLossOptions} for the rest. */
  constructor(options: LDAMLossOptions) {
    const where = "new LDAMLoss()";
    checkOptions(where, options, KEYS, { required: ["classCounts"] });
    this.classCounts = checkClassCounts(where, options.classCounts);
    this.maxMargin = options.maxMargin ?? 0.5;
    this.scale = options.scale ?? 30;
    this.drwEpoch = options.drwEpoch ?? null;
    this.drwBeta = options.drwBeta ?? 0.9999;
    if (!(this.maxMargin >= 0) || !(this.scale > 0)) {
      throw new Error(`collapse: ${where}: maxMargin must be >= 0 and scale > 0`);
    }
    if (this.drwEpoch !== null && !(Number.isInteger(this.drwEpoch) && this.drwEpoch >= 0)) {
      throw new Error(`collapse: ${where}: drwEpoch must be an integer >= 0, got ${this.drwEpoch}`);
    }
    if (!(this.drwBeta > 0 && this.drwBeta < 1)) {
      throw new Error(`collapse: ${where}: drwBeta must be in (0, 1), got ${this.drwBeta}`);
    }
    this.#margins = ldamMargins(this.classCounts, this.maxMargin);
  }

  /** The weights of the current phase: ones, or the effective-number weights under DRW. */
  classWeights(): Float32Array {
    return this.reweighting
      ? effectiveNumberWeights(this.classCounts, this.drwBeta)
      : new Float32Array(this.classCounts.length).fill(1);
  }

  #tensors(): { m: Tensor; w: Tensor } {
    this.#m ??= untrack(tensor(this.#margins, [this.#margins.length]));
    this.#w ??= untrack(tensor(this.classWeights(), [this.#margins.length]));
    return { m: this.#m, w: this.#w };
  }

  /** Switches the re-weighting on from `drwEpoch` (a host write, between steps). */
  onEpochBegin(epoch: number, _epochs: number): void {
    const on = this.drwEpoch !== null && epoch >= this.drwEpoch;
    if (on === this.reweighting && this.#w) return;
    this.reweighting = on;
    if (this.#w) writeTensor(this.#w, this.classWeights());
  }

  #rows(outputs: ModelOutputs, labels: Tensor): { rows: Tensor; w: Tensor } {
    const logits = outputs.logits;
    checkLabels("LDAMLoss", logits, labels);
    const [b, k] = logits.shape;
    if (k !== this.classCounts.length) {
      throw new Error(
        `collapse: LDAMLoss: ${k} logits per example but ${this.classCounts.length} class counts`,
      );
    }
    const { m, w } = this.#tensors();
    const margin = mul(oneHot(labels, k), reshape(gather(m, labels, 0), [b, 1]));
    const z = mulScalar(sub(logits, margin), this.scale);
    return {
      rows: softmaxCrossEntropy(z, labels, { reduction: "none" }),
      w: gather(w, labels, 0),
    };
  }

  /** sum_i w_{y_i} l_i / sum_i w_{y_i}. */
  compute(outputs: ModelOutputs, labels: Tensor, _options?: LossCallOptions): Tensor {
    const { rows, w } = this.#rows(outputs, labels);
    return div(sum(mul(rows, w)), sum(w));
  }

  /** Per-example values whose mean is `compute`: l_i w_{y_i} B / sum_j w_{y_j}. */
  perExample(outputs: ModelOutputs, labels: Tensor, _options?: LossCallOptions): Tensor {
    const { rows, w } = this.#rows(outputs, labels);
    return mulScalar(div(mul(rows, w), sum(w)), labels.shape[0]);
  }

  getConfig(): Record<string, unknown> {
    return {
      name: this.name,
      classCounts: this.classCounts,
      maxMargin: this.maxMargin,
      scale: this.scale,
      drwEpoch: this.drwEpoch,
      drwBeta: this.drwBeta,
    };
  }

  /** Frees the margin and weight tensors. */
  dispose(): void {
    this.#m?.dispose();
    this.#w?.dispose();
    this.#m = this.#w = null;
  }
}
