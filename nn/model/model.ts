/**
 * The Model base class (a {@link Layer} that is {@link Trainable}): subclassing support (override
 * `call(x, options)` and register sublayers with `track`), whole-model `build(inputShape)` by a
 * symbolic trace (falling back to one eager batch-1 pass for `call`s that use raw ops), seeded
 * initialisation, `forward` returning logits plus features for feature-space losses, `predict`,
 * `summary`, Keras' `compile`/`fit`/`evaluate`/`predict` (over a DataSource, an array of batches or
 * in-memory arrays; nn/training implements them) and `saveWeights`/`loadWeights` (safetensors).
 * Dependencies point one way: nn/model uses nn/training, never the reverse.
 * @module
 */
import { noGrad } from "../../gpu/autograd.ts";
import { zeros } from "../../gpu/ops/creation.ts";
import { Rng } from "../../gpu/rng.ts";
import { tidy } from "../../gpu/scope.ts";
import { Tensor } from "../../gpu/tensor.ts";
import { type CheckpointInfo, loadCheckpoint, saveCheckpoint } from "../checkpoint.ts";
import { withInitRng } from "../init.ts";
import { Layer, type LayerOptions, type Shape, SymbolicTensor } from "../layers/layer.ts";
import { checkOptions, type OptionKeys, optionKeys } from "../options.ts";
import {
  type ArrayInput,
  type DataInput,
  hostArrays,
  hostArraySource,
  isDataInput,
  type LabelInput,
} from "../training/data_source.ts";
import {
  evaluate,
  EVALUATE_KEYS,
  type EvaluateOptions,
  type EvaluationResult,
} from "../training/evaluate.ts";
import { type ArrayFitOptions, fit, type FitOptions } from "../training/fit.ts";
import type { History } from "../training/history.ts";
import {
  predict,
  PREDICT_KEYS,
  type Predictions,
  type PredictOptions,
} from "../training/predict.ts";
import { compile, type CompileOptions } from "../training/state.ts";
import type { CallOptions, ModelOutputs, Trainable } from "../types.ts";
import { summary, type SummaryOptions } from "./summary.ts";

export type { ModelOutputs } from "../types.ts";

/** Options of {@link Model}. */
export interface ModelOptions extends LayerOptions {
  /** Seed of the weight initialisation (default: the global init RNG, see `setInitSeed`). */
  seed?: number;
}

/** The allowed keys of {@link ModelOptions}. */
export const MODEL_OPTION_KEYS: OptionKeys = optionKeys<ModelOptions>({
  name: true,
  trainable: true,
  seed: true,
});

/** The batching of in-memory arrays. */
export interface ArrayBatchOptions {
  /** Examples per batch (default 32, as Keras). */
  batchSize?: number;
}

/** Options of `model.evaluate(x, y, options)`: {@link EvaluateOptions} and the batch size. */
export interface ArrayEvaluateOptions extends EvaluateOptions, ArrayBatchOptions {}

/** Options of `model.predict(x, options)` over arrays or a DataSource. */
export interface ArrayPredictOptions extends PredictOptions, ArrayBatchOptions {}

/** Options of {@link Model.loadWeights}. */
export interface LoadWeightsOptions {
  /** Require the file's weights and the model's to match exactly (default true). */
  strict?: boolean;
}

const BATCH_KEYS: OptionKeys = optionKeys<ArrayBatchOptions>({ batchSize: true });
const EVALUATE_ARRAY_KEYS: OptionKeys = [...EVALUATE_KEYS, ...BATCH_KEYS];
const PREDICT_ARRAY_KEYS: OptionKeys = [...PREDICT_KEYS, ...BATCH_KEYS];
const LOAD_WEIGHTS_KEYS: OptionKeys = optionKeys<LoadWeightsOptions>({ strict: true });

/** The per-example shape of a built model's input, if known. */
function exampleShape(model: Layer): number[] | undefined {
  const s = model.inputShape;
  if (!Array.isArray(s) || Array.isArray(s[0])) return undefined;
  const rest = (s as unknown as number[]).slice(1);
  return rest.every((d) => d > 0) ? rest : undefined;
}

