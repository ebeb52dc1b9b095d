/**
 * The epoch loop (Keras' `fit`): per step it writes the batch, the scheduled learning rate and the
 * mixup lambda/permutation into persistent GPU tensors and replays the captured training step
 * (see train_step.ts; a last partial batch has a captured step of its own, see train_steps.ts);
 * loss/accuracy stay on the GPU and are read back asynchronously every
 * `progressEvery` steps (default: about every 2 s) and once at the end of each epoch. The NaN/Inf
 * guard reads a GPU step monitor at those readbacks and names the exact epoch and step of the first
 * non-finite loss. Randomness (mixup) comes from `Rng(seed * 1000003 + epoch)` and the data order
 * from `data.batches(epoch)`, so a run resumed at an epoch boundary from its checkpoint continues
 * exactly as the uninterrupted run.
 * @module
 */
import { engine } from "../../gpu/engine.ts";
import { TUNING } from "../../gpu/kernels/tuning.ts";
import { Rng } from "../../gpu/rng.ts";
import type { Batch } from "../../data/types.ts";
import { saveCheckpoint } from "../checkpoint.ts";
import type { ClassWeight } from "../losses/class_weighted.ts";
import { Mixup } from "../losses/mixup.ts";
import { type OptionKeys, optionKeys } from "../options.ts";
import type { Callback, FitContext } from "./callbacks.ts";
import { ProgressBarCallback } from "./callbacks.ts";
import { evaluate, type EvaluateOptions, type EvaluationResult } from "./evaluate.ts";
import { History, type Logs } from "./history.ts";
import type { ArrayInput, DataInput, LabelInput } from "./data_source.ts";
import { prepareFit } from "./fit_inputs.ts";
import { type DataSource, type TrainableModel, trainingState } from "./state.ts";
import type { StepStats } from "./train_step.ts";
import { TrainSteps } from "./train_steps.ts";
import { tuneLine, type TuneSummary, tuneSummary } from "./tune_summary.ts";

/** Options of {@link fit}. */
export interface FitOptions {
  /** Train until this epoch count (exclusive end index, as Keras). Default 1 (Keras). */
  epochs?: number;
  /** First epoch to run (resume: the checkpoint's `epoch`). Default 0. */
  initialEpoch?: number;
  /**
   * Evaluated after every epoch; adds val_loss, val_accuracy, val_head/medium/tail, val_ece (and
   * the compiled top-k metrics). A DataSource, an array of batches, or `[x, y]` arrays.
   */
  validationData?: DataInput | [ArrayInput, LabelInput];
  /** Options of the per-epoch evaluation (e.g. `neuralCollapse: true` adds val_nc1, ...). */
  validationOptions?: EvaluateOptions;
  /**
   * Callbacks called around the epochs and steps (progress bar, loggers, checkpoints, Keras
   * callbacks).
   */
  callbacks?: Callback[];
  /** Seed of the run's randomness (mixup), combined with the epoch. Default 0. */
  seed?: number;
  /** Mixup Beta(alpha, alpha); 0 or absent: no mixup. */
  mixupAlpha?: number;
  /** Replay a captured step after the first (default true); false: eager every step (debugging). */
  capture?: boolean;
  /**
   * Measure the GEMMs' plans on this device before the step is recorded (like PyTorch's
   * `torch.backends.cudnn.benchmark = true`): the second training step times each GEMM's best
   * candidate plans and every later step uses the fastest (`tuneGemms`). Needs `capture` and the
   * device feature `timestamp-query`. Default: `TUNING.autotune` (the environment variable
   * `COLLAPSE_AUTOTUNE=1`). What was measured goes into `history.params.autotune`, and with
   * `verbose: 1` onto stderr.
   */
  autotune?: boolean;
  /**
   * Steps between statistic readbacks (progress, NaN check), or "auto" (default): after the first
   * and second step of every epoch, then about one readback every 2 seconds. Each readback costs
   * >= ~10 ms on Deno.
   */
  progressEvery?: number | "auto";
  /**
   * Batches per epoch for per-step schedules and ETA (default: `data.batchesPerEpoch(epoch)`;
   * unknown: schedules see progress 0 within each epoch).
   */
  stepsPerEpoch?: number;
  /** 1: add a {@link ProgressBarCallback} (default: 1 when stderr is a terminal). */
  verbose?: 0 | 1;
  /** Run configuration saved into checkpoints written by callbacks. */
  config?: unknown;
  /**
   * Per-class loss weights for this run (Keras' `class_weight`): an array, `{ class: weight }`
   * (others weigh 1) or "balanced" (n / (K n_c) from the training counts: arrays, or a source
   * with `classCounts()`). Validation losses stay unweighted.
   */
  classWeight?: ClassWeight;
}

