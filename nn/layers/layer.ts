/**
 * The Keras-like layer base: lazy `build(inputShape)` at first call, named weights created by
 * {@link Layer.addWeight} (mutable {@link Weight} holders the trainer may repoint), sublayers
 * registered under stable names (torch-like dotted weight paths), `trainable` freezing, shape
 * inference/validation with clear errors, and symbolic tensors for functional graphs and summaries.
 * @module
 */
import { fmtShape, type Tensor, tensor } from "../../gpu/tensor.ts";
import { untrack } from "../../gpu/scope.ts";
import type { DType } from "../../gpu/dtype.ts";
import { currentInitRng, initialize, type InitializerLike } from "../init.ts";
import { checkOptions, type OptionKeys, optionKeys } from "../options.ts";
import type { CallOptions, Weight, WeightLayout } from "../types.ts";

/** A shape with the batch dimension first; -1 means "unknown" (symbolic batch). */
export type Shape = readonly number[];

/** Formats a shape with unknown dimensions as `None`, as Keras prints them. */
export function shapeString(shape: Shape): string {
  return `(${shape.map((d) => (d < 0 ? "None" : String(d))).join(", ")})`;
}

/** A node of a symbolic graph: which layer produced a symbolic tensor from which inputs. */
export interface SymbolicNode {
  layer: Layer;
  inputs: SymbolicTensor[];
}

/** A placeholder with a shape (batch first, -1 unknown) used to build functional graphs. */
export class SymbolicTensor {
  /** Where this value comes from (null for a model input). */
  readonly node: SymbolicNode | null;
  readonly shape: Shape;
  readonly dtype: DType;
  readonly name?: string;

  /** Creates a placeholder; users call {@link input}. */
  constructor(shape: Shape, node: SymbolicNode | null = null, dtype: DType = "f32", name?: string) {
    this.shape = Object.freeze([...shape]);
    this.node = node;
    this.dtype = dtype;
    this.name = name;
  }

  /** Number of dimensions. */
  get rank(): number {
    return this.shape.length;
  }
}

/**
 * A model input placeholder of per-example shape `shape` (without the batch dimension), as
 * `keras.Input`.
 *
 * @example
 * ```ts ignore
 * const x = input([32, 32, 3]);
 * const y = new Dense(10).apply(new Flatten().apply(x));
 * ```
 */
export function input(
  shape: readonly number[],
  options: InputOptions = {},
): SymbolicTensor {
  checkOptions("input()", options, INPUT_KEYS);
  for (const d of shape) {
    if (!Number.isInteger(d) || d <= 0) {
      throw new Error(`collapse: input(): invalid shape ${fmtShape(shape)}`);
    }
  }
  return new SymbolicTensor([options.batchSize ?? -1, ...shape], null, options.dtype, options.name);
}

/** Options of {@link input}. */
export interface InputOptions {
  /** A fixed batch size (default: unknown, -1). */
  batchSize?: number;
  /** Name of the input. */
  name?: string;
  /** Element type (default f32). */
  dtype?: DType;
}

const INPUT_KEYS: OptionKeys = optionKeys<InputOptions>({
  batchSize: true,
  name: true,
  dtype: true,
});

/** What a layer call accepts: eager tensors or symbolic placeholders, one or several. */
export type LayerInput = Tensor | SymbolicTensor | (Tensor | SymbolicTensor)[];

/** Options common to every layer constructor. */
export interface LayerOptions {
  /** Layer name (unique default derived from the class name: "conv2d", "conv2d_1", ...). */
  name?: string;
  /** Whether the layer's weights are updated by training (default true). */
  trainable?: boolean;
}

/** Options of {@link Layer.addWeight}. */
export interface AddWeightOptions {
  /** Updated by the optimizer (default true). */
  trainable?: boolean;
  /** Weight decay applies (default: same as trainable). */
  decay?: boolean;
  /** Element type (default f32). Non-f32 weights must come with `values`. */
  dtype?: DType;
  /** Explicit initial values instead of an initializer. */
  values?: Float32Array | Int32Array | Uint32Array;
  /** How the storage differs from PyTorch's (see {@link Weight.layout}); default: it does not. */
  layout?: WeightLayout;
}

interface OwnWeight {
  local: string;
  weight: Weight;
  /** Trainable as declared by the layer (before freezing). */
  declaredTrainable: boolean;
}

