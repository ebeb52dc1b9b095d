/**
 * BatchNormalization over the last axis (channels-last: BatchNorm2d on NHWC, BatchNorm1d on
 * [N, C]), with weights "weight" (gamma), "bias" (beta) and the non-trainable running statistics
 * "running_mean"/"running_var" (PyTorch's state-dict names).
 *
 * `momentum` follows PyTorch's convention by default: running = (1 - m) * running + m * batch with
 * m = 0.1 the weight of the NEW batch. With `{momentumConvention: "keras"}` the momentum is Keras'
 * (0.99 = the weight of the OLD running value) and is converted internally (m = 1 - momentum).
 * The running variance is updated with the unbiased batch variance, as PyTorch does.
 * @module
 */
import { batchNorm } from "../../gpu/ops/batch_norm.ts";
import { fmtShape, type Tensor } from "../../gpu/tensor.ts";
import { checkChoice, type OptionKeys, optionKeys } from "../options.ts";
import type { CallOptions, Weight } from "../types.ts";
import { Layer, type LayerOptions, type Shape } from "./layer.ts";

/** Options of {@link BatchNormalization}. */
export interface BatchNormalizationOptions extends LayerOptions {
  /** Running-statistics momentum (see `momentumConvention`); default 0.1 (PyTorch) / 0.99 (Keras). */
  momentum?: number;
  /** "pytorch" (default; momentum = weight of the new batch) or "keras" (weight of the old value). */
  momentumConvention?: "pytorch" | "keras";
  /** Variance epsilon; default 1e-5 (PyTorch). */
  epsilon?: number;
}

/** Batch normalisation over the last (channel) axis. */
export class BatchNormalization extends Layer {
  /** The option names the constructor accepts. */
  static override readonly optionKeys: OptionKeys = optionKeys<BatchNormalizationOptions>({
    name: true,
    trainable: true,
    momentum: true,
    momentumConvention: true,
    epsilon: true,
  });
  /** Momentum in PyTorch's convention (weight of the new batch), after any conversion. */
  readonly momentum: number;
  readonly epsilon: number;
  readonly #given: { momentum: number; convention: "pytorch" | "keras" };
  gamma: Weight | null = null;
  beta: Weight | null = null;
  runningMean: Weight | null = null;
  runningVar: Weight | null = null;

  constructor(options: BatchNormalizationOptions = {}) {
    super(options);
    const convention = checkChoice(
      "new BatchNormalization()",
      "momentumConvention",
      options.momentumConvention ?? "pytorch",
      ["pytorch", "keras"] as const,
    );
    const given = options.momentum ?? (convention === "keras" ? 0.99 : 0.1);
    if (!(given >= 0 && given <= 1)) {
      throw new Error(`collapse: BatchNormalization: momentum must be in [0, 1], got ${given}`);
    }
    this.#given = { momentum: given, convention };
    this.momentum = convention === "keras" ? 1 - given : given;
    this.epsilon = options.epsilon ?? 1e-5;
    if (!(this.epsilon > 0)) {
      throw new Error(`collapse: BatchNormalization: epsilon must be > 0, got ${this.epsilon}`);
    }
  }

  override build(inputShape: Shape): void {
    if (inputShape.length < 2) this.fail(`expects [N, ..., C], got ${fmtShape(inputShape)}`);
    const c = inputShape[inputShape.length - 1];
    this.gamma = this.addWeight("weight", [c], "ones");
    this.beta = this.addWeight("bias", [c], "zeros");
    this.runningMean = this.addWeight("running_mean", [c], "zeros", { trainable: false });
    this.runningVar = this.addWeight("running_var", [c], "ones", { trainable: false });
  }

  override computeOutputShape(inputShape: Shape): Shape {
    const c = this.gamma!.value.shape[0];
    if (inputShape.length < 2 || inputShape[inputShape.length - 1] !== c) {
      this.fail(`expects ${c} channels on the last axis, got ${fmtShape(inputShape)}`);
    }
    return inputShape;
  }

  override call(x: Tensor, options: CallOptions): Tensor {
    return batchNorm(x, this.gamma!.value, this.beta!.value, {
      training: options.training,
      runningMean: this.runningMean!.value,
      runningVar: this.runningVar!.value,
      momentum: this.momentum,
      eps: this.epsilon,
    });
  }

  override getConfig(): Record<string, unknown> {
    return {
      ...super.getConfig(),
      momentum: this.#given.momentum,
      momentumConvention: this.#given.convention,
      epsilon: this.epsilon,
    };
  }
}
