/**
 * The loss contract: a loss maps a model's {@link ModelOutputs} (logits, and for head models the
 * features h and classifier matrix) and integer labels i32 [B] to a scalar tensor; losses that can
 * also give per-example values (for class weights) implement `perExample`, and losses whose form
 * changes with the epoch (deferred re-weighting) implement `onEpochBegin`, which `fit` calls before
 * every epoch.
 * @module
 */
import type { Tensor } from "../../gpu/tensor.ts";
import type { ModelOutputs } from "../types.ts";

export type { ModelOutputs };

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
  /**
   * The per-example losses f32 [B] whose mean is {@link Loss.compute} (optional; needed by class
   * weights, see `ClassWeightedLoss`).
   */
  perExample?(outputs: ModelOutputs, labels: Tensor, options?: LossCallOptions): Tensor;
  /**
   * Called by `fit` before each epoch (0-based `epoch` of `epochs`), outside any captured step, so
   * the loss may rewrite its GPU constants (e.g. LDAM's deferred re-weighting).
   */
  onEpochBegin?(epoch: number, epochs: number): void;
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
