/**
 * Logit-adjusted cross-entropy (Menon et al., ICLR 2021) and balanced softmax (Ren et al., NeurIPS
 * 2020), the long-tail baselines one loss away from CE: training uses softmax CE of
 * logits + tau * log(pi) with pi the training class prior (counts / total; a class without
 * examples counts as one), prediction the plain logits. Balanced softmax is tau = 1 (the prior's
 * normalisation cancels in the softmax). The offsets are a constant GPU tensor [K].
 * @module
 */
import { add } from "../../gpu/ops/elementwise.ts";
import { softmaxCrossEntropy } from "../../gpu/ops/softmax.ts";
import { untrack } from "../../gpu/scope.ts";
import { type Tensor, tensor } from "../../gpu/tensor.ts";
import { checkOptions, type OptionKeys, optionKeys } from "../options.ts";
import type { ModelOutputs } from "../types.ts";
import { checkClassCounts } from "./class_weighted.ts";
import { checkLabels, type Loss, type LossCallOptions } from "./loss.ts";

/** Options of {@link LogitAdjustedLoss}. */
export interface LogitAdjustedLossOptions {
  /** Training examples per class (the prior pi). Required. */
  classCounts: readonly number[];
  /** Temperature of the adjustment (default 1). */
  tau?: number;
}

/** Options of {@link BalancedSoftmaxLoss}. */
export interface BalancedSoftmaxLossOptions {
  /** Training examples per class. Required. */
  classCounts: readonly number[];
}

const LA_KEYS: OptionKeys = optionKeys<LogitAdjustedLossOptions>({ classCounts: true, tau: true });
const BS_KEYS: OptionKeys = optionKeys<BalancedSoftmaxLossOptions>({ classCounts: true });

/** tau * log(pi_c) for counts (floored at 1 example), as f32. */
export function logPriorOffsets(counts: readonly number[], tau: number): Float32Array {
  const n = counts.reduce((a, b) => a + Math.max(b, 1), 0);
  return Float32Array.from(counts, (c) => tau * Math.log(Math.max(c, 1) / n));
}

/** Cross-entropy of logits + tau log(prior); predictions stay argmax of the plain logits. */
export class LogitAdjustedLoss implements Loss {
  /** "logit_adjusted" (or "balanced_softmax"). */
  readonly name: string = "logit_adjusted";
  /** Training examples per class. */
  readonly classCounts: readonly number[];
  /** Temperature of the adjustment. */
  readonly tau: number;
  readonly #offsets: Float32Array;
  #t: Tensor | null = null;

  /** Needs `classCounts`; `tau` defaults to 1. */
  constructor(options: LogitAdjustedLossOptions) {
    const where = `new ${new.target.name}()`;
    checkOptions(where, options, new.target === BalancedSoftmaxLoss ? BS_KEYS : LA_KEYS, {
      required: ["classCounts"],
    });
    this.classCounts = checkClassCounts(where, options.classCounts);
    this.tau = options.tau ?? 1;
    if (!(Number.isFinite(this.tau) && this.tau >= 0)) {
      throw new Error(`collapse: ${where}: tau must be >= 0, got ${options.tau}`);
    }
    this.#offsets = logPriorOffsets(this.classCounts, this.tau);
  }

  /** The offsets tau log(pi) [K] on the GPU (created on first use). */
  get offsets(): Tensor {
    this.#t ??= untrack(tensor(this.#offsets, [this.#offsets.length]));
    return this.#t;
  }

  #adjusted(outputs: ModelOutputs, labels: Tensor): Tensor {
    const logits = outputs.logits;
    checkLabels(this.constructor.name, logits, labels);
    if (logits.shape[1] !== this.classCounts.length) {
      throw new Error(
        `collapse: ${this.constructor.name}: ${logits.shape[1]} logits per example but ` +
          `${this.classCounts.length} class counts`,
      );
    }
    return add(logits, this.offsets);
  }

  compute(outputs: ModelOutputs, labels: Tensor, _options?: LossCallOptions): Tensor {
    return softmaxCrossEntropy(this.#adjusted(outputs, labels), labels, { reduction: "mean" });
  }

  /** Per-example adjusted cross-entropies [B]. */
  perExample(outputs: ModelOutputs, labels: Tensor, _options?: LossCallOptions): Tensor {
    return softmaxCrossEntropy(this.#adjusted(outputs, labels), labels, { reduction: "none" });
  }

  getConfig(): Record<string, unknown> {
    return { name: this.name, classCounts: this.classCounts, tau: this.tau };
  }

  /** Frees the offsets tensor. */
  dispose(): void {
    this.#t?.dispose();
    this.#t = null;
  }
}

/** Balanced softmax: cross-entropy of logits + log(n_c) (logit adjustment with tau = 1). */
export class BalancedSoftmaxLoss extends LogitAdjustedLoss {
  /** "balanced_softmax". */
  override readonly name: string = "balanced_softmax";

  /** Needs `classCounts`. */
  constructor(options: BalancedSoftmaxLossOptions) {
    super(options); // checked against BalancedSoftmaxLossOptions' keys (no tau)
  }

  /** JSON-serialisable configuration. */
  override getConfig(): Record<string, unknown> {
    return { name: this.name, classCounts: this.classCounts };
  }
}
