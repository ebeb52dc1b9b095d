/**
 * Sequential: a linear stack of layers, as `keras.Sequential` / `torch.nn.Sequential`. Sublayers
 * are registered under their layer names (Keras) or their indices "0", "1", ... (PyTorch naming,
 * e.g. torchvision's `downsample.0.weight`).
 * @module
 */
import type { Tensor } from "../../gpu/tensor.ts";
import type { Layer } from "../layers/layer.ts";
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
  readonly layers: Layer[] = [];
  readonly #childNames: "name" | "index";

  constructor(layers: Layer[] = [], options: SequentialOptions = {}) {
    super(options);
    this.#childNames = options.childNames ?? "name";
    for (const l of layers) this.add(l);
    if (options.inputShape) this.build([-1, ...options.inputShape]);
  }

  /** Appends a layer (before the model is built). */
  add(layer: Layer): this {
    if (this.built) this.fail("cannot add layers after the model was built");
    if (layer.multiInput) this.fail(`${layer.describe()} takes several inputs`);
    this.track(this.#childNames === "index" ? String(this.layers.length) : layer.name, layer);
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