/** The number of examples in x (flat arrays need the model's input shape). */
function exampleCount(x: ArrayInput, model: Layer): number {
  if (x instanceof Tensor) return x.shape[0];
  if (Array.isArray(x) && Array.isArray(x[0])) return x.length;
  if (!Array.isArray(x) && !ArrayBuffer.isView(x) && "shape" in x) return x.shape[0];
  const per = exampleShape(model)?.reduce((a, b) => a * b, 1);
  if (!per) {
    throw new Error(
      `collapse: ${model.describe()}: predict(x): x is a flat array; build the model ` +
        "(inputShape) or pass { data, shape }",
    );
  }
  return (x as ArrayLike<number>).length / per;
}

/**
 * A trainable network. Subclass it and override {@link Model.call}, registering sublayers in the
 * constructor with {@link Layer.track}:
 *
 * @example
 * ```ts ignore
 * class Mlp extends Model {
 *   fc1 = this.track("fc1", new Dense(32, { activation: "relu" }));
 *   fc2 = this.track("fc2", new Dense(10));
 *   override call(x: Tensor, o: CallOptions) {
 *     return this.fc2.apply(this.fc1.apply(x, o), o);
 *   }
 * }
 * const m = new Mlp({ seed: 1 });
 * m.build([-1, 784]);
 * ```
 */
export class Model extends Layer implements Trainable {
  /** The option names the constructor accepts. */
  static override readonly optionKeys: OptionKeys = MODEL_OPTION_KEYS;
  readonly seed: number | undefined;
  /** Training configuration stored by `compile` (owned by nn/training). */
  compiled: unknown = null;
  #building = false;

  constructor(options: ModelOptions = {}) {
    super(options);
    this.seed = options.seed;
  }

  /** Runs `fn` under this model's init seed (if any). */
  protected seeded<T>(fn: () => T): T {
    return this.seed === undefined ? fn() : withInitRng(new Rng(this.seed), fn);
  }

  /**
   * Builds every weight for an input shape (batch first; -1 or any batch size). Traces `call` with
   * symbolic tensors; if `call` uses raw ops that cannot trace, runs it once on a zero batch of 1
   * in inference mode without recording gradients (no state changes).
   */
  override build(inputShape: Shape | Shape[]): void {
    if (this.built || this.#building) return;
    this.#building = true;
    try {
      this.seeded(() => {
        const multi = Array.isArray(inputShape[0]);
        const shapes = (multi ? inputShape : [inputShape]) as Shape[];
        let out: unknown;
        try {
          const sym = shapes.map((s) => new SymbolicTensor(s));
          out = this.call((multi ? sym : sym[0]) as unknown as Tensor, { training: false });
        } catch {
          out = null; // `call` uses raw ops: build by one eager pass below.
        }
        if (out instanceof SymbolicTensor) {
          this.outputShape = out.shape;
          return;
        }
        tidy(() =>
          noGrad(() => {
            const xs = shapes.map((s) => zeros(s.map((d) => (d < 0 ? 1 : d))));
            const y = this.call((multi ? xs : xs[0]) as Tensor, { training: false });
            this.outputShape = [-1, ...y.shape.slice(1)];
          })
        );
      });
    } finally {
      this.#building = false;
    }
    this.built = true;
    this.inputShape = inputShape;
  }

  /** The forward pass; subclasses override it (default: error). */
  override call(_x: Tensor | Tensor[], _options: CallOptions): Tensor {
    this.fail("subclasses of Model must override call(x, options)");
  }

  /** Logits plus, for models ending in a head, the features and classifier matrix. */
  forward(x: Tensor, options: Partial<CallOptions> = {}): ModelOutputs {
    return { logits: this.apply(x, options) };
  }

  /**
   * Inference. On a Tensor: `call` in inference mode without gradient recording, returning the
   * output tensor (synchronously, on the GPU). On a DataSource, an array of batches or in-memory
   * x (Keras' `predict(x, { batchSize })`): the logits of every example, read back once.
   */
  predict(x: Tensor): Tensor;
  /** The logits of every example of a DataSource, an array of batches or in-memory x. */
  predict(
    x: DataInput | Exclude<ArrayInput, Tensor>,
    options?: ArrayPredictOptions,
  ): Promise<Predictions>;
  predict(
    x: Tensor | DataInput | ArrayInput,
    options?: ArrayPredictOptions,
  ): Tensor | Promise<Predictions> {
    if (x instanceof Tensor) {
      if (options !== undefined) this.fail("predict(tensor) takes no options");
      return noGrad(() => this.apply(x, { training: false }));
    }
    return this.#predictData(x, options);
  }

  async #predictData(
    x: DataInput | ArrayInput,
    options?: ArrayPredictOptions,
  ): Promise<Predictions> {
    checkOptions("predict()", options, PREDICT_ARRAY_KEYS);
    const { batchSize, ...rest } = options ?? {};
    if (isDataInput(x)) {
      if (batchSize !== undefined) {
        this.fail("predict(data): batchSize applies to in-memory x; a DataSource has its batches");
      }
      return predict(this, x, rest);
    }
    const n = exampleCount(x, this);
    const a = await hostArrays(x, new Int32Array(n), "predict(x)", exampleShape(this));
    return predict(this, hostArraySource(a, { batchSize }), rest);
  }

