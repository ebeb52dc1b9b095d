/**
 * The paper's dot-regression (DR) loss on the head's features h [B, d] and the fixed ETF M [d, K]
 * (see DESIGN.md §3: per-batch class weights Ew_k = sqrt((B / |U|) / c_k), L = mean_i
 * (h_i . t_i - a_i s_i)^2 / (2 s_i) with s_i and a_i constants), via the fused op; optionally
 * + `normRegularizer` * mean_i ||h_i|| (0.01 on ImageNet-LT, with gradient).
 * @module
 */
import { dotRegressionLoss } from "../../gpu/ops/dot_regression.ts";
import { add, mulScalar, sqrt } from "../../gpu/ops/elementwise.ts";
import { mean, sum } from "../../gpu/ops/reduce.ts";
import { reshape } from "../../gpu/ops/shape.ts";
import { square } from "../../gpu/ops/elementwise.ts";
import type { Tensor } from "../../gpu/tensor.ts";
import type { ModelOutputs } from "../model/model.ts";
import { checkLabels, type Loss, type LossCallOptions } from "./loss.ts";

/** Options of {@link DotRegressionLoss}. */
export interface DotRegressionLossOptions {
  /** Weight of mean_i ||h_i|| added to the loss (default 0; 0.01 for ImageNet-LT). */
  normRegularizer?: number;
}

/** The DR loss; needs a model with a head (outputs.features and outputs.classifier). */
export class DotRegressionLoss implements Loss {
  readonly name = "dot_regression";
  readonly normRegularizer: number;

  constructor(options: DotRegressionLossOptions = {}) {
    this.normRegularizer = options.normRegularizer ?? 0;
  }

  compute(outputs: ModelOutputs, labels: Tensor, options: LossCallOptions = {}): Tensor {
    const h = outputs.features, m = outputs.classifier;
    if (!h || !m) {
      throw new Error(
        "collapse: DotRegressionLoss: the model outputs carry no features/classifier " +
          "(use a model with a head, e.g. resnet32({head: 'etf', numClasses}), and model.forward)",
      );
    }
    checkLabels("DotRegressionLoss", h, labels);
    const loss = dotRegressionLoss(h, m, labels, {
      countLabels: options.countLabels,
      reduction: "mean",
    });
    if (!this.normRegularizer) return loss;
    const norms = mean(sqrt(sum(square(h), -1)));
    return add(loss, reshape(mulScalar(norms, this.normRegularizer), loss.shape));
  }

  getConfig(): Record<string, unknown> {
    return { name: this.name, normRegularizer: this.normRegularizer };
  }
}
