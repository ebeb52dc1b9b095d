/** L2 normalisation along the last axis, x / max(||x||, eps), with its exact gradient. @module */
import { record } from "../autograd.ts";
import { engine } from "../engine.ts";
import { l2NormalizeBackwardLaunch, l2NormalizeLaunch } from "../kernels/l2_normalize.ts";
import { empty, type Tensor } from "../tensor.ts";

/** Options of {@link l2Normalize}. */
export interface L2NormalizeOptions {
  /** Only the last axis (-1, or rank - 1) is supported. */
  axis?: number;
  /** Default 1e-8 (the paper's head). */
  eps?: number;
}

/**
 * y = x / max(||x||_2, eps) along the last axis (like torch.nn.functional.normalize). Differentiable,
 * with the exact gradient of that formula on both sides of the clamp.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { initDevice, l2Normalize, tensor } from "@collapse/collapse/gpu";
 *
 * await initDevice();
 * const h = l2Normalize(tensor([3, 4, 0, -2], [2, 2])); // [B, d] rows of unit norm
 * assertEquals((await h.array()).map((v) => Math.round(v * 1e6) / 1e6), [0.6, 0.8, 0, -1]);
 * ```
 */
export function l2Normalize(x: Tensor, opts: L2NormalizeOptions = {}): Tensor {
  const axis = opts.axis ?? -1;
  const eps = opts.eps ?? 1e-8;
  if (x.dtype !== "f32" || x.rank < 1) {
    throw new Error(`collapse: l2Normalize: x must be f32 of rank >= 1, got ${x.describe()}`);
  }
  if (axis !== -1 && axis !== x.rank - 1) {
    throw new Error(
      `collapse: l2Normalize: only the last axis is supported, got axis ${axis} for ${x.describe()}`,
    );
  }
  if (!(eps > 0)) throw new Error(`collapse: l2Normalize: eps must be positive, got ${eps}`);
  const d = x.shape[x.rank - 1];
  const rows = d === 0 ? 0 : x.size / d;
  const y = empty(x.shape);
  const norm = empty([rows]);
  const e = engine();
  if (x.size) e.dispatch(l2NormalizeLaunch(x, y, norm, d, eps));
  record(y, "l2Normalize", [x], (dy) => {
    const dx = empty(x.shape);
    if (x.size) e.dispatch(l2NormalizeBackwardLaunch(x, dy, norm, dx, d, eps));
    return [dx];
  });
  if (!y.node) norm.dispose();
  return y;
}
