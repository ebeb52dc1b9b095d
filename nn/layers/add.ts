/** Add: the elementwise sum of several inputs of the same shape (residual connections). @module */
import { add } from "../../gpu/ops/elementwise.ts";
import { fmtShape, type Tensor } from "../../gpu/tensor.ts";
import type { OptionKeys } from "../options.ts";
import type { CallOptions } from "../types.ts";
import { Layer, LAYER_OPTION_KEYS, type Shape } from "./layer.ts";

/** Sums a list of same-shaped inputs, as `keras.layers.Add`. */
export class Add extends Layer {
  /** The option names the constructor accepts. */
  static override readonly optionKeys: OptionKeys = LAYER_OPTION_KEYS;
  override readonly multiInput = true;

  override computeOutputShape(inputShapes: Shape[]): Shape {
    if (inputShapes.length < 2) this.fail(`needs at least 2 inputs, got ${inputShapes.length}`);
    const [first, ...rest] = inputShapes;
    for (const s of rest) {
      const same = s.length === first.length &&
        s.every((d, i) => d === first[i] || d < 0 || first[i] < 0);
      if (!same) {
        this.fail(
          `inputs must have the same shape, got ${inputShapes.map(fmtShape).join(" and ")}`,
        );
      }
    }
    return first;
  }

  override call(xs: Tensor[], _options: CallOptions): Tensor {
    let y = add(xs[0], xs[1]);
    for (let i = 2; i < xs.length; i++) y = add(y, xs[i]);
    return y;
  }
}
