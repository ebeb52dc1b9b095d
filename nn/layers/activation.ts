/**
 * Activation layers: `Activation(name)` for relu, sigmoid, tanh, leaky_relu, softmax, linear, and
 * the `ReLU` shorthand, as in Keras.
 * @module
 */
import { leakyRelu, relu, sigmoid, tanh } from "../../gpu/ops/elementwise.ts";
import { softmax } from "../../gpu/ops/softmax.ts";
import type { Tensor } from "../../gpu/tensor.ts";
import { checkChoice, type OptionKeys } from "../options.ts";
import type { CallOptions } from "../types.ts";
import { Layer, LAYER_OPTION_KEYS, type LayerOptions } from "./layer.ts";

/** Activation names. */
export type ActivationName = "linear" | "relu" | "sigmoid" | "tanh" | "leaky_relu" | "softmax";

/** Every {@link ActivationName}, for validation. */
export const ACTIVATION_NAMES: readonly ActivationName[] = [
  "linear",
  "relu",
  "sigmoid",
  "tanh",
  "leaky_relu",
  "softmax",
];

const FNS: Record<ActivationName, (x: Tensor) => Tensor> = {
  linear: (x) => x,
  relu: (x) => relu(x),
  sigmoid: (x) => sigmoid(x),
  tanh: (x) => tanh(x),
  leaky_relu: (x) => leakyRelu(x, 0.01),
  softmax: (x) => softmax(x, -1),
};

/** An elementwise activation (softmax over the last axis). */
export class Activation extends Layer {
  /** The option names the constructor accepts. */
  static override readonly optionKeys: OptionKeys = LAYER_OPTION_KEYS;
  readonly activation: ActivationName;

  constructor(activation: ActivationName, options: LayerOptions = {}) {
    super(options);
    this.activation = checkChoice("new Activation()", "activation", activation, ACTIVATION_NAMES);
  }

  /** The function of an activation name. */
  static fn(name: ActivationName): (x: Tensor) => Tensor {
    const f = FNS[name];
    if (!f) throw new Error(`collapse: unknown activation '${name}'`);
    return f;
  }

  override call(x: Tensor, _options: CallOptions): Tensor {
    return FNS[this.activation](x);
  }

  override getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), activation: this.activation };
  }
}

/** max(x, 0). */
export class ReLU extends Activation {
  /** The option names the constructor accepts. */
  static override readonly optionKeys: OptionKeys = LAYER_OPTION_KEYS;
  constructor(options: LayerOptions = {}) {
    super("relu", options);
  }
}
