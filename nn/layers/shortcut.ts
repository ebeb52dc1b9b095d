/**
 * The option-A shortcut of CIFAR ResNets (He et al. 2016; the official ImbalancedLearning code's
 * `LambdaLayer(lambda x: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4)))`):
 * spatial subsampling x[:, ::s, ::s, :] and zero-padded channels, parameter-free.
 * @module
 */
import { avgPool2d } from "../../gpu/ops/pool.ts";
import { pad } from "../../gpu/ops/shape.ts";
import { fmtShape, type Tensor } from "../../gpu/tensor.ts";
import { type OptionKeys, optionKeys } from "../options.ts";
import type { CallOptions } from "../types.ts";
import { Layer, type LayerOptions, type Shape } from "./layer.ts";

/** Options of {@link ShortcutA}. */
export interface ShortcutAOptions extends LayerOptions {
  /** Spatial stride (default 2). */
  stride?: number;
}

/**
 * Subsamples H and W with `stride` and pads the channels with zeros from Cin to `outChannels`
 * (floor((out - in) / 2) before, the rest after; for out = 2 in this is planes // 4 on each side).
 */
export class ShortcutA extends Layer {
  /** The option names the constructor accepts. */
  static override readonly optionKeys: OptionKeys = optionKeys<ShortcutAOptions>({
    name: true,
    trainable: true,
    stride: true,
  });
  readonly outChannels: number;
  readonly stride: number;

  constructor(outChannels: number, options: ShortcutAOptions = {}) {
    super(options);
    this.outChannels = outChannels;
    this.stride = options.stride ?? 2;
  }

  override computeOutputShape(s: Shape): Shape {
    if (s.length !== 4) this.fail(`expects NHWC input [N, H, W, C], got ${fmtShape(s)}`);
    if (s[3] > this.outChannels) {
      this.fail(`cannot pad ${s[3]} channels down to ${this.outChannels} (input ${fmtShape(s)})`);
    }
    const sub = (n: number) => (n < 0 ? -1 : Math.ceil(n / this.stride));
    return [s[0], sub(s[1]), sub(s[2]), this.outChannels];
  }

  override call(x: Tensor, _options: CallOptions): Tensor {
    // A 1x1 average pool with stride s is exactly x[:, ::s, ::s, :] (and its gradient scatters back).
    const y = this.stride === 1
      ? x
      : avgPool2d(x, { size: [1, 1], stride: [this.stride, this.stride], padding: 0 });
    const extra = this.outChannels - x.shape[3];
    if (extra === 0) return y;
    const before = Math.floor(extra / 2);
    return pad(y, [[0, 0], [0, 0], [0, 0], [before, extra - before]], 0);
  }

  override getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), outChannels: this.outChannels, stride: this.stride };
  }
}
