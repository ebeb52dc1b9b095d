/**
 * The paper's dot-regression (DR) loss against a fixed ETF classifier (DESIGN.md section 3), fused
 * and computed entirely on the GPU (class counts included), so it runs inside captured steps.
 * @module
 */
import { record } from "../autograd.ts";
import { engine } from "../engine.ts";
import {
  drCountsLaunch,
  drGradLaunch,
  drMeanLaunch,
  drRowsLaunch,
} from "../kernels/dot_regression.ts";
import { empty, fmtShape, type Tensor } from "../tensor.ts";

/** Options of {@link dotRegressionLoss}. */
export interface DotRegressionOptions {
  /**
   * Labels whose per-batch class counts give Ew (i32[B]; default `labels`). With mixup, pass the
   * un-mixed labels here and the permuted ones as `labels`.
   */
  countLabels?: Tensor;
  /** "mean" (default): a scalar; "none": the per-row losses f32[B]. */
  reduction?: "mean" | "none";
}

/**
 * The DR loss: with U the classes present in `countLabels`, c_k their counts, gamma = B / |U| and
 * Ew_k = sqrt(gamma / c_k): t_i = Ew_{y_i} M[:, y_i]; s_i = max(||h_i||, 1e-8) and a_i = ||t_i||
 * held constant; loss_i = (h_i . t_i - a_i s_i)^2 / (2 s_i); mean over i. Differentiable in `h` only:
 * dL/dh_i = (h_i . t_i - a_i s_i) / (s_i B) * t_i. For unit-norm h and unit-norm columns of M this is
 * 0.5 * mean_i Ew_{y_i}^2 (cos(h_i, m_{y_i}) - 1)^2. Labels must lie in [0, K): others give NaN
 * and make the next readback throw an error naming them (checked on the GPU).
 *
 * @example
 * ```ts
 * import { assertAlmostEquals } from "@std/assert";
 * import { dotRegressionLoss, initDevice, l2Normalize, tensor } from "@collapse/collapse/gpu";
 *
 * await initDevice();
 * const M = tensor([1, 0, 0, 1], [2, 2]); // class vectors as columns: [d, K]
 * const h = l2Normalize(tensor([3, 0, 0, -2], [2, 2])); // features [B, d]: [1, 0] and [0, -1]
 * const labels = tensor([0, 1], [2], "i32");
 * // Example 0 lies on its class vector (cos 1), example 1 opposite to it (cos -1):
 * // 0.5 * mean((1 - 1)^2, (-1 - 1)^2) = 1.
 * assertAlmostEquals(await dotRegressionLoss(h, M, labels).item(), 1, 1e-6);
 * ```
 */
export function dotRegressionLoss(
  h: Tensor,
  M: Tensor,
  labels: Tensor,
  opts: DotRegressionOptions = {},
): Tensor {
  const op = "dotRegressionLoss";
  if (h.rank !== 2 || h.dtype !== "f32") {
    throw new Error(`collapse: ${op}: h must be f32 [B, d], got ${h.describe()}`);
  }
  const [b, d] = h.shape;
  if (M.rank !== 2 || M.dtype !== "f32" || M.shape[0] !== d) {
    throw new Error(
      `collapse: ${op}: M must be f32 [d, K] with d = ${d} (h ${
        fmtShape(h.shape)
      }), got ${M.describe()}`,
    );
  }
  const k = M.shape[1];
  const countLabels = opts.countLabels ?? labels;
  for (const [t, what] of [[labels, "labels"], [countLabels, "countLabels"]] as const) {
    if (t.dtype !== "i32" || t.rank !== 1 || t.size !== b) {
      throw new Error(
        `collapse: ${op}: ${what} must be i32 [${b}] (B of h ${
          fmtShape(h.shape)
        }), got ${t.describe()}`,
      );
    }
  }
  const reduction = opts.reduction ?? "mean";
  if (reduction !== "mean" && reduction !== "none") {
    throw new Error(`collapse: ${op}: unknown reduction ${JSON.stringify(reduction)}`);
  }
  if (b === 0 || k === 0) throw new Error(`collapse: ${op}: empty batch or class set`);
  const e = engine();
  const counts = empty([k], "u32");
  const ew = empty([k]);
  const rowLoss = empty([b]);
  const coef = empty([b]);
  e.dispatch(drCountsLaunch(countLabels, counts, ew, k, countLabels !== labels));
  e.dispatch(drRowsLaunch(h, M, labels, ew, rowLoss, coef, d, k));
  counts.dispose();
  ew.dispose();
  const mean = reduction === "mean";
  let out = rowLoss;
  if (mean) {
    out = empty([]);
    e.dispatch(drMeanLaunch(rowLoss, out));
    rowLoss.dispose();
  }
  record(out, op, [h, null, null], (dy) => {
    const dh = empty(h.shape);
    e.dispatch(drGradLaunch(M, labels, coef, dy, dh, d, k, mean));
    return [dh, null, null];
  });
  if (!out.node) coef.dispose();
  return out;
}
