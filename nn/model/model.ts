/**
 * The Model base class (a {@link Layer} that is {@link Trainable}): subclassing support (override
 * `call(x, options)` and register sublayers with `track`), whole-model `build(inputShape)` by a
 * symbolic trace (falling back to one eager batch-1 pass for `call`s that use raw ops), seeded
 * initialisation, `forward` returning logits plus features for feature-space losses, `predict`,
 * `summary`, and `compile`/`fit`/`evaluate` delegating to the training module registered with
 * {@link registerTrainer} (nn/training; kept out of this file so layers do not depend on training).
 * @module
 */
import { noGrad } from "../../gpu/autograd.ts";
import { zeros } from "../../gpu/ops/creation.ts";
import { Rng } from "../../gpu/rng.ts";
import { tidy } from "../../gpu/scope.ts";
import type { Tensor } from "../../gpu/tensor.ts";
import { withInitRng } from "../init.ts";
import { Layer, type LayerOptions, type Shape, SymbolicTensor } from "../layers/layer.ts";
import type { CallOptions, Trainable } from "../types.ts";
import { summary, type SummaryOptions } from "./summary.ts";
// Types only (erased at run time): the trainer registers itself, so nn/model does not load it.
import type { CompileOptions, DataSource } from "../training/state.ts";
import type { FitOptions } from "../training/fit.ts";
import type { History } from "../training/history.ts";
import type { EvaluateOptions, EvaluationResult } from "../training/evaluate.ts";

/**
 * What a model computes for a batch, for losses: `logits` [N, K] always; `features` h [N, d] and
 * `classifier` M (or W) [d, K] when the model ends in a head (logits = h classifier), so that the
 * DR loss gets h and the fixed ETF M, and neural-collapse metrics get H and W.
 */
export interface ModelOutputs {
  logits: Tensor;
  features?: Tensor;
  classifier?: Tensor;
}

/** Options of {@link Model}. */
export interface ModelOptions extends LayerOptions {
  /** Seed of the weight initialisation (default: the global init RNG, see `setInitSeed`). */
  seed?: number;
}

/**
 * What nn/training provides to {@link Model.compile}, {@link Model.fit}, {@link Model.evaluate}.
 * Argument types are the training module's; this file only forwards them.
 */
export interface TrainerHooks {
  compile(model: Model, config: unknown): void;
  fit(model: Model, ...args: unknown[]): Promise<unknown>;
  evaluate?(model: Model, ...args: unknown[]): Promise<unknown>;
}

let trainer: TrainerHooks | null = null;

/** Installs the training implementation behind `Model.compile/fit/evaluate` (called by nn/training). */
export function registerTrainer(hooks: TrainerHooks): void {
  trainer = hooks;
}

function needTrainer(what: string): TrainerHooks {
  if (!trainer) {
    throw new Error(
      `collapse: Model.${what}(): no trainer registered; import nn/mod.ts (or nn/training) first`,
    );
  }
  return trainer;
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

  /** Inference: `call` with training false and no gradient recording. */
  predict(x: Tensor): Tensor {
    return noGrad(() => this.apply(x, { training: false }));
  }

  /** The Keras-style summary table (printed unless `print: false`); returns it. */
  summary(options: SummaryOptions = {}): string {
    return summary(this, options);
  }

  /** Stores the training configuration (optimizer, loss, metrics), as Keras's `compile`. */
  compile(config: CompileOptions): void {
    needTrainer("compile").compile(this, config);
  }

  /** Trains the model (nn/training `fit`): epochs, validation data, callbacks; returns History. */
  fit(data: DataSource, options: FitOptions): Promise<History> {
    return needTrainer("fit").fit(this, data, options) as Promise<History>;
  }

  /** Evaluates the model over a whole split (nn/training `evaluate`). */
  evaluate(data: DataSource, options?: EvaluateOptions): Promise<EvaluationResult> {
    const t = needTrainer("evaluate");
    if (!t.evaluate) this.fail("the registered trainer has no evaluate()");
    return t.evaluate(this, data, options) as Promise<EvaluationResult>;
  }
}
