/**
 * BatchNorm over the last (channel) axis of a channels-last tensor ([N, C] for BatchNorm1d, NHWC for
 * BatchNorm2d): training mode with batch statistics (one two-level reduction + one elementwise pass,
 * or, for few rows, one dispatch; running statistics updated in place on the GPU) or eval mode with
 * the running statistics.
 * Differentiable in x, gamma and beta.
 * @module
 */
import { needsGrad, record } from "../autograd.ts";
import { engine } from "../engine.ts";
import {
  bnBackwardEvalLaunch,
  bnBackwardTrainLaunch,
  bnForwardLaunch,
} from "../kernels/batch_norm_apply.ts";
import {
  bnChunks,
  bnEvalStatsLaunch,
  bnGradFinalLaunch,
  bnGradPartialLaunch,
  bnStatsFinalLaunch,
  bnStatsPartialLaunch,
} from "../kernels/batch_norm_reduce.ts";
import { bnSmallBackwardLaunch, bnSmallForwardLaunch } from "../kernels/batch_norm_small.ts";
import { TUNING } from "../kernels/tuning.ts";
import { empty, fmtShape, type Tensor } from "../tensor.ts";

/** Options of {@link batchNorm}. */
export interface BatchNormOptions {
  /** Batch statistics (and running-stat update) when true; running statistics when false. */
  training: boolean;
  /** Running mean, f32[C], updated in place in training mode. */
  runningMean: Tensor;
  /** Running (unbiased) variance, f32[C], updated in place in training mode. */
  runningVar: Tensor;
  /** PyTorch convention: running = (1 - momentum) * running + momentum * batch. Default 0.1. */
  momentum?: number;
  /** Default 1e-5. */
  eps?: number;
}

function checkVec(t: Tensor, c: number, what: string, x: Tensor): void {
  if (t.dtype !== "f32" || t.size !== c) {
    throw new Error(
      `collapse: batchNorm: ${what} ${t.describe()} does not match the ${c} channels of x ${
        fmtShape(x.shape)
      }`,
    );
  }
}

/**
 * Batch normalisation over every axis but the last: y = (x - mean) / sqrt(var + eps) * gamma + beta.
 * Training: mean and biased variance of the batch; the running statistics are updated in place with
 * the unbiased variance (as PyTorch). Eval: the running statistics.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { batchNorm, initDevice, ones, tensor, zeros } from "@collapse/collapse/gpu";
 *
 * await initDevice();
 * const x = tensor([1, 10, 2, 20, 3, 30], [3, 2]); // 3 rows of 2 channels (channels last)
 * const runningMean = zeros([2]), runningVar = ones([2]);
 * const y = batchNorm(x, ones([2]), zeros([2]), { training: true, runningMean, runningVar });
 * const round = (v: number[]) => v.map((a) => Math.round(a * 100) / 100);
 * assertEquals(round(await y.array()), [-1.22, -1.22, 0, 0, 1.22, 1.22]);
 * assertEquals(round(await runningMean.array()), [0.2, 2]); // 0.9 * 0 + 0.1 * the batch means 2, 20
 * ```
 */
export function batchNorm(x: Tensor, gamma: Tensor, beta: Tensor, opts: BatchNormOptions): Tensor {
  if (x.dtype !== "f32" || x.rank < 2) {
    throw new Error(
      `collapse: batchNorm: x must be f32 of rank >= 2 (channels last), got ${x.describe()}`,
    );
  }
  const c = x.shape[x.rank - 1];
  const rows = c === 0 ? 0 : x.size / c;
  checkVec(gamma, c, "gamma", x);
  checkVec(beta, c, "beta", x);
  checkVec(opts.runningMean, c, "runningMean", x);
  checkVec(opts.runningVar, c, "runningVar", x);
  const momentum = opts.momentum ?? 0.1;
  const eps = opts.eps ?? 1e-5;
  if (!Number.isFinite(momentum) || !(eps > 0)) {
    throw new Error(`collapse: batchNorm: invalid momentum ${momentum} or eps ${eps}`);
  }
  const training = opts.training;
  if (training && rows < 2) {
    throw new Error(
      `collapse: batchNorm: training needs more than one value per channel, got x ${
        fmtShape(x.shape)
      }`,
    );
  }
  const y = empty(x.shape);
  if (x.size === 0) return y;
  const e = engine();
  const stats = empty([2 * c]);
  // Few rows (a BatchNorm1d on features): one dispatch each way.
  const small = training && rows <= TUNING.bnSmallRows;
  if (small) {
    e.dispatch(
      bnSmallForwardLaunch(
        x,
        gamma,
        beta,
        stats,
        opts.runningMean,
        opts.runningVar,
        y,
        rows,
        c,
        momentum,
        eps,
      ),
    );
  } else if (training) {
    const part = empty([2 * bnChunks(rows).chunks * c]);
    e.dispatch(bnStatsPartialLaunch(x, part, rows, c));
    e.dispatch(
      bnStatsFinalLaunch(x, part, stats, opts.runningMean, opts.runningVar, rows, c, momentum, eps),
    );
    part.dispose();
  } else {
    e.dispatch(bnEvalStatsLaunch(opts.runningMean, opts.runningVar, stats, c, eps));
  }
  if (!small) e.dispatch(bnForwardLaunch(x, stats, gamma, beta, y, c));
  record(y, "batchNorm", [x, gamma, beta], (dy) => {
    const wantX = needsGrad(x);
    const wantParams = needsGrad(gamma) || needsGrad(beta);
    let dgamma: Tensor | null = null, dbeta: Tensor | null = null, dx: Tensor | null = null;
    if (small && wantX) {
      dgamma = empty(gamma.shape);
      dbeta = empty(beta.shape);
      dx = empty(x.shape);
      e.dispatch(bnSmallBackwardLaunch(x, dy, stats, gamma, dgamma, dbeta, dx, rows, c));
    } else if (wantParams || (training && wantX)) {
      dgamma = empty(gamma.shape);
      dbeta = empty(beta.shape);
      const part = empty([2 * bnChunks(rows).chunks * c]);
      e.dispatch(bnGradPartialLaunch(x, dy, stats, part, rows, c));
      e.dispatch(bnGradFinalLaunch(part, dgamma, dbeta, rows, c));
      part.dispose();
    }
    if (wantX && !dx) {
      dx = empty(x.shape);
      e.dispatch(
        training
          ? bnBackwardTrainLaunch(x, dy, stats, gamma, dgamma!, dbeta!, dx, c)
          : bnBackwardEvalLaunch(dy, stats, gamma, dx, c),
      );
    }
    if (!needsGrad(gamma)) dgamma?.dispose();
    if (!needsGrad(beta)) dbeta?.dispose();
    return [dx, needsGrad(gamma) ? dgamma : null, needsGrad(beta) ? dbeta : null];
  });
  if (!y.node) stats.dispose();
  return y;
}
