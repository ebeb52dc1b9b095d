/** Inverted dropout with a GPU hash RNG keyed by a per-step seed tensor. @module */
import { record } from "../autograd.ts";
import { engine } from "../engine.ts";
import { dropoutLaunch } from "../kernels/dropout.ts";
import { empty, type Tensor } from "../tensor.ts";

/**
 * Inverted dropout: in training, each element is zeroed with probability `rate` and the rest are
 * scaled by 1 / (1 - rate); the mask is a hash of (seed[0], index), so the caller changes the u32[1]
 * `seed` tensor each step (on the GPU or with writeTensor before a captured step runs). The backward
 * applies the same mask. When not training (or rate is 0) it returns `x` itself.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { dropout, initDevice, ones, tensor } from "@collapse/collapse/gpu";
 *
 * await initDevice();
 * const seed = tensor([7], [1], "u32"); // change it every step
 * const y = await dropout(ones([1000]), 0.5, seed, true).array();
 * assert(y.every((v) => v === 0 || v === 2)); // dropped, or scaled by 1 / (1 - 0.5)
 * console.log(y.filter((v) => v === 0).length); // about 500
 * ```
 */
export function dropout(x: Tensor, rate: number, seed: Tensor, training: boolean): Tensor {
  if (x.dtype !== "f32") {
    throw new Error(`collapse: dropout: x must be f32, got ${x.describe()}`);
  }
  if (!(rate >= 0 && rate <= 1)) {
    throw new Error(`collapse: dropout: rate must lie in [0, 1], got ${rate}`);
  }
  if (seed.dtype !== "u32" || seed.size !== 1) {
    throw new Error(
      `collapse: dropout: seed must be a u32 tensor of one element, got ${seed.describe()}`,
    );
  }
  if (!training || rate === 0) return x;
  const e = engine();
  const y = empty(x.shape);
  const used = empty([1], "u32");
  if (x.size) e.dispatch(dropoutLaunch(x, seed, y, used, rate));
  record(y, "dropout", [x], (dy) => {
    const dx = empty(x.shape);
    const scratch = empty([1], "u32");
    if (x.size) e.dispatch(dropoutLaunch(dy, used, dx, scratch, rate));
    scratch.dispose();
    return [dx];
  });
  if (!y.node) used.dispose();
  return y;
}