/** Options of `fit(x, y, options)` with in-memory arrays: {@link FitOptions} and the batching. */
export interface ArrayFitOptions extends FitOptions {
  /** Examples per batch (default 32, as Keras). */
  batchSize?: number;
  /** Fraction of the examples (the last ones, before shuffling) held out for validation. */
  validationSplit?: number;
  /** Reshuffle the training examples every epoch (default true, as Keras). */
  shuffle?: boolean;
}

const FIT_KEYS: OptionKeys = optionKeys<FitOptions>({
  epochs: true,
  initialEpoch: true,
  validationData: true,
  validationOptions: true,
  callbacks: true,
  seed: true,
  mixupAlpha: true,
  capture: true,
  autotune: true,
  progressEvery: true,
  stepsPerEpoch: true,
  verbose: true,
  config: true,
  classWeight: true,
});

/** The options the epoch loop runs with (arguments resolved by fit_inputs.ts). */
type LoopOptions = Omit<FitOptions, "validationData" | "classWeight"> & {
  epochs: number;
  validationData?: DataSource;
};

/**
 * Error raised by the NaN/Inf guard. `epoch` is the 0-based epoch index (as callbacks receive
 * it); the message counts epochs from 1, as the progress and summary lines do.
 */
export class NonFiniteLossError extends Error {
  /**
   * The error for a non-finite loss at 0-based `epoch` and 1-based `step` of it; `detail` says
   * where it was found.
   */
  constructor(readonly epoch: number, readonly step: number, detail: string) {
    super(
      `collapse: fit: the loss became NaN/Inf in epoch ${epoch + 1} (counting from 1), step ` +
        `${step} of the epoch${detail}; the weights are no longer usable. ` +
        "Lower the learning rate, check the inputs and labels, or resume from the last checkpoint.",
    );
    this.name = "NonFiniteLossError";
  }
}

/**
 * The generator of `fit`'s randomness in `epoch` (the mixup lambda and permutation of each step,
 * drawn in step order): `Rng(seed * 1000003 + epoch)`, so a resumed run draws what the
 * uninterrupted run drew, and the draws can be reproduced outside `fit`.
 */
export function fitRng(seed: number, epoch: number): Rng {
  return new Rng(seed * 1000003 + epoch);
}

function valLogs(r: EvaluationResult, logs: Logs): void {
  logs.val_loss = r.loss;
  logs.val_accuracy = r.accuracy;
  logs.val_head = r.report.head;
  logs.val_medium = r.report.medium;
  logs.val_tail = r.report.tail;
  logs.val_ece = r.ece;
  for (const [k, v] of Object.entries(r.metrics)) logs[`val_${k}`] = v;
  const nc = r.neuralCollapse;
  if (nc) {
    logs.val_nc1 = nc.nc1;
    logs.val_nc_distance = nc.normalizedDistance;
    logs.val_nc_cos_h = nc.meanCosH;
    logs.val_nc_cos_hw = nc.meanDiagCosHW;
  }
}

function checkBatch(b: Batch): void {
  const n = b.shape.reduce((a, c) => a * c, 1);
  if (b.images.length !== n || b.labels.length !== b.shape[0]) {
    throw new Error(
      `collapse: fit: batch [${
        b.shape.join(", ")
      }] has ${b.images.length} values and ${b.labels.length} labels`,
    );
  }
}

