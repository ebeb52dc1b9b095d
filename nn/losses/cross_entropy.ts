/**
 * Softmax cross-entropy on the logits, with optional label smoothing (the learnable baseline's loss).
 * @module
 */
import { softmaxCrossEntropy } from "../../gpu/ops/softmax.ts";
import type { Tensor } from "../../gpu/tensor.ts";
import { checkOptions, type OptionKeys, optionKeys } from "../options.ts";
import type { ModelOutputs } from "../types.ts";
import { checkLabels, type Loss, type LossCallOptions } from "./loss.ts";

/** Options of {@link CrossEntropyLoss}. */
export interface CrossEntropyOptions {
  /** Label smoothing epsilon in [0, 1) (default 0), as PyTorch's `label_smoothing`. */
  labelSmoothing?: number;
}

const KEYS: OptionKeys = optionKeys<CrossEntropyOptions>({ labelSmoothing: true });

/** Mean softmax cross-entropy of the logits against integer labels. */
export class CrossEntropyLoss implements Loss {
  readonly name = "cross_entropy";
  readonly labelSmoothing: number;

  constructor(options: CrossEntropyOptions = {}) {
    checkOptions("new CrossEntropyLoss()", options, KEYS);
    const ls = options.labelSmoothing ?? 0;
    if (!(ls >= 0 && ls < 1)) {
      throw new Error(`collapse: CrossEntropyLoss: labelSmoothing must be in [0, 1), got ${ls}`);
    }
    this.labelSmoothing = ls;
  }

  compute(outputs: ModelOutputs, labels: Tensor, _options?: LossCallOptions): Tensor {
    checkLabels("CrossEntropyLoss", outputs.logits, labels);
    return softmaxCrossEntropy(outputs.logits, labels, {
      labelSmoothing: this.labelSmoothing,
      reduction: "mean",
    });
  }

  /** Per-example cross-entropies [B]. */
  perExample(outputs: ModelOutputs, labels: Tensor, _options?: LossCallOptions): Tensor {
    checkLabels("CrossEntropyLoss", outputs.logits, labels);
    return softmaxCrossEntropy(outputs.logits, labels, {
      labelSmoothing: this.labelSmoothing,
      reduction: "none",
    });
  }

  getConfig(): Record<string, unknown> {
    return { name: this.name, labelSmoothing: this.labelSmoothing };
  }
}
