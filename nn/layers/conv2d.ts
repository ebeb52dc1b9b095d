/**
 * Conv2D: 2-D convolution over NHWC inputs with an HWIO kernel [KH, KW, Cin, Cout] (weight
 * "weight") and an optional bias [Cout] ("bias"), as `keras.layers.Conv2D` / `torch.nn.Conv2d`.
 * Numeric padding is symmetric (PyTorch); "same" gives ceil(H / stride) outputs and "valid" none.
 * @module
 */
import { conv2d } from "../../gpu/ops/conv2d.ts";
import { fmtShape, type Tensor } from "../../gpu/tensor.ts";
import { getInitializer, type InitializerLike, kaimingNormal, torchBias } from "../init.ts";
import { checkChoice, type OptionKeys, optionKeys } from "../options.ts";
import type { CallOptions, Weight } from "../types.ts";
import { Activation, ACTIVATION_NAMES, type ActivationName } from "./activation.ts";
import { Layer, type LayerOptions, type Shape } from "./layer.ts";

/** Padding of a convolution or pooling window. */
export type Padding = "same" | "valid" | number | readonly [number, number];

/** Options of {@link Conv2D}. */
export interface Conv2DOptions extends LayerOptions {
  /** Stride (one number or [sh, sw]); default 1. */
  strides?: number | readonly [number, number];
  /** "valid" (default), "same", or symmetric zero padding (n or [ph, pw]). */
  padding?: Padding;
  /** Add a bias (default true, as Keras/PyTorch; ResNets use false). */
  useBias?: boolean;
  /** Activation applied to the output, as Keras' `activation` (default none: "linear"). */
  activation?: ActivationName;
  /** Kernel initializer; default kaiming normal fan-in (PyTorch `kaiming_normal_`). */
  kernelInitializer?: InitializerLike;
  /** Bias initializer; default PyTorch's U(+-1/sqrt(fanIn)). */
  biasInitializer?: InitializerLike;
}

/** A positive integer or a pair of them ([height, width]), checked. */
export function positivePair(
  where: string,
  what: string,
  v: number | readonly [number, number],
): [number, number] {
  const p: [number, number] = typeof v === "number" ? [v, v] : [v?.[0], v?.[1]];
  if (
    !(typeof v === "number" || (Array.isArray(v) && v.length === 2)) ||
    !p.every((d) => Number.isInteger(d) && d > 0)
  ) {
    throw new Error(
      `collapse: ${where}: ${what} must be a positive integer or a pair of them, got ${
        JSON.stringify(v)
      }`,
    );
  }
  return p;
}

function checkPadding(where: string, p: Padding): Padding {
  const ok = p === "same" || p === "valid" ||
    (typeof p === "number" && Number.isInteger(p) && p >= 0) ||
    (Array.isArray(p) && p.length === 2 && p.every((d) => Number.isInteger(d) && d >= 0));
  if (!ok) {
    throw new Error(
      `collapse: ${where}: padding must be "same", "valid", n or [ph, pw] (n >= 0), got ${
        JSON.stringify(p)
      }`,
    );
  }
  return p;
}

/** Output size of one spatial dimension of a window op (conv or pooling). */
export function windowOutSize(
  n: number,
  k: number,
  s: number,
  padding: "same" | "valid" | number,
): number {
  if (n < 0) return -1;
  if (padding === "same") return Math.ceil(n / s);
  const p = padding === "valid" ? 0 : padding;
  return Math.floor((n + 2 * p - k) / s) + 1;
}

/** Per-dimension padding of a {@link Padding} value. */
export function paddingPair(p: Padding): ["same" | "valid" | number, "same" | "valid" | number] {
  if (p === "same" || p === "valid") return [p, p];
  return typeof p === "number" ? [p, p] : [p[0], p[1]];
}

