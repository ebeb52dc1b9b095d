/**
 * The fast training step. Inputs are persistent GPU tensors allocated once (images x [B, H, W, C],
 * labels i32 [B]; the optimizer's lr f32[1]; mixup's lambda f32[1] and permutation i32[B]); one
 * step = (mixup) -> forward in training mode -> loss -> gradients of every trainable parameter ->
 * `arena.setGrads` -> optimizer update -> the step's loss and (mixup-weighted) correct count added
 * into a small GPU accumulator, and a step monitor that remembers the first non-finite loss. No
 * readback inside. The first run is eager (it compiles pipelines and sizes buffers), the second is
 * recorded with `engine().capture()` and every later run replays it: the host only writes the
 * batch, lr, lambda and permutation and submits one command buffer.
 * @module
 */
import "../../gpu/ops/mod.ts"; // plugs add/onesLike into autograd
import { grad, noGrad } from "../../gpu/autograd.ts";
import { type CapturedStep, engine } from "../../gpu/engine.ts";
import { accumulate_, watchFinite_ } from "../../gpu/ops/accumulate.ts";
import { fill_ } from "../../gpu/ops/creation.ts";
import { add, addScalar, equal, mul, neg } from "../../gpu/ops/elementwise.ts";
import { argmax, gather } from "../../gpu/ops/indexing.ts";
import { sum } from "../../gpu/ops/reduce.ts";
import { reshape } from "../../gpu/ops/shape.ts";
import { keep, tidy } from "../../gpu/scope.ts";
import { empty, fmtShape, readAll, type Tensor, writeTensor } from "../../gpu/tensor.ts";
import type { Batch } from "../../data/types.ts";
import type { Mixup } from "../losses/mixup.ts";
import { forwardOutputs, type TrainingState } from "./state.ts";

/** Statistics read back from the accumulators. */
export interface StepStats {
  /** Sum of the per-step (batch-mean) losses since the last reset. */
  lossSum: number;
  /** Sum of correct predictions (mixup: lambda-weighted) since the last reset. */
  correct: number;
  /** Steps counted by the monitor since the last reset. */
  steps: number;
  /** 1-based step (since the last reset) of the first non-finite loss, or 0. */
  badStep: number;
}

/** One training step for a fixed input shape, captured after its first run. */
export class TrainStep {
  readonly shape: readonly number[];
  readonly batchSize: number;
  /** Persistent inputs. */
  readonly x: Tensor;
  readonly labels: Tensor;
  /** f32[2]: loss sum, correct sum. */
  readonly acc: Tensor;
  /** u32[2]: steps, first bad step. */
  readonly monitor: Tensor;
  readonly mixup: Mixup | null;
  /** Whether steps after the first replay a capture (false: eager every step). */
  readonly useCapture: boolean;
  #captured: CapturedStep | null = null;
  #runs = 0;
  #disposed = false;

  constructor(
    readonly state: TrainingState,
    shape: readonly number[],
    options: { mixup?: Mixup | null; capture?: boolean } = {},
  ) {
    this.shape = [...shape];
    this.batchSize = shape[0];
    this.mixup = options.mixup ?? null;
    this.useCapture = options.capture ?? true;
    this.x = keep(empty(shape, "f32", "step.x"));
    this.labels = keep(empty([this.batchSize], "i32", "step.labels"));
    this.acc = keep(empty([2], "f32", "step.acc"));
    this.monitor = keep(empty([2], "u32", "step.monitor"));
    if (this.mixup) this.mixup.tensors(this.batchSize);
    this.resetStats();
  }

  /** Number of kernel launches per replay (0 before the capture). */
  get dispatchCount(): number {
    return this.#captured?.dispatchCount ?? 0;
  }

  /** Whether later runs replay a capture. */
  get captured(): boolean {
    return this.#captured !== null;
  }

  /** Zeroes the loss/correct accumulators and the step monitor (GPU fills, no readback). */
  resetStats(): void {
    fill_(this.acc, 0);
    fill_(this.monitor, 0);
  }

  /** Writes a batch into the persistent inputs (host -> GPU). */
  write(batch: Batch): void {
    const s = batch.shape;
    if (s.length !== this.shape.length || s.some((d, i) => d !== this.shape[i])) {
      throw new Error(
        `collapse: fit: batch of shape ${fmtShape(s)} but the training step was built for ${
          fmtShape(this.shape)
        } (batches must have a fixed shape)`,
      );
    }
    writeTensor(this.x, batch.images);
    writeTensor(this.labels, batch.labels);
  }

  /** The step's work, in a tidy scope (recorded once, or run eagerly). */
  body(): void {
    const { model, loss: base, optimizer } = this.state;
    const arena = this.state.arena;
    if (!arena) throw new Error("collapse: TrainStep: the parameters are not packed");
    tidy(() => {
      const mix = this.mixup;
      const x = mix ? mix.mixInputs(this.x) : this.x;
      const out = forwardOutputs(model, x, true);
      const loss = mix ? mix.loss(base, out, this.labels) : base.compute(out, this.labels);
      if (loss.size !== 1) {
        throw new Error(`collapse: fit: the loss must be a scalar, got ${loss.describe()}`);
      }
      arena.setGrads(grad(loss, arena.params));
      optimizer.step();
      noGrad(() => {
        const pred = argmax(out.logits, -1);
        let correct = sum(equal(pred, this.labels));
        if (mix) {
          const { lambda, perm } = mix.tensors(this.batchSize);
          const c2 = sum(equal(pred, gather(this.labels, perm, 0)));
          correct = add(mul(correct, lambda), mul(c2, addScalar(neg(lambda), 1)));
        }
        const l = reshape(loss, [1]);
        accumulate_(this.acc, l, 0);
        accumulate_(this.acc, reshape(correct, [1]), 1);
        watchFinite_(l, this.monitor);
      });
    });
  }

  /** Runs one step on the inputs written last: eagerly (first run, or capture off) or by replay. */
  run(): void {
    if (this.#disposed) throw new Error("collapse: TrainStep.run after dispose");
    const e = engine();
    if (this.#captured) {
      this.#captured.run();
    } else if (this.#runs >= 1 && this.useCapture) {
      const { step } = e.capture(() => this.body());
      this.#captured = step;
      step.run();
    } else {
      this.body();
      e.flush();
    }
    this.#runs++;
  }

  /**
   * Starts reading the accumulators back (the copy is encoded now, so later steps do not affect
   * the result); resolves when the values arrive.
   */
  readStats(): Promise<StepStats> {
    return readAll([this.acc, this.monitor]).then(([a, m]) => ({
      lossSum: a[0],
      correct: a[1],
      steps: m[0],
      badStep: m[1],
    }));
  }

  /** Frees the captured step and the persistent inputs. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#captured?.dispose();
    for (const t of [this.x, this.labels, this.acc, this.monitor]) t.dispose();
  }
}