  /** The Keras-style summary table (printed unless `print: false`); returns it. */
  summary(options: SummaryOptions = {}): string {
    return summary(this, options);
  }

  /**
   * Configures training, as Keras' `compile`: the optimizer and loss as objects or names
   * (`"sgd"`, `"adamw"`, `"sparse_categorical_crossentropy"`, `"dot_regression"`) and metrics
   * (`"accuracy"`, `"top5"`).
   */
  compile(config: CompileOptions): void {
    compile(this, config);
  }

  /**
   * Trains the model (nn/training `fit`) on a DataSource or an array of batches, or on in-memory
   * arrays as Keras' `fit(x, y, { batchSize, epochs, validationSplit, shuffle })`; returns the
   * History.
   */
  fit(data: DataInput, options?: FitOptions): Promise<History>;
  /** Keras' `fit(x, y, { batchSize, epochs, validationSplit, shuffle, classWeight })`. */
  fit(x: ArrayInput, y: LabelInput, options?: ArrayFitOptions): Promise<History>;
  fit(...args: unknown[]): Promise<History> {
    return (fit as (m: Model, ...a: unknown[]) => Promise<History>)(this, ...args);
  }

  /**
   * Evaluates the model over a whole split (nn/training `evaluate`): a DataSource, an array of
   * batches, or in-memory arrays as Keras' `evaluate(x, y, { batchSize })`.
   */
  evaluate(data: DataInput, options?: EvaluateOptions): Promise<EvaluationResult>;
  /** Keras' `evaluate(x, y, { batchSize })`. */
  evaluate(x: ArrayInput, y: LabelInput, options?: ArrayEvaluateOptions): Promise<EvaluationResult>;
  async evaluate(
    a: DataInput | ArrayInput,
    b?: LabelInput | EvaluateOptions,
    c?: ArrayEvaluateOptions,
  ): Promise<EvaluationResult> {
    if (isDataInput(a)) {
      if (c !== undefined) this.fail("evaluate(data, options) takes two arguments");
      return evaluate(this, a, b as EvaluateOptions | undefined);
    }
    checkOptions("evaluate(x, y)", c, EVALUATE_ARRAY_KEYS);
    const { batchSize, ...rest } = c ?? {};
    const arrays = await hostArrays(a, b as LabelInput, "evaluate(x, y)", exampleShape(this));
    return evaluate(this, hostArraySource(arrays, { batchSize }), rest);
  }

  /**
   * Writes every weight (trainable and not: BN statistics, the fixed ETF) to a safetensors file
   * by its dotted name, with the input shape, as Keras' `save_weights`; no optimizer state (a
   * resumable checkpoint is `saveCheckpoint` / `ModelCheckpoint`).
   */
  async saveWeights(path: string): Promise<void> {
    if (typeof path !== "string" || !path) this.fail("saveWeights(path): path must be a string");
    await saveCheckpoint(path, this);
  }

  /**
   * Loads weights written by {@link Model.saveWeights} (or any collapse checkpoint) into this
   * model by name, building it from the stored input shape if needed; every missing, unexpected
   * or mis-shaped weight is reported at once (`strict: false` ignores missing/unexpected names).
   */
  async loadWeights(path: string, options: LoadWeightsOptions = {}): Promise<CheckpointInfo> {
    checkOptions("loadWeights()", options, LOAD_WEIGHTS_KEYS);
    return await loadCheckpoint(path, this, { strict: options?.strict ?? true });
  }
}
