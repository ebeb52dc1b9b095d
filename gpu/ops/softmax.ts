/**
 * Softmax, log-softmax (any axis; the kernel works on the last one, other axes are transposed)
 * and the fused, numerically stable softmax cross-entropy with hard or soft targets, label
 * smoothing and mean/sum/none reduction (one forward kernel + a mean, one backward kernel).
 * @module
 */
import { record } from "../autograd.ts";
import { engine } from "../engine.ts";
import { softmaxLaunch } from "../kernels/softmax.ts";
import {
  softmaxCrossEntropyGradLaunch,
  softmaxCrossEntropyLaunch,
} from "../kernels/softmax_cross_entropy.ts";
import { empty, fmtShape, type Tensor } from "../tensor.ts";
import { checkDtype, gradFn, mapOp } from "./op_util.ts";
import { mean, sum } from "./reduce.ts";
import { transpose } from "./shape.ts";

function lastAxis(op: string, x: Tensor, log: boolean): Tensor {
  const k = x.shape[x.rank - 1];
  const n = k === 0 ? 0 : x.size / k;
  const y = empty(x.shape, "f32");
  if (y.size) engine().dispatch(softmaxLaunch(x, y, n, k, log));
  return record(
    y,
    op,
    [x],
    gradFn((dy) => {
      if (log) {
        // dx = dy - softmax * sum(dy)
        const s = sum(dy, -1, true);
        return [mapOp({ name: "log_softmax_grad", expr: "a - exp(b) * c" }, [dy, y, s])];
      }
      // dx = y * (dy - sum(dy * y))
      const s = sum(mapOp({ name: "mul", expr: "a * b" }, [dy, y]), -1, true);
      return [mapOp({ name: "softmax_grad", expr: "b * (a - c)" }, [dy, y, s])];
    }),
  );
}

function alongAxis(op: string, x: Tensor, axis: number, log: boolean): Tensor {
  checkDtype(op, [x]);
  if (x.rank === 0) throw new Error(`collapse: ${op}: ${x.describe()} has no axis`);
  const ax = axis < 0 ? axis + x.rank : axis;
  if (!Number.isInteger(ax) || ax < 0 || ax >= x.rank) {
    throw new Error(`collapse: ${op}: axis ${axis} out of range for ${x.describe()}`);
  }
  if (ax === x.rank - 1) return lastAxis(op, x, log);
  const perm = x.shape.map((_, i) => i);
  perm[ax] = x.rank - 1;
  perm[x.rank - 1] = ax;
  return transpose(lastAxis(op, transpose(x, perm), log), perm);
}

/** exp(x) / sum(exp(x)) along `axis` (default last). */
export function softmax(x: Tensor, axis = -1): Tensor {
  return alongAxis("softmax", x, axis, false);
}

/** x - logsumexp(x) along `axis` (default last). */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return alongAxis("logSoftmax", x, axis, true);
}

/** Options of {@link softmaxCrossEntropy}. */
export interface SoftmaxCrossEntropyOptions {
  /** Mixes targets with the uniform distribution: t = (1 - eps) t + eps / K. Default 0. */
  labelSmoothing?: number;
  /** "mean" (default: scalar mean over rows), "sum" (scalar) or "none" ([N] per-row losses). */
  reduction?: "mean" | "sum" | "none";
}

/**
 * Cross-entropy of softmax(logits) against `labels`: i32 class indices [N] (checked on the GPU: an
 * index outside [0, K) makes the next readback throw an error naming it; the row contributes 0) or
 * f32 soft targets [N, K]. Fused and numerically stable;
 * the gradient is (softmax * sum(t) - t) / N for the mean reduction. Labels get no gradient.
 */
export function softmaxCrossEntropy(
  logits: Tensor,
  labels: Tensor,
  opts: SoftmaxCrossEntropyOptions = {},
): Tensor {
  const op = "softmaxCrossEntropy";
  const eps = opts.labelSmoothing ?? 0;
  const reduction = opts.reduction ?? "mean";
  checkDtype(op, [logits]);
  if (logits.rank !== 2) {
    throw new Error(`collapse: ${op}: logits must be [N, K], got ${logits.describe()}`);
  }
  const [n, k] = logits.shape;
  if (labels.dtype === "i32") {
    if (labels.rank !== 1 || labels.shape[0] !== n) {
      throw new Error(
        `collapse: ${op}: class labels ${labels.describe()} must be [${n}] for logits ${
          fmtShape(logits.shape)
        }`,
      );
    }
  } else if (labels.dtype === "f32") {
    if (labels.rank !== 2 || labels.shape[0] !== n || labels.shape[1] !== k) {
      throw new Error(
        `collapse: ${op}: soft targets ${labels.describe()} must be ${fmtShape(logits.shape)}`,
      );
    }
  } else {
    throw new Error(`collapse: ${op}: labels ${labels.describe()} must be i32 [N] or f32 [N, K]`);
  }
  if (!(eps >= 0 && eps <= 1)) {
    throw new Error(`collapse: ${op}: labelSmoothing ${eps} must be in [0, 1]`);
  }
  if (!["mean", "sum", "none"].includes(reduction)) {
    throw new Error(`collapse: ${op}: unknown reduction ${reduction}`);
  }
  if (k === 0) throw new Error(`collapse: ${op}: logits ${logits.describe()} have no classes`);
  const probs = empty([n, k]);
  const rows = empty([n]);
  const tsum = empty([n]);
  if (n) {
    engine().dispatch(softmaxCrossEntropyLaunch(logits, labels, { probs, loss: rows, tsum }, eps));
  }
  let out = rows;
  if (reduction !== "none") {
    out = reduction === "mean" ? mean(rows) : sum(rows);
    rows.dispose();
  }
  const scale = reduction === "mean" ? 1 / Math.max(n, 1) : 1;
  record(out, op, [logits, null], (dy) => {
    const dz = empty([n, k]);
    if (dz.size) {
      engine().dispatch(
        softmaxCrossEntropyGradLaunch({ probs, tsum }, labels, dy, dz, eps, scale),
      );
    }
    return [dz, null];
  });
  if (!out.node) {
    probs.dispose();
    tsum.dispose();
  }
  return out;
}
