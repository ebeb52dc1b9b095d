/**
 * Sequential: a linear stack of layers, as `keras.Sequential` / `torch.nn.Sequential`. Sublayers
 * are registered under their layer names (Keras) or their indices "0", "1", ... (PyTorch naming,
 * e.g. torchvision's `downsample.0.weight`).
 * @module
 */
import type { Tensor } from "../../gpu/tensor.ts";
import { Layer } from "../layers/layer.ts";
import { checkChoice, type OptionKeys, optionKeys } from "../options.ts";
import type { CallOptions } from "../types.ts";
import { Model, type ModelOptions } from "./model.ts";

/** Options of {@link Sequential}. */
export interface SequentialOptions extends ModelOptions {
  /** How sublayers are named in weight paths: "name" (default) or "index" (PyTorch). */
  childNames?: "name" | "index";
  /** Per-example input shape (without batch); builds the model right away. */
  inputShape?: readonly number[];
}

/** A stack of single-input layers applied in order. */
export class Sequential extends Model {
  /** The option names the constructor accepts. */
  static override readonly optionKeys: OptionKeys = optionKeys<SequentialOptions>({
    name: true,
    trainable: true,
    seed: true,
    childNames: true,
    inputShape: true,
  });
  readonly layers: Layer[] = [];
  readonly #childNames: "name" | "index";
  /** Layer names in use (auto-named layers take the first free "dense", "dense_1", ...). */
  readonly #taken = new Set<string>();

  constructor(layers: Layer[] = [], options: SequentialOptions = {}) {
    super(options);
    options ??= {};
    this.#childNames = checkChoice(
      "new Sequential()",
      "childNames",
      options.childNames ?? "name",
      ["name", "index"] as const,
    );
    if (!Array.isArray(layers)) {
      throw new Error("collapse: new Sequential(): the first argument must be an array of layers");
    }
    // Given names first, so that an auto-named layer never takes a name given to a later one.
    for (const l of layers) if (l instanceof Layer && !l.autoNamed) this.#taken.add(l.name);
    for (const l of layers) this.add(l);
    if (options.inputShape) this.build([-1, ...options.inputShape]);
  }

  /**
   * Appends a layer (before the model is built). An auto-named layer gets a name unique in this
   * model (Keras: "dense", "dense_1", ...), so identically built models have the same weight names.
   */
  add(layer: Layer): this {
    if (this.built) this.fail("cannot add layers after the model was built");
    if (!(layer instanceof Layer)) this.fail(`add() takes a Layer, got ${String(layer)}`);
    if (layer.multiInput) this.fail(`${layer.describe()} takes several inputs`);
    if (this.layers.includes(layer)) this.fail(`${layer.describe()} was added twice`);
    const taken = new Set([...this.#taken, ...this.layers.map((l) => l.name)]);
    if (!layer.autoNamed) taken.delete(layer.name);
    const name = layer.claimName(taken);
    if (this.layers.some((l) => l.name === name)) {
      this.fail(`two layers are named '${name}' (layer names must be unique in a model)`);
    }
    this.#taken.add(name);
    this.track(this.#childNames === "index" ? String(this.layers.length) : name, layer);
    this.layers.push(layer);
    return this;
  }

  override call(x: Tensor, options: CallOptions): Tensor {
    if (!this.layers.length) this.fail("has no layers");
    let y = x;
    for (const l of this.layers) y = l.apply(y, options);
    return y;
  }

  override getConfig(): Record<string, unknown> {
    return {
      ...super.getConfig(),
      layers: this.layers.map((l) => ({ className: l.className, config: l.getConfig() })),
    };
  }
}
