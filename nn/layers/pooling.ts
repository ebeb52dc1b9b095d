/**
 * Pooling layers over NHWC inputs: MaxPooling2D, AveragePooling2D (window, stride, padding) and
 * GlobalAveragePooling2D ([N, H, W, C] -> [N, C]).
 * @module
 */
import { avgPool2d, globalAvgPool2d, maxPool2d, type PoolOptions } from "../../gpu/ops/pool.ts";
import { fmtShape, type Tensor } from "../../gpu/tensor.ts";
import { type OptionKeys, optionKeys } from "../options.ts";
import type { CallOptions } from "../types.ts";
import { paddingPair, positivePair, windowOutSize } from "./conv2d.ts";
import { Layer, LAYER_OPTION_KEYS, type LayerOptions, type Shape } from "./layer.ts";

/** Options of the windowed pooling layers. */
export interface Pooling2DOptions extends LayerOptions {
  /** Stride (default: the pool size, as Keras). */
  strides?: number | readonly [number, number];
  /** "valid" (default) or symmetric padding n / [ph, pw], at most half the window (padded cells never win / count). */
  padding?: "valid" | number | readonly [number, number];
}

function pair(v: number | readonly [number, number]): [number, number] {
  return typeof v === "number" ? [v, v] : [v[0], v[1]];
}

const POOLING_KEYS: OptionKeys = optionKeys<Pooling2DOptions>({
  name: true,
  trainable: true,
  strides: true,
  padding: true,
});

function checkNhwc(layer: Layer, shape: Shape): void {
  if (shape.length !== 4) {
    throw new Error(
      `collapse: ${layer.describe()}: expects NHWC input [N, H, W, C], got ${fmtShape(shape)}`,
    );
  }
}

abstract class Pooling2D extends Layer {
  readonly poolSize: [number, number];
  readonly strides: [number, number];
  readonly padding: "valid" | number | readonly [number, number];

  constructor(poolSize: number | readonly [number, number] = 2, options: Pooling2DOptions = {}) {
    super(options);
    const where = `new ${this.className}()`;
    this.poolSize = positivePair(where, "poolSize", poolSize);
    this.strides = positivePair(where, "strides", options.strides ?? this.poolSize);
    this.padding = options.padding ?? "valid";
    if (this.padding !== "valid") {
      const p = this.padding;
      const pp = typeof p === "number" ? [p, p] : Array.isArray(p) && p.length === 2 ? p : [];
      const ok = pp.length === 2 &&
        pp.every((v, i) => Number.isInteger(v) && v >= 0 && v <= this.poolSize[i] / 2);
      if (!ok) {
        throw new Error(
          `collapse: ${where}: padding must be "valid", n or [ph, pw] with 0 <= p <= half the ` +
            `window ${JSON.stringify(this.poolSize)}, got ${JSON.stringify(p)}`,
        );
      }
    }
  }

  override computeOutputShape(s: Shape): Shape {
    checkNhwc(this, s);
    const [ph, pw] = paddingPair(this.padding);
    const h = windowOutSize(s[1], this.poolSize[0], this.strides[0], ph);
    const w = windowOutSize(s[2], this.poolSize[1], this.strides[1], pw);
    if ((s[1] >= 0 && h <= 0) || (s[2] >= 0 && w <= 0)) {
      this.fail(`input ${fmtShape(s)} is smaller than the pool window`);
    }
    return [s[0], h, w, s[3]];
  }

  protected opOptions(): PoolOptions {
    const p = this.padding === "valid" ? 0 : this.padding;
    return { size: this.poolSize, stride: this.strides, padding: pair(p) };
  }

  override getConfig(): Record<string, unknown> {
    return {
      ...super.getConfig(),
      poolSize: this.poolSize,
      strides: this.strides,
      padding: this.padding,
    };
  }
}

/** Max pooling (torchvision ResNet's stem: 3x3, stride 2, padding 1). */
export class MaxPooling2D extends Pooling2D {
  /** The option names the constructor accepts. */
  static override readonly optionKeys: OptionKeys = POOLING_KEYS;
  override call(x: Tensor, _options: CallOptions): Tensor {
    return maxPool2d(x, this.opOptions());
  }
}

/** Average pooling. */
export class AveragePooling2D extends Pooling2D {
  /** The option names the constructor accepts. */
  static override readonly optionKeys: OptionKeys = POOLING_KEYS;
  override call(x: Tensor, _options: CallOptions): Tensor {
    return avgPool2d(x, this.opOptions());
  }
}

/** Mean over H and W: [N, H, W, C] -> [N, C]. */
export class GlobalAveragePooling2D extends Layer {
  /** The option names the constructor accepts. */
  static override readonly optionKeys: OptionKeys = LAYER_OPTION_KEYS;
  override computeOutputShape(s: Shape): Shape {
    checkNhwc(this, s);
    return [s[0], s[3]];
  }

  override call(x: Tensor, _options: CallOptions): Tensor {
    return globalAvgPool2d(x);
  }
}
