/**
 * The paper's dot-regression (DR) loss on the head's features h [B, d] and the fixed ETF M [d, K]
 * (see DESIGN.md §3: per-batch class weights Ew_k = sqrt((B / |U|) / c_k), L = mean_i
 * (h_i . t_i - a_i s_i)^2 / (2 s_i) with s_i and a_i constants), via the fused op; optionally
 * + `normRegularizer` * mean_i ||h_i|| (0.01 on ImageNet-LT, with gradient).
 * @module
 */
import { dotRegressionLoss } from "../../gpu/ops/dot_regression.ts";
import { add, mulScalar, sqrt, square } from "../../gpu/ops/elementwise.ts";
import { mean, sum } from "../../gpu/ops/reduce.ts";
import { reshape } from "../../gpu/ops/shape.ts";
import type { Tensor } from "../../gpu/tensor.ts";
import { checkOptions, type OptionKeys, optionKeys } from "../options.ts";
import type { ModelOutputs } from "../types.ts";
import { checkLabels, type Loss, type LossCallOptions } from "./loss.ts";

/** Options of {@link DotRegressionLoss}. */
export interface DotRegressionLossOptions {
  /** Weight of mean_i ||h_i|| added to the loss (default 0; 0.01 for ImageNet-LT). */
  normRegularizer?: number;
}

const KEYS: OptionKeys = optionKeys<DotRegressionLossOptions>({ normRegularizer: true });

/** The DR loss; needs a model with a head (outputs.features and outputs.classifier). */
export class DotRegressionLoss implements Loss {
  readonly name = "dot_regression";
  readonly normRegularizer: number;

  constructor(options: DotRegressionLossOptions = {}) {
    checkOptions("new DotRegressionLoss()", options, KEYS);
    this.normRegularizer = options.normRegularizer ?? 0;
    if (!(this.normRegularizer >= 0)) {
      throw new Error(
        `collapse: DotRegressionLoss: normRegularizer must be >= 0, got ${this.normRegularizer}`,
      );
    }
  }

  #inputs(outputs: ModelOutputs, labels: Tensor): { h: Tensor; m: Tensor } {
    const h = outputs.features, m = outputs.classifier;
    if (!h || !m) {
      throw new Error(
        "collapse: DotRegressionLoss: the model outputs carry no features/classifier " +
          "(use a model with a head, e.g. resnet32({head: 'etf', numClasses}), and model.forward)",
      );
    }
    checkLabels("DotRegressionLoss", h, labels);
    return { h, m };
  }

  compute(outputs: ModelOutputs, labels: Tensor, options: LossCallOptions = {}): Tensor {
    const { h, m } = this.#inputs(outputs, labels);
    const loss = dotRegressionLoss(h, m, labels, {
      countLabels: options.countLabels,
      reduction: "mean",
    });
    if (!this.normRegularizer) return loss;
    const norms = mean(sqrt(sum(square(h), -1)));
    return add(loss, reshape(mulScalar(norms, this.normRegularizer), loss.shape));
  }

  /** Per-example DR losses [B] (plus `normRegularizer` * ||h_i||); their mean is `compute`. */
  perExample(outputs: ModelOutputs, labels: Tensor, options: LossCallOptions = {}): Tensor {
    const { h, m } = this.#inputs(outputs, labels);
    const rows = dotRegressionLoss(h, m, labels, {
      countLabels: options.countLabels,
      reduction: "none",
    });
    if (!this.normRegularizer) return rows;
    return add(rows, mulScalar(sqrt(sum(square(h), -1)), this.normRegularizer));
  }

  getConfig(): Record<string, unknown> {
    return { name: this.name, normRegularizer: this.normRegularizer };
  }
}
