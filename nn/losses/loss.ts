/**
 * The loss contract: a loss maps a model's {@link ModelOutputs} (logits, and for head models the
 * features h and classifier matrix) and integer labels i32 [B] to a scalar tensor.
 * @module
 */
import type { Tensor } from "../../gpu/tensor.ts";
import type { ModelOutputs } from "../model/model.ts";

/** Per-call options of a loss. */
export interface LossCallOptions {
  /**
   * Labels whose per-class counts set class weights (the DR loss's Ew); default the labels
   * themselves. Mixup passes the un-mixed labels here for its permuted term.
   */
  countLabels?: Tensor;
}

/** A training loss. */
export interface Loss {
  /** Name for logs and configs. */
  readonly name: string;
  /** The scalar loss of a batch. */
  compute(outputs: ModelOutputs, labels: Tensor, options?: LossCallOptions): Tensor;
  /** JSON-serialisable configuration. */
  getConfig(): Record<string, unknown>;
}

/** Throws a clear error when a loss gets labels it cannot use. */
export function checkLabels(loss: string, logitsOrH: Tensor, labels: Tensor): void {
  if (labels.dtype !== "i32" || labels.rank !== 1 || labels.shape[0] !== logitsOrH.shape[0]) {
    throw new Error(
      `collapse: ${loss}: labels must be i32 [${logitsOrH.shape[0]}] for a batch of ${
        logitsOrH.shape[0]
      }, got ${labels.describe()}`,
    );
  }
}