/**
 * Trains a compiled model on `data` (a DataSource such as a Loader, or an array of batches) or on
 * in-memory arrays `x`, `y` (Keras' `fit(x, y, { batchSize, epochs, validationSplit, shuffle })`)
 * from `initialEpoch` to `epochs`, returning the per-epoch {@link History}. Unknown option keys
 * are an error. Every batch is trained on, a last partial batch included (as PyTorch's DataLoader
 * without `drop_last`): it gets a captured step of its own, reused in later epochs. The epoch's
 * loss and accuracy are means over examples.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import {
 *   arraySource,
 *   CheckpointCallback,
 *   compile,
 *   Dense,
 *   fit,
 *   initDevice,
 *   Sequential,
 *   SGD,
 * } from "@collapse/collapse";
 *
 * await initDevice();
 * const y = Array.from({ length: 60 }, (_, i) => i % 3);
 * const x = y.map((c, i) => [c, Math.sin(i)]);
 * const model = new Sequential([new Dense(8, { activation: "relu" }), new Dense(3)], {
 *   inputShape: [2],
 * });
 * compile(model, {
 *   optimizer: new SGD({ learningRate: 0.1, momentum: 0.9 }),
 *   loss: "sparse_categorical_crossentropy",
 * });
 * // In-memory arrays, as Keras' fit(x, y):
 * await fit(model, x, y, { epochs: 5, batchSize: 16, validationSplit: 0.2, classWeight: "balanced" });
 * // Any DataSource (a Loader, an arraySource, an array of batches), with validation and callbacks:
 * const train = await arraySource(x, y, { batchSize: 16, shuffle: true });
 * const dir = await Deno.makeTempDir();
 * const history = await fit(model, train, {
 *   epochs: 3,
 *   validationData: await arraySource(x, y),
 *   seed: 1,
 *   callbacks: [new CheckpointCallback({ dir })], // last.safetensors, best.safetensors
 * });
 * assertEquals(history.epoch, [0, 1, 2]);
 * assertEquals(Object.keys(history.history).includes("val_accuracy"), true);
 * ```
 */
export function fit(model: TrainableModel, data: DataInput, options?: FitOptions): Promise<History>;
/** Keras' `fit(x, y, { batchSize, epochs, validationSplit, shuffle, classWeight })`. */
export function fit(
  model: TrainableModel,
  x: ArrayInput,
  y: LabelInput,
  options?: ArrayFitOptions,
): Promise<History>;
export async function fit(model: TrainableModel, ...args: unknown[]): Promise<History> {
  const call = await prepareFit<FitOptions>(model, args, FIT_KEYS);
  return await call.run((data, options) => fitLoop(model, data, options));
}

