/**
 * The fast training step. Inputs are persistent GPU tensors allocated once (images x [B, H, W, C],
 * labels i32 [B]; the optimizer's lr f32[1]; mixup's lambda f32[1] and permutation i32[B]); one
 * step = (mixup) -> forward in training mode -> loss -> gradients of every trainable parameter ->
 * `arena.setGrads` -> optimizer update -> the step's loss and (mixup-weighted) correct count added
 * into small GPU accumulators ({@link StepAccumulators}, which the steps of one fit share), and a
 * step monitor that remembers the first non-finite loss. No readback inside. The first run is eager
 * (it compiles pipelines and sizes buffers), the second is recorded with `engine().capture()` and
 * every later run replays it: the host only writes the batch, lr, lambda and permutation and
 * submits one command buffer. With GEMM autotuning, the second run measures the GEMMs' plans
 * ({@link TrainStep.tune}) and the third is recorded.
 * @module
 */
import "../../gpu/ops/mod.ts"; // plugs add/onesLike into autograd
import { grad, noGrad } from "../../gpu/autograd.ts";
import { type CapturedStep, engine } from "../../gpu/engine.ts";
import { accumulate_, watchFinite_ } from "../../gpu/ops/accumulate.ts";
import { tuneGemms, type TuneOptions, type TuneReport } from "../../gpu/ops/gemm_tune.ts";
import { fill_ } from "../../gpu/ops/creation.ts";
import { add, addScalar, equal, mul, mulScalar, neg } from "../../gpu/ops/elementwise.ts";
import { argmax, gather } from "../../gpu/ops/indexing.ts";
import { sum } from "../../gpu/ops/reduce.ts";
import { reshape } from "../../gpu/ops/shape.ts";
import { keep, tidy } from "../../gpu/scope.ts";
import { empty, fmtShape, readAll, type Tensor, tensor, writeTensor } from "../../gpu/tensor.ts";
import type { Batch } from "../../data/types.ts";
import type { Mixup } from "../losses/mixup.ts";
import { forwardOutputs, type TrainingState } from "./state.ts";

/** Statistics read back from the accumulators. */
export interface StepStats {
  /** Sum over steps of the batch-mean loss times the batch size, since the last reset. */
  lossSum: number;
  /** Sum of correct predictions (mixup: lambda-weighted) since the last reset. */
  correct: number;
  /** Training examples seen since the last reset (a last partial batch counts its real size). */
  samples: number;
  /** Steps counted by the monitor since the last reset. */
  steps: number;
  /** 1-based step (since the last reset) of the first non-finite loss, or 0. */
  badStep: number;
}

/**
 * The GPU accumulators training steps add into: loss x batch size, correct predictions and
 * examples (f32[3]), and the step monitor (u32[2]: steps, first non-finite step). Steps of
 * different batch sizes (a full batch and a last partial one) share one set, so an epoch's
 * statistics and step numbers span both.
 */
export class StepAccumulators {
  /** f32[3]: loss x batch size sum, correct sum, examples. */
  readonly acc: Tensor;
  /** u32[2]: steps, first bad step. */
  readonly monitor: Tensor;
  #disposed = false;

  constructor() {
    this.acc = keep(empty([3], "f32", "step.acc"));
    this.monitor = keep(empty([2], "u32", "step.monitor"));
    this.reset();
  }

  /** Zeroes the accumulators and the step monitor (GPU fills, no readback). */
  reset(): void {
    fill_(this.acc, 0);
    fill_(this.monitor, 0);
  }

  /**
   * Starts reading the accumulators back (the copy is encoded now, so later steps do not affect
   * the result); resolves when the values arrive.
   */
  read(): Promise<StepStats> {
    return readAll([this.acc, this.monitor]).then(([a, m]) => ({
      lossSum: a[0],
      correct: a[1],
      samples: a[2],
      steps: m[0],
      badStep: m[1],
    }));
  }

