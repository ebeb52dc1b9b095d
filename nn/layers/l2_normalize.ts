/** L2Normalize: x / max(||x||_2, eps) along an axis (the ETF head's feature normalisation). @module */
import { l2Normalize } from "../../gpu/ops/normalize.ts";
import { fmtShape, type Tensor } from "../../gpu/tensor.ts";
import { type OptionKeys, optionKeys } from "../options.ts";
import type { CallOptions } from "../types.ts";
import { Layer, type LayerOptions, type Shape } from "./layer.ts";

/** Options of {@link L2Normalize}. */
export interface L2NormalizeLayerOptions extends LayerOptions {
  /** Axis: the last one (-1, the default; the op supports only that). */
  axis?: number;
  /** Lower bound of the norm (default 1e-8, as the paper's code). */
  epsilon?: number;
}

/** Scales each vector along `axis` to unit L2 norm. */
export class L2Normalize extends Layer {
  /** The option names the constructor accepts. */
  static override readonly optionKeys: OptionKeys = optionKeys<L2NormalizeLayerOptions>({
    name: true,
    trainable: true,
    axis: true,
    epsilon: true,
  });
  readonly axis: number;
  readonly epsilon: number;

  constructor(options: L2NormalizeLayerOptions = {}) {
    super(options);
    this.axis = options.axis ?? -1;
    this.epsilon = options.epsilon ?? 1e-8;
  }

  override computeOutputShape(s: Shape): Shape {
    if (this.axis !== -1 && this.axis !== s.length - 1) {
      this.fail(`only the last axis is supported, got axis ${this.axis} for input ${fmtShape(s)}`);
    }
    return s;
  }

  override call(x: Tensor, _options: CallOptions): Tensor {
    return l2Normalize(x, { axis: this.axis, eps: this.epsilon });
  }

  override getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), axis: this.axis, epsilon: this.epsilon };
  }
}
