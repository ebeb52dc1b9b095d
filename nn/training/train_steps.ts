/**
 * The training steps of one `fit`: the {@link TrainStep} of the first batch's shape and, for a
 * batch of another size with the same image shape (the last partial batch of an epoch, as
 * PyTorch's DataLoader yields by default), a second step of its own, captured once and replayed
 * in every later epoch. Both add into one set of {@link StepAccumulators}, so an epoch's loss,
 * accuracy, example count and step numbers span every batch. A third batch size replaces the
 * second step (memory stays bounded at two captured steps).
 * @module
 */
import { fmtShape } from "../../gpu/tensor.ts";
import type { Batch } from "../../data/types.ts";
import type { Mixup } from "../losses/mixup.ts";
import type { TrainingState } from "./state.ts";
import { StepAccumulators, type StepStats, TrainStep } from "./train_step.ts";

/** Options of {@link TrainSteps}. */
export interface TrainStepsOptions {
  /** Mixup state shared by the steps (one lambda/permutation pair per batch size). */
  mixup?: Mixup | null;
  /** Replay captures (default true); false: eager every step. */
  capture?: boolean;
}

/** A fit's training steps by batch size, sharing their accumulators. */
export class TrainSteps {
  /** The accumulators every step adds into. */
  readonly stats: StepAccumulators = new StepAccumulators();
  /** The step of the first batch's shape. */
  readonly main: TrainStep;
  readonly #options: TrainStepsOptions;
  #other: TrainStep | null = null;
  #retiredCaptures = 0;
  #disposed = false;

  /** The steps of `state`'s model; the main one for `shape` (the first batch's). */
  constructor(readonly state: TrainingState, shape: readonly number[], options: TrainStepsOptions) {
    this.#options = options;
    this.main = this.#make(shape);
  }

  /** Shape of the first batch (the full batch). */
  get shape(): readonly number[] {
    return this.main.shape;
  }

  /** Batch size of the first batch. */
  get batchSize(): number {
    return this.main.batchSize;
  }

  /** The step of the other batch size (the last partial batch), or null. */
  get tail(): TrainStep | null {
    return this.#other;
  }

  /** Kernel launches per replay of the main step (0 before its capture). */
  get dispatchCount(): number {
    return this.main.dispatchCount;
  }

  /** Steps recorded so far (a step reused across epochs counts once). */
  get captures(): number {
    return this.#retiredCaptures + (this.main.captured ? 1 : 0) +
      (this.#other?.captured ? 1 : 0);
  }

  /**
   * The step for `batch`: the main step for the first batch size, else the step of its size
   * (created on first use, replacing a step of a third size). Throws if the image shape differs.
   */
  stepFor(batch: Batch): TrainStep {
    const s = batch.shape, m = this.main.shape;
    if (s.length !== m.length || s.some((d, i) => i > 0 && d !== m[i]) || !(s[0] >= 1)) {
      throw new Error(
        `collapse: fit: batch of shape ${fmtShape(s)} but the training step was built for ${
          fmtShape(m)
        } (batches must have a fixed shape; only the batch size may differ, e.g. a last partial ` +
          "batch)",
      );
    }
    if (s[0] === this.main.batchSize) return this.main;
    if (this.#other?.batchSize === s[0]) return this.#other;
    if (this.#other) {
      this.#retiredCaptures += this.#other.captured ? 1 : 0;
      this.#other.dispose();
    }
    this.#other = this.#make(s);
    return this.#other;
  }

  /** Zeroes the shared accumulators. */
  resetStats(): void {
    this.stats.reset();
  }

  /** Starts reading the shared accumulators back (see {@link StepAccumulators.read}). */
  readStats(): Promise<StepStats> {
    return this.stats.read();
  }

  /** Frees every step and the accumulators. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.main.dispose();
    this.#other?.dispose();
    this.stats.dispose();
  }

  #make(shape: readonly number[]): TrainStep {
    return new TrainStep(this.state, shape, {
      mixup: this.#options.mixup,
      capture: this.#options.capture,
      stats: this.stats,
    });
  }
}
