/**
 * The per-model training state behind `compile`: the compiled configuration (optimizer, loss,
 * metrics), the parameter arena holding every trainable weight (each `Weight.value` swapped for its
 * arena view, decayed parameters first), and the cached training/evaluation steps. Also the
 * data-source contract and the model forward helper shared by fit/evaluate/predict.
 * @module
 */
import { fill_ } from "../../gpu/ops/creation.ts";
import { ParamArena } from "../../gpu/param_arena.ts";
import type { Tensor } from "../../gpu/tensor.ts";
import type { Batch } from "../../data/types.ts";
import { lossFromName, type LossName } from "../losses/by_name.ts";
import type { Loss } from "../losses/loss.ts";
import { parseMetric } from "../metrics/top_k.ts";
import type { ModelOutputs } from "../types.ts";
import { optimizerFromName, type OptimizerName } from "../optimizers/by_name.ts";
import { Optimizer } from "../optimizers/optimizer.ts";
import { checkOptions, type OptionKeys, optionKeys } from "../options.ts";
import type { CallOptions, Trainable, Weight } from "../types.ts";

/**
 * Anything that yields the batches of an epoch (a data Loader, an in-memory array, ...): one batch
 * size, except possibly a smaller last batch, which `fit` trains on too.
 */
export interface DataSource {
  /** The batches of `epoch`, in order (the order may depend on the epoch, e.g. shuffling). */
  batches(epoch: number): AsyncIterable<Batch> | Iterable<Batch>;
  /** Number of batches `batches(epoch)` yields (progress bar, per-step schedules). Optional. */
  batchesPerEpoch?(epoch: number): number;
  /** Examples per class (for `classWeight: "balanced"`). Optional. */
  classCounts?(): number[];
}

/** What `compile` takes. */
export interface CompileOptions {
  /** An Optimizer, or a name with Keras' defaults: "sgd" (lr 0.01), "adam", "adamw" (lr 1e-3). */
  optimizer: Optimizer | OptimizerName;
  /**
   * The training loss (DotRegressionLoss for the ETF head, CrossEntropyLoss for a Dense head), or
   * a name: "sparse_categorical_crossentropy", "dot_regression".
   */
  loss: Loss | LossName;
  /**
   * Metrics reported by `evaluate` (and as `val_*` by `fit`): "accuracy" (top-1, always reported)
   * and top-k accuracies such as "top5". Unknown names are an error.
   */
  metrics?: string[];
}

const COMPILE_KEYS: OptionKeys = optionKeys<CompileOptions>({
  optimizer: true,
  loss: true,
  metrics: true,
});

/** The compile options with names resolved to objects. */
interface ResolvedCompile {
  optimizer: Optimizer;
  loss: Loss;
  metrics: string[];
}

function resolveCompile(options: CompileOptions): ResolvedCompile {
  checkOptions("compile()", options, COMPILE_KEYS, { required: ["optimizer", "loss"] });
  const optimizer = typeof options.optimizer === "string"
    ? optimizerFromName(options.optimizer)
    : options.optimizer;
  if (!(optimizer instanceof Optimizer)) {
    throw new Error(
      'collapse: compile(): optimizer must be an Optimizer (new SGD(...), new AdamW(...)) or a name ("sgd", "adam", "adamw")',
    );
  }
  const loss = typeof options.loss === "string" ? lossFromName(options.loss) : options.loss;
  if (typeof loss?.compute !== "function") {
    throw new Error(
      "collapse: compile(): loss must be a Loss (DotRegressionLoss, CrossEntropyLoss, ...) or a " +
        'name ("sparse_categorical_crossentropy", "dot_regression")',
    );
  }
  const metrics = options.metrics ?? ["accuracy"];
  if (!Array.isArray(metrics)) {
    throw new Error(`collapse: compile(): metrics must be an array of names, e.g. ["accuracy"]`);
  }
  for (const m of metrics) parseMetric(m);
  return { optimizer, loss, metrics: [...metrics] };
}

/** A model that can also return its head's features and classifier (see nn/model). */
export type TrainableModel = Trainable & {
  forward?(x: Tensor, options: Partial<CallOptions>): ModelOutputs;
};

/** Logits and, for head models, features h and classifier M/W. */
export function forwardOutputs(model: TrainableModel, x: Tensor, training: boolean): ModelOutputs {
  if (typeof model.forward === "function") return model.forward(x, { training });
  return { logits: model.call(x, { training }) };
}

