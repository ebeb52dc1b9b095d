/** Flatten: [N, ...] -> [N, prod(...)] (row-major, so NHWC flattens as H, W, C). @module */
import { reshape } from "../../gpu/ops/shape.ts";
import { fmtShape, sizeOf, type Tensor } from "../../gpu/tensor.ts";
import type { OptionKeys } from "../options.ts";
import type { CallOptions } from "../types.ts";
import { Layer, LAYER_OPTION_KEYS, type Shape } from "./layer.ts";

/** Flattens every axis but the batch axis. */
export class Flatten extends Layer {
  /** The option names the constructor accepts. */
  static override readonly optionKeys: OptionKeys = LAYER_OPTION_KEYS;
  override computeOutputShape(s: Shape): Shape {
    if (s.length < 1) this.fail(`expects a batch axis, got ${fmtShape(s)}`);
    const rest = s.slice(1);
    return [s[0], rest.some((d) => d < 0) ? -1 : sizeOf(rest)];
  }

  override call(x: Tensor, _options: CallOptions): Tensor {
    return reshape(x, [x.shape[0], sizeOf(x.shape.slice(1))]);
  }
}