  /** Frees the accumulators. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.acc.dispose();
    this.monitor.dispose();
  }
}

/** Options of {@link TrainStep}. */
export interface TrainStepOptions {
  /** Mixup state (its lambda/permutation tensors for this batch size are created here). */
  mixup?: Mixup | null;
  /** Replay a capture after the first run (default true); false: eager every run. */
  capture?: boolean;
  /** Accumulators to add into (shared with other steps; not freed by this step). Default: own. */
  stats?: StepAccumulators;
}

/** One training step for a fixed input shape, captured after its first run. */
export class TrainStep {
  /** The input shape [B, H, W, C] this step was built for. */
  readonly shape: readonly number[];
  /** B, the batch size of {@link TrainStep.shape}. */
  readonly batchSize: number;
  /** Persistent input images, f32 of {@link TrainStep.shape}. */
  readonly x: Tensor;
  /** Persistent input labels, i32 [B]. */
  readonly labels: Tensor;
  /** The accumulators this step adds into. */
  readonly stats: StepAccumulators;
  /** The mixup state the step reads its lambda and permutation from, or null. */
  readonly mixup: Mixup | null;
  /** Whether steps after the first replay a capture (false: eager every step). */
  readonly useCapture: boolean;
  readonly #ownsStats: boolean;
  /** f32[1] = the batch size, added to the example count each step. */
  readonly #count: Tensor;
  #captured: CapturedStep | null = null;
  #runs = 0;
  #disposed = false;

  /**
   * A step of `state`'s model, loss and optimizer for inputs of `shape` (the parameters must be
   * packed, see {@link TrainingState.ensureArena}, before the first run).
   */
  constructor(
    readonly state: TrainingState,
    shape: readonly number[],
    options: TrainStepOptions = {},
  ) {
    this.shape = [...shape];
    this.batchSize = shape[0];
    this.mixup = options.mixup ?? null;
    this.useCapture = options.capture ?? true;
    this.x = keep(empty(shape, "f32", "step.x"));
    this.labels = keep(empty([this.batchSize], "i32", "step.labels"));
    this.#count = keep(tensor(new Float32Array([this.batchSize]), [1]));
    this.#ownsStats = !options.stats;
    this.stats = options.stats ?? new StepAccumulators();
    if (this.mixup) this.mixup.tensors(this.batchSize);
  }

  /** f32[3] accumulators (loss x batch size, correct, examples) of {@link TrainStep.stats}. */
  get acc(): Tensor {
    return this.stats.acc;
  }

  /** u32[2] step monitor of {@link TrainStep.stats}. */
  get monitor(): Tensor {
    return this.stats.monitor;
  }

  /** Number of kernel launches per replay (0 before the capture). */
  get dispatchCount(): number {
    return this.#captured?.dispatchCount ?? 0;
  }

  /** Whether later runs replay a capture. */
  get captured(): boolean {
    return this.#captured !== null;
  }

  /** Zeroes the accumulators and the step monitor (GPU fills, no readback). */
  resetStats(): void {
    this.stats.reset();
  }

  /** Writes a batch into the persistent inputs (host -> GPU). */
  write(batch: Batch): void {
    const s = batch.shape;
    if (s.length !== this.shape.length || s.some((d, i) => d !== this.shape[i])) {
      throw new Error(
        `collapse: fit: batch of shape ${fmtShape(s)} but the training step was built for ${
          fmtShape(this.shape)
        } (batches must have a fixed shape; see TrainSteps for a last partial batch)`,
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
        accumulate_(this.acc, mulScalar(l, this.batchSize), 0);
        accumulate_(this.acc, reshape(correct, [1]), 1);
        accumulate_(this.acc, this.#count, 2);
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
   * Whether the next run can measure GEMM plans ({@link tune}): the step is replayed (capture on)
   * and has run once, eagerly, so every kernel of the model's plans is compiled.
   */
  get tunable(): boolean {
    return this.useCapture && !this.#captured && this.#runs === 1;
  }

  /**
   * Runs one step as {@link run} does while measuring the candidate plans of each of its GEMMs
   * (`tuneGemms`): the step's own work uses the model's plans; the capture of the next run, and
   * every replay after it, use the fastest measured plans.
   */
  async tune(options?: TuneOptions): Promise<TuneReport> {
    if (this.#disposed) throw new Error("collapse: TrainStep.tune after dispose");
    const report = await tuneGemms(() => this.body(), options);
    this.#runs++;
    return report;
  }

  /**
   * Starts reading the accumulators back (the copy is encoded now, so later steps do not affect
   * the result); resolves when the values arrive.
   */
  readStats(): Promise<StepStats> {
    return this.stats.read();
  }

  /** Frees the captured step, the persistent inputs and (if its own) the accumulators. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#captured?.dispose();
    for (const t of [this.x, this.labels, this.#count]) t.dispose();
    if (this.#ownsStats) this.stats.dispose();
  }
}