/** The epoch loop over resolved arguments. */
async function fitLoop(
  model: TrainableModel,
  data: DataSource,
  options: LoopOptions,
): Promise<History> {
  const state = trainingState(model, "fit");
  const epochs = options.epochs;
  const initialEpoch = options.initialEpoch ?? 0;
  if (
    !Number.isInteger(epochs) || epochs < 0 || !Number.isInteger(initialEpoch) || initialEpoch < 0
  ) {
    throw new Error(`collapse: fit: invalid epochs ${epochs} / initialEpoch ${initialEpoch}`);
  }
  const seed = options.seed ?? 0;
  const alpha = options.mixupAlpha ?? 0;
  if (!(alpha >= 0)) throw new Error(`collapse: fit: mixupAlpha must be >= 0, got ${alpha}`);
  const capture = options.capture ?? true;
  const autotune = options.autotune ?? TUNING.autotune;
  const every = options.progressEvery ?? "auto";
  if (every !== "auto" && !(Number.isInteger(every) && every >= 1)) {
    throw new Error(`collapse: fit: progressEvery must be a positive integer or "auto"`);
  }
  const verbose = options.verbose ?? (Deno.stderr.isTerminal() ? 1 : 0);
  const callbacks = [...(options.callbacks ?? [])];
  if (verbose === 1 && !callbacks.some((c) => c instanceof ProgressBarCallback)) {
    callbacks.unshift(new ProgressBarCallback());
  }
  const history = new History();
  const optimizer = state.optimizer;
  let steps: TrainSteps | null = null;
  const ctx: FitContext = {
    model,
    optimizer,
    epochs,
    initialEpoch,
    stepsPerEpoch: null,
    batchSize: 0,
    stopTraining: false,
    history,
    saveCheckpoint: (path, epoch, extra) =>
      saveCheckpoint(path, model, {
        optimizer: state.arena ? optimizer : null,
        epoch,
        seed,
        config: options.config,
        extra,
        inputShape: steps ? [-1, ...steps.shape.slice(1)] : undefined,
      }),
  };
  history.params = { epochs, initialEpoch, seed, mixupAlpha: alpha, capture };
  let lastLogs: Logs = {};
  let prevSteps: number | null = null;
  const emit = async <K extends keyof Callback>(
    name: K,
    ...args: Parameters<NonNullable<Callback[K]>>
  ) => {
    for (const cb of callbacks) {
      const f = cb[name] as ((...a: unknown[]) => unknown) | undefined;
      if (f) await f.apply(cb, args);
    }
  };
  try {
    await emit("onTrainBegin", ctx);
    for (let epoch = initialEpoch; epoch < epochs && !ctx.stopTraining; epoch++) {
      const fromData = data.batchesPerEpoch?.(epoch) ?? 0;
      const known = options.stepsPerEpoch ?? (fromData > 0 ? fromData : null);
      ctx.stepsPerEpoch = known ?? prevSteps;
      await emit("onEpochBegin", epoch, ctx);
      const rng = fitRng(seed, epoch);
      steps?.resetStats();
      let n = 0;
      let lr = NaN;
      const t0 = performance.now();
      // Readbacks: with "auto", after the first and the second step of the epoch (the progress
      // bar shows steps and images/s at once), then about every 2 s as timed between readbacks.
      let readEvery = every === "auto" ? 1 : every;
      let nextRead = readEvery;
      let lastRead = { t: t0, n: 0, samples: 0 };
      let pending: Promise<void> | null = null;
      let failure: unknown = null;
      const settle = async () => {
        if (pending) await pending;
        pending = null;
        if (failure) throw failure;
      };
      const check = (s: StepStats, at: number) => {
        if (s.badStep > 0) {
          throw new NonFiniteLossError(
            epoch,
            s.badStep,
            ` (found at the readback after step ${at}; readbacks every ${readEvery} steps)`,
          );
        }
      };
      for await (const batch of data.batches(epoch)) {
        checkBatch(batch);
        if (!steps) {
          model.build(batch.shape);
          state.ensureArena();
          const mixup = alpha > 0 ? new Mixup(alpha) : null;
          steps = new TrainSteps(state, batch.shape, { mixup, capture });
          ctx.batchSize = steps.batchSize;
        }
        const step = steps.stepFor(batch);
        lr = optimizer.applySchedule(epoch, known ? Math.min(n / known, 1 - 1e-9) : 0);
        step.mixup?.sample(step.batchSize, rng);
        step.write(batch);
        if (autotune && step.tunable) {
          const r = await step.tune();
          const tuned = (history.params.autotune ??= []) as TuneSummary[];
          tuned.push(tuneSummary(r, step.batchSize));
          if (verbose === 1) console.error(`autotune: ${tuneLine(r, step.batchSize)}`);
        } else step.run();
        n++;
        if (failure) throw failure;
        if (n >= nextRead) {
          await settle(); // the previous readback has landed and may have moved nextRead
        }
        if (n >= nextRead) {
          const at = n, lrAt = lr; // the values of this step, not of the steps run meanwhile
          pending = steps.readStats().then(async (s) => {
            check(s, at);
            const now = performance.now();
            const logs: Logs = {
              loss: s.lossSum / Math.max(1, s.samples),
              accuracy: s.correct / Math.max(1, s.samples),
              lr: lrAt,
              // Since the previous readback of the epoch (the first: since the epoch began).
              images_per_sec: (s.samples - lastRead.samples) / ((now - lastRead.t) / 1000),
            };
            if (every === "auto") {
              if (at < 2) nextRead = 2;
              else {
                // Timed over the steps since the previous readback (the first step of a run
                // also compiles the pipelines: it is never the only step timed here).
                const msPerStep = (now - lastRead.t) / Math.max(1, at - lastRead.n);
                readEvery = Math.max(
                  1,
                  Math.min(100000, Math.round(2000 / Math.max(msPerStep, 1e-3))),
                );
                nextRead = at + readEvery;
              }
            }
            lastRead = { t: now, n: at, samples: s.samples };
            await emit("onProgress", epoch, at, logs, ctx);
          }).catch((e) => {
            failure ??= e;
          });
          nextRead = n + readEvery; // until the readback lands (a source that never yields)
        }
      }
      await settle();
      if (!steps || n === 0) throw new Error(`collapse: fit: epoch ${epoch} yielded no batch`);
      const s = await steps.readStats();
      check(s, n);
      prevSteps = n;
      const secs = (performance.now() - t0) / 1000;
      const logs: Logs = {
        loss: s.lossSum / s.samples,
        accuracy: s.correct / s.samples,
        lr,
        images_per_sec: s.samples / secs,
      };
      if (options.validationData) {
        valLogs(await evaluate(model, options.validationData, options.validationOptions), logs);
      }
      history.record(epoch, logs);
      lastLogs = logs;
      ctx.stepsPerEpoch = n;
      await emit("onEpochEnd", epoch, logs, ctx);
    }
    history.params.steps = prevSteps;
    history.params.batchSize = ctx.batchSize;
    history.params.dispatchesPerStep = steps?.dispatchCount ?? 0;
    history.params.capturedSteps = steps?.captures ?? 0;
  } catch (e) {
    ctx.error = e;
    throw e;
  } finally {
    try {
      await emit("onTrainEnd", lastLogs, ctx);
    } finally {
      steps?.dispose();
      engine().flush();
    }
  }
  return history;
}