/** The allowed keys of {@link LayerOptions} (for layers that take no other options). */
export const LAYER_OPTION_KEYS: OptionKeys = optionKeys<LayerOptions>({
  name: true,
  trainable: true,
});

/**
 * The first of `base`, `base_1`, `base_2`, ... not in `taken`, Keras style. Container models use it
 * to name auto-named layers uniquely within the model (so two identically built models get the
 * same names, and the same weight paths).
 */
export function uniqueName(base: string, taken: ReadonlySet<string>): string {
  if (!taken.has(base)) return base;
  for (let n = 1;; n++) if (!taken.has(`${base}_${n}`)) return `${base}_${n}`;
}

/** A class name in snake case as Keras writes layer names: Conv2D -> conv2d, ReLU -> re_lu. */
export function snakeCase(s: string): string {
  return s.replace(/(.)([A-Z][a-z]+)/g, "$1_$2").replace(/([a-z])([A-Z])/g, "$1_$2")
    .toLowerCase();
}

function isSymbolic(x: unknown): x is SymbolicTensor {
  return x instanceof SymbolicTensor;
}

/**
 * Base class of layers and models. Subclasses override {@link Layer.build} (create weights from the
 * input shape), {@link Layer.computeOutputShape} (shape inference + validation, which must throw a
 * clear error naming the layer for shapes it cannot take) and {@link Layer.call} (the forward pass
 * on eager tensors). Composite layers register sublayers with {@link Layer.track} and write `call`
 * in terms of `sublayer.apply(...)`; their output shape is then inferred by tracing `call` with
 * symbolic tensors.
 *
 * Users call {@link Layer.apply}, which builds the layer on first use and validates the input.
 */
export abstract class Layer {
  /**
   * The option names a built-in layer class accepts; the constructor rejects any other key. A
   * subclass that does not declare its own list is not checked (it validates its own options).
   */
  static readonly optionKeys: OptionKeys = LAYER_OPTION_KEYS;
  #name: string;
  /** The name was derived from the class name (containers may make it unique within a model). */
  #autoName: boolean;
  /** Whether {@link Layer.build} has run. */
  built = false;
  /** Input shape of the first call (batch first; -1 unknown), set when built. */
  inputShape: Shape | Shape[] | null = null;
  /** Output shape of the latest call. */
  outputShape: Shape | null = null;
  /** Whether the layer takes a list of inputs (merge layers such as Add). */
  readonly multiInput: boolean = false;
  #trainable: boolean;
  readonly #own: OwnWeight[] = [];
  readonly #children = new Map<string, Layer>();
  /** The first layer that registered this one, and under which name. */
  #parent: { layer: Layer; name: string } | null = null;

  constructor(options: LayerOptions = {}) {
    const cls = new.target as unknown as typeof Layer;
    if (Object.hasOwn(cls, "optionKeys") || cls === Layer) {
      checkOptions(`new ${cls.name}()`, options, cls.optionKeys, {
        hint: cls.optionKeys.includes("activation")
          ? 'an activation is an option: { activation: "relu" }'
          : undefined,
      });
    }
    options ??= {};
    if (options.name !== undefined && (typeof options.name !== "string" || !options.name)) {
      throw new Error(`collapse: ${cls.name}: name must be a non-empty string`);
    }
    this.#autoName = options.name === undefined;
    this.#name = options.name ?? snakeCase(this.constructor.name);
    this.#trainable = options.trainable ?? true;
  }

  /**
   * The layer's name: the one given, else the snake-cased class name ("conv2d"), made unique
   * within the first container model that registers the layer ("conv2d", "conv2d_1", ...).
   */
  get name(): string {
    return this.#name;
  }

  /** Whether the name is still the automatic one, not yet made unique by a container. */
  get autoNamed(): boolean {
    return this.#autoName;
  }

  /**
   * Called by container models (Sequential, Functional) when they register this layer: an
   * auto-named layer not yet named by a container takes the first free name of its base among
   * `taken`; a named layer keeps its name. Returns the name.
   */
  claimName(taken: ReadonlySet<string>): string {
    if (this.#autoName) {
      this.#name = uniqueName(this.#name, taken);
      this.#autoName = false;
    }
    return this.#name;
  }

  /** The class name used in summaries and configs. */
  get className(): string {
    return this.constructor.name;
  }

  /** Whether the layer's (and its sublayers') weights are trained. Setting it freezes/unfreezes. */
  get trainable(): boolean {
    return this.#trainable;
  }

  set trainable(value: boolean) {
    this.#trainable = value;
    this.#applyTrainable(true);
  }