/** 2-D convolution layer (NHWC, HWIO kernel). */
export class Conv2D extends Layer {
  /** The option names the constructor accepts. */
  static override readonly optionKeys: OptionKeys = optionKeys<Conv2DOptions>({
    name: true,
    trainable: true,
    strides: true,
    padding: true,
    useBias: true,
    activation: true,
    kernelInitializer: true,
    biasInitializer: true,
  });
  readonly filters: number;
  readonly kernelSize: [number, number];
  readonly strides: [number, number];
  readonly padding: Padding;
  readonly useBias: boolean;
  /** The output activation ("linear": none). */
  readonly activation: ActivationName;
  readonly #kernelInit: InitializerLike;
  readonly #biasInit: InitializerLike | null;
  /** The HWIO kernel (set when built). */
  kernel: Weight | null = null;
  /** The bias (set when built, if used). */
  bias: Weight | null = null;

  constructor(
    filters: number,
    kernelSize: number | readonly [number, number],
    options: Conv2DOptions = {},
  ) {
    super(options);
    if (!Number.isInteger(filters) || filters <= 0) {
      throw new Error(`collapse: Conv2D: filters must be a positive integer, got ${filters}`);
    }
    this.filters = filters;
    this.kernelSize = positivePair("new Conv2D()", "kernelSize", kernelSize);
    this.strides = positivePair("new Conv2D()", "strides", options.strides ?? 1);
    this.padding = checkPadding("new Conv2D()", options.padding ?? "valid");
    this.useBias = options.useBias ?? true;
    this.activation = checkChoice(
      "new Conv2D()",
      "activation",
      options.activation ?? "linear",
      ACTIVATION_NAMES,
    );
    this.#kernelInit = options.kernelInitializer ?? kaimingNormal();
    this.#biasInit = options.biasInitializer ?? null;
  }

  #inChannels(shape: Shape): number {
    if (shape.length !== 4) {
      this.fail(`expects NHWC input [N, H, W, C], got ${fmtShape(shape)}`);
    }
    return shape[3];
  }

  override build(inputShape: Shape): void {
    const cin = this.#inChannels(inputShape);
    const [kh, kw] = this.kernelSize;
    this.kernel = this.addWeight("weight", [kh, kw, cin, this.filters], this.#kernelInit, {
      layout: "conv_hwio",
    });
    if (this.useBias) {
      const init = this.#biasInit ?? torchBias(kh * kw * cin);
      this.bias = this.addWeight("bias", [this.filters], getInitializer(init));
    }
  }

  override computeOutputShape(inputShape: Shape): Shape {
    const cin = this.#inChannels(inputShape);
    const want = this.kernel!.value.shape[2];
    if (cin !== want) {
      this.fail(`expects ${want} input channels, got input ${fmtShape(inputShape)}`);
    }
    const [ph, pw] = paddingPair(this.padding);
    const h = windowOutSize(inputShape[1], this.kernelSize[0], this.strides[0], ph);
    const w = windowOutSize(inputShape[2], this.kernelSize[1], this.strides[1], pw);
    if ((inputShape[1] >= 0 && h <= 0) || (inputShape[2] >= 0 && w <= 0)) {
      this.fail(`input ${fmtShape(inputShape)} is smaller than the kernel`);
    }
    return [inputShape[0], h, w, this.filters];
  }

  override call(x: Tensor, _options: CallOptions): Tensor {
    const padding = this.padding === "valid"
      ? 0
      : this.padding === "same" || typeof this.padding === "number"
      ? this.padding
      : [this.padding[0], this.padding[1]] as [number, number];
    const y = conv2d(x, this.kernel!.value, {
      stride: this.strides,
      padding,
      bias: this.bias?.value,
    });
    return this.activation === "linear" ? y : Activation.fn(this.activation)(y);
  }

  override getConfig(): Record<string, unknown> {
    return {
      ...super.getConfig(),
      filters: this.filters,
      kernelSize: this.kernelSize,
      strides: this.strides,
      padding: this.padding,
      useBias: this.useBias,
      activation: this.activation,
    };
  }
}
