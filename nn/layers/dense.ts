/**
 * Dense: y = x W + b with W [in, out] (weight "weight") and b [out] ("bias"), applied to the last
 * axis of a [N, ..., in] input, as `keras.layers.Dense` (PyTorch's Linear stores W transposed).
 * @module
 */
import { matmul } from "../../gpu/ops/matmul.ts";
import { add } from "../../gpu/ops/elementwise.ts";
import { reshape } from "../../gpu/ops/shape.ts";
import { fmtShape, type Tensor } from "../../gpu/tensor.ts";
import { getInitializer, type InitializerLike, kaimingNormal, torchBias } from "../init.ts";
import { checkChoice, type OptionKeys, optionKeys } from "../options.ts";
import type { CallOptions, Weight } from "../types.ts";
import { Activation, ACTIVATION_NAMES, type ActivationName } from "./activation.ts";
import { Layer, type LayerOptions, type Shape } from "./layer.ts";

/** Options of {@link Dense}. */
export interface DenseOptions extends LayerOptions {
  /** Add a bias (default true). */
  useBias?: boolean;
  /** Activation applied to the output (default none). */
  activation?: ActivationName;
  /** Kernel initializer; default kaiming normal fan-in (as the official ResNet-32's Linear). */
  kernelInitializer?: InitializerLike;
  /** Bias initializer; default PyTorch's U(+-1/sqrt(in)). */
  biasInitializer?: InitializerLike;
}

/** Fully connected layer. */
export class Dense extends Layer {
  /** The option names the constructor accepts. */
  static override readonly optionKeys: OptionKeys = optionKeys<DenseOptions>({
    name: true,
    trainable: true,
    useBias: true,
    activation: true,
    kernelInitializer: true,
    biasInitializer: true,
  });
  readonly units: number;
  readonly useBias: boolean;
  readonly activation: ActivationName;
  readonly #kernelInit: InitializerLike;
  readonly #biasInit: InitializerLike | null;
  /** The [in, out] kernel (set when built). */
  kernel: Weight | null = null;
  /** The bias (set when built, if used). */
  bias: Weight | null = null;

  constructor(units: number, options: DenseOptions = {}) {
    super(options);
    if (!Number.isInteger(units) || units <= 0) {
      throw new Error(`collapse: Dense: units must be a positive integer, got ${units}`);
    }
    this.units = units;
    this.useBias = options.useBias ?? true;
    this.activation = checkChoice(
      "new Dense()",
      "activation",
      options.activation ?? "linear",
      ACTIVATION_NAMES,
    );
    this.#kernelInit = options.kernelInitializer ?? kaimingNormal();
    this.#biasInit = options.biasInitializer ?? null;
  }

  override build(inputShape: Shape): void {
    if (inputShape.length < 2) this.fail(`expects [N, features], got ${fmtShape(inputShape)}`);
    const fin = inputShape[inputShape.length - 1];
    this.kernel = this.addWeight("weight", [fin, this.units], this.#kernelInit, {
      layout: "dense_in_out",
    });
    if (this.useBias) {
      this.bias = this.addWeight(
        "bias",
        [this.units],
        getInitializer(this.#biasInit ?? torchBias(fin)),
      );
    }
  }

  override computeOutputShape(inputShape: Shape): Shape {
    const fin = this.kernel!.value.shape[0];
    if (inputShape.length < 2 || inputShape[inputShape.length - 1] !== fin) {
      this.fail(`expects input [N, ${fin}], got ${fmtShape(inputShape)}`);
    }
    return [...inputShape.slice(0, -1), this.units];
  }

  override call(x: Tensor, _options: CallOptions): Tensor {
    const fin = this.kernel!.value.shape[0];
    const x2 = x.rank === 2 ? x : reshape(x, [-1, fin]);
    let y = matmul(x2, this.kernel!.value);
    if (this.bias) y = add(y, this.bias.value);
    if (x.rank !== 2) y = reshape(y, [...x.shape.slice(0, -1), this.units]);
    return this.activation === "linear" ? y : Activation.fn(this.activation)(y);
  }

  override getConfig(): Record<string, unknown> {
    return {
      ...super.getConfig(),
      units: this.units,
      useBias: this.useBias,
      activation: this.activation,
    };
  }
}