  #applyTrainable(parentTrainable: boolean): void {
    const on = parentTrainable && this.#trainable;
    for (const w of this.#own) {
      w.weight.trainable = on && w.declaredTrainable;
      w.weight.value.requiresGrad = w.weight.trainable;
    }
    for (const c of this.#children.values()) c.#applyTrainable(on);
  }

  /** Creates the layer's weights for an input shape (batch first). Default: none. */
  build(_inputShape: Shape | Shape[]): void {}

  /**
   * The output shape for an input shape; throws a clear error for shapes the layer cannot take.
   * Default: composite layers trace `call` symbolically; leaf layers return the input shape.
   */
  computeOutputShape(inputShape: Shape | Shape[]): Shape {
    if (this.#children.size > 0) {
      const sym = Array.isArray(inputShape[0])
        ? (inputShape as Shape[]).map((s) => new SymbolicTensor(s))
        : new SymbolicTensor(inputShape as Shape);
      // deno-lint-ignore no-explicit-any
      const out = this.call(sym as any, { training: false }) as unknown;
      if (!isSymbolic(out)) {
        throw new Error(`collapse: ${this.describe()}: call() did not trace symbolically`);
      }
      return out.shape;
    }
    return inputShape as Shape;
  }

  /** The forward pass on eager tensors (a list for multi-input layers). Called by {@link apply}. */
  abstract call(x: Tensor | Tensor[], options: CallOptions): Tensor;

  /** "Conv2D 'conv1'" for messages. */
  describe(): string {
    return `${this.className} '${this.name}'`;
  }

  /** Throws an error that names the layer. */
  protected fail(message: string): never {
    throw new Error(`collapse: ${this.describe()}: ${message}`);
  }

  /**
   * Calls the layer: builds it on first use, validates the input shapes, runs {@link call} (eager)
   * or records a graph node (symbolic). `training` defaults to false.
   */
  apply(x: Tensor, options?: Partial<CallOptions>): Tensor;
  apply(x: Tensor[], options?: Partial<CallOptions>): Tensor;
  apply(x: SymbolicTensor | SymbolicTensor[], options?: Partial<CallOptions>): SymbolicTensor;
  apply(x: LayerInput, options?: Partial<CallOptions>): Tensor | SymbolicTensor;
  apply(x: LayerInput, options: Partial<CallOptions> = {}): Tensor | SymbolicTensor {
    const list = Array.isArray(x) ? x : [x];
    if (Array.isArray(x) !== this.multiInput) {
      this.fail(
        this.multiInput
          ? `expects a list of inputs, got one ${shapeString(list[0]?.shape ?? [])}`
          : `expects one input, got a list of ${list.length}`,
      );
    }
    if (list.length === 0) this.fail("called with no inputs");
    const symbolic = list.map(isSymbolic);
    if (symbolic.some((s) => s !== symbolic[0])) {
      this.fail("cannot mix symbolic and eager inputs");
    }
    const shapes = list.map((t) => t.shape);
    const shapeArg: Shape | Shape[] = this.multiInput ? shapes : shapes[0];
    if (!this.built) {
      this.build(shapeArg);
      this.built = true;
      this.inputShape = shapeArg;
    }
    if (symbolic[0]) {
      const outShape = this.computeOutputShape(shapeArg);
      this.outputShape = outShape;
      return new SymbolicTensor(outShape, { layer: this, inputs: list as SymbolicTensor[] });
    }
    const opts: CallOptions = { training: options.training ?? false };
    if (this.#children.size > 0) {
      // Composite: the sublayers validate their own inputs.
      const out = this.call((this.multiInput ? list : list[0]) as Tensor | Tensor[], opts);
      this.outputShape = out.shape;
      return out;
    }
    const outShape = this.computeOutputShape(shapeArg);
    const out = this.call((this.multiInput ? list : list[0]) as Tensor | Tensor[], opts);
    const ok = out.shape.length === outShape.length &&
      out.shape.every((d, i) => outShape[i] < 0 || d === outShape[i]);
    if (!ok) {
      this.fail(
        `produced ${fmtShape(out.shape)} but its output shape is ${shapeString(outShape)}`,
      );
    }
    this.outputShape = out.shape;
    return out;
  }

