/**
 * The contracts between layers/models (nn/layers, nn/model, nn/models, nn/heads) and training
 * (nn/training, nn/optimizers, nn/checkpoint): weights as named, mutable holders so the trainer can
 * move them into one flat parameter buffer.
 * @module
 */
import type { Tensor } from "../gpu/tensor.ts";

/** A named variable of a layer. The trainer may replace `value` by a view into a flat buffer. */
export interface Weight {
  /** Unique, stable, torch-like dotted path once inside a model, e.g. "stage1.block0.conv1.kernel". */
  name: string;
  value: Tensor;
  /** Updated by the optimizer (false for BN running stats and the fixed ETF matrix). */
  trainable: boolean;
  /** Whether weight decay applies (the paper decays all trainable params, BN too). */
  decay: boolean;
  /**
   * How the storage differs from PyTorch's layout of the same parameter: "conv_hwio" (a conv
   * kernel [KH, KW, Cin, Cout]; torch OIHW) or "dense_in_out" (a linear kernel [in, out]; torch
   * [out, in]). Absent: stored as PyTorch stores it (biases, BN, the ETF matrix).
   */
  layout?: WeightLayout;
}

/** See {@link Weight.layout}. */
export type WeightLayout = "conv_hwio" | "dense_in_out";

/**
 * What a model computes for a batch, for losses: `logits` [N, K] always; `features` h [N, d] and
 * `classifier` M (or W) [d, K] when the model ends in a head (logits = h classifier), so that the
 * DR loss gets h and the fixed ETF M, and neural-collapse metrics get H and W.
 */
export interface ModelOutputs {
  /** [N, K]. */
  logits: Tensor;
  /** The head's features h [N, d]. */
  features?: Tensor;
  /** The head's classifier matrix [d, K]. */
  classifier?: Tensor;
}

/** Options of a forward call. */
export interface CallOptions {
  /** Training mode: batch statistics in BN (and running-stat updates), dropout active. */
  training: boolean;
}

/** What the trainer needs from a model. */
export interface Trainable {
  /** Forward pass: inputs NHWC (or [N, features]) -> outputs (logits [N, K]). */
  call(x: Tensor, options: CallOptions): Tensor;
  /** All weights, trainable and not, in a stable order, with unique names. */
  weights(): Weight[];
  /** Builds the weights for an input shape (with batch dimension) if not built yet. */
  build(inputShape: readonly number[]): void;
}