/** Something a state owns that must be freed when it is reset. */
export interface Releasable {
  dispose(): void;
}

/** The training state of one model. */
export class TrainingState {
  readonly model: TrainableModel;
  optimizer: Optimizer;
  loss: Loss;
  metrics: string[];
  arena: ParamArena | null = null;
  /** The trainable weights in arena order. */
  packed: Weight[] = [];
  /** Cached steps (training and evaluation), by key; freed on recompile. */
  readonly steps: Map<string, Releasable> = new Map();

  constructor(model: TrainableModel, options: ResolvedCompile) {
    this.model = model;
    this.optimizer = options.optimizer;
    this.loss = options.loss;
    this.metrics = options.metrics ?? ["accuracy"];
  }

  /** Frees cached steps (they hold the old optimizer's tensors, or an old input shape). */
  clearSteps(): void {
    for (const s of this.steps.values()) s.dispose();
    this.steps.clear();
  }

  /**
   * Packs the trainable weights into one arena (once; the model must be built), swaps every
   * `Weight.value` for its arena view and attaches the optimizer. Throws if the set of trainable
   * weights changed since it was packed.
   */
  ensureArena(): ParamArena {
    const trainable = this.model.weights().filter((w) => w.trainable);
    if (this.arena) {
      const same = trainable.length === this.packed.length &&
        trainable.every((w, i) => w === this.packed[i]);
      if (!same) {
        throw new Error(
          "collapse: fit: the set of trainable weights changed since training started " +
            "(freeze/unfreeze before the first fit, or build a new model)",
        );
      }
      this.optimizer.attach(this.arena);
      return this.arena;
    }
    if (trainable.length === 0) {
      throw new Error("collapse: fit: the model has no trainable weights");
    }
    const arena = ParamArena.pack(
      trainable.map((w) => ({ name: w.name, value: w.value, decay: this.optimizer.decays(w) })),
      { adam: this.optimizer.kind === "adamw" },
    );
    trainable.forEach((w, i) => {
      const old = w.value;
      w.value = arena.params[i];
      if (old !== w.value) old.dispose();
    });
    this.arena = arena;
    this.packed = trainable;
    this.clearSteps(); // steps recorded before packing bound the old weight buffers
    this.optimizer.attach(arena);
    return arena;
  }

  /** Zeroes the arena's optimizer state (a new optimizer starts fresh). */
  resetOptimizerState(): void {
    const a = this.arena;
    if (!a) return;
    fill_(a.state1, 0);
    fill_(a.sgdStarted, 0);
    if (a.state2) fill_(a.state2, 0);
  }
}

const states = new WeakMap<object, TrainingState>();

/**
 * Configures `model` for training (Keras' `compile`): optimizer, loss, metrics, as objects or by
 * name. Recompiling keeps the trained weights and resets the optimizer state. Unknown option keys,
 * optimizer, loss or metric names are an error.
 *
 * @example
 * ```ts ignore
 * compile(model, {
 *   optimizer: new SGD({ learningRate: 0.1, momentum: 0.9, weightDecay: 2e-4 }),
 *   loss: new DotRegressionLoss(),
 * });
 * compile(model, { optimizer: "adamw", loss: "sparse_categorical_crossentropy", metrics: ["top5"] });
 * ```
 */
export function compile(model: TrainableModel, compileOptions: CompileOptions): void {
  const options = resolveCompile(compileOptions);
  const prev = states.get(model);
  if (prev) {
    prev.clearSteps();
    if (prev.optimizer !== options.optimizer) {
      prev.optimizer.dispose();
      prev.resetOptimizerState();
    }
    prev.optimizer = options.optimizer;
    prev.loss = options.loss;
    prev.metrics = options.metrics;
    if (prev.arena) prev.optimizer.attach(prev.arena);
  } else states.set(model, new TrainingState(model, options));
  if ("compiled" in model) (model as { compiled: unknown }).compiled = { ...options };
}

/** The state `compile` created; throws a clear error if `compile` was not called. */
export function trainingState(model: TrainableModel, what = "fit"): TrainingState {
  const s = states.get(model);
  if (!s) throw new Error(`collapse: ${what}: call compile(model, {optimizer, loss}) first`);
  return s;
}

/** The state if compiled, else null. */
export function maybeTrainingState(model: TrainableModel): TrainingState | null {
  return states.get(model) ?? null;
}