  /**
   * Creates a weight. `name` is local ("weight", "bias", "running_mean"); inside a model the
   * weight's {@link Weight.name} becomes the dotted path ("layer1.0.bn1.running_mean").
   * Initial values come from `init` drawn from the current init RNG (see `withInitRng`).
   * The tensor is owned by the layer (never freed by an enclosing `tidy`).
   */
  addWeight(
    name: string,
    shape: readonly number[],
    init: InitializerLike,
    options: AddWeightOptions = {},
  ): Weight {
    if (this.#own.some((w) => w.local === name)) this.fail(`weight '${name}' added twice`);
    const declared = options.trainable ?? true;
    const dtype = options.dtype ?? "f32";
    let values = options.values;
    if (!values) {
      if (dtype !== "f32") this.fail(`weight '${name}' of dtype ${dtype} needs explicit values`);
      values = initialize(init, shape, currentInitRng());
    }
    const value = untrack(tensor(values, shape, dtype));
    value.name = name;
    const trainable = declared && this.#trainable;
    value.requiresGrad = trainable;
    const weight: Weight = { name, value, trainable, decay: options.decay ?? declared };
    if (options.layout) weight.layout = options.layout;
    this.#own.push({ local: name, weight, declaredTrainable: declared });
    return weight;
  }

  /** Registers a sublayer under `name` (its weights get the prefix `name.`); returns it. */
  track<L extends Layer>(name: string, layer: L): L {
    if (!/^[A-Za-z0-9_]+$/.test(name)) this.fail(`invalid sublayer name '${name}'`);
    if (this.#children.has(name)) this.fail(`sublayer '${name}' registered twice`);
    this.#children.set(name, layer);
    if (!layer.#parent) layer.#parent = { layer: this, name };
    if (!this.#trainable) layer.#applyTrainable(false);
    return layer;
  }

  /** The registered sublayers, by name, in registration order. */
  get sublayers(): ReadonlyMap<string, Layer> {
    return this.#children;
  }

  /**
   * All weights (own first, then sublayers' in registration order), each weight once even if a
   * layer is shared. Weight names are dotted paths from the outermost model this layer was
   * registered in (so they stay the same whichever layer of the tree is asked).
   */
  weights(): Weight[] {
    return this.#paths().map((p) => p.weight);
  }

  /** The weights with their paths relative to this layer. */
  #paths(): { rel: string; weight: Weight }[] {
    const out: { rel: string; weight: Weight }[] = [];
    this.#collect("", out, new Set());
    return out;
  }

  /** The dotted prefix of this layer's weights from its outermost registering ancestor. */
  get pathPrefix(): string {
    return this.#parent ? `${this.#parent.layer.pathPrefix}${this.#parent.name}.` : "";
  }

  #collect(rel: string, out: { rel: string; weight: Weight }[], seen: Set<Weight>): void {
    const abs = this.pathPrefix;
    for (const w of this.#own) {
      if (seen.has(w.weight)) continue;
      seen.add(w.weight);
      w.weight.name = abs + w.local;
      if (!w.weight.value.disposed) w.weight.value.name = w.weight.name;
      out.push({ rel: rel + w.local, weight: w.weight });
    }
    for (const [n, c] of this.#children) c.#collect(`${rel}${n}.`, out, seen);
  }

  /** The weights the optimizer updates. */
  trainableWeights(): Weight[] {
    return this.weights().filter((w) => w.trainable);
  }

  /** The weights it does not (BN running statistics, the fixed ETF matrix, frozen layers). */
  nonTrainableWeights(): Weight[] {
    return this.weights().filter((w) => !w.trainable);
  }

  /** A weight by its dotted path relative to this layer ("bn1.weight"); throws if none. */
  getWeight(path: string): Weight {
    const w = this.#paths().find((p) => p.rel === path);
    if (!w) this.fail(`no weight named '${path}'`);
    return w.weight;
  }

  /** Number of scalar parameters (all weights, or only trainable ones). */
  countParams(which: "all" | "trainable" | "non_trainable" = "all"): number {
    let n = 0;
    for (const w of this.weights()) {
      if (which === "trainable" && !w.trainable) continue;
      if (which === "non_trainable" && w.trainable) continue;
      n += w.value.size;
    }
    return n;
  }

  /** The layer's configuration (constructor arguments), JSON-serialisable, as Keras' `get_config`. */
  getConfig(): Record<string, unknown> {
    return { name: this.name, trainable: this.#trainable };
  }

  /** Frees every weight tensor of this layer and its sublayers. */
  dispose(): void {
    for (const w of this.weights()) w.value.dispose();
  }
}
