/**
 * The GEMM dispatcher behind matmul, conv2d and the fused ops (internal: not part of the op API):
 * plans a job (variant, tiles and split-K from kernels/tuning.ts, or a measured plan from
 * gemm_tune.ts), builds its launch with any fused stages, and reduces split-K partials (or hands
 * them back as a rider job).
 * @module
 */
import { engine } from "../engine.ts";
import type { RiderJob } from "../kernels/fusion_parts.ts";
import { gemmLaunch } from "../kernels/matmul_launch.ts";
import { colSumLaunch } from "../kernels/matmul_reduce.ts";
import { empty } from "../tensor.ts";
import { type GemmJob, gemmSpecOf, planOptions } from "./gemm_job.ts";
import { planFor } from "./gemm_tune.ts";

export type { GemmJob } from "./gemm_job.ts";

/**
 * Dispatches a GEMM: plans it, splits K when that helps (no epilogue), reduces the partials (or,
 * with `deferReduce`, returns them as a rider job).
 */
export function runGemm(job: GemmJob): RiderJob | null {
  const { M, N, batch } = job;
  if (M === 0 || N === 0 || batch === 0) return null;
  const opts = planOptions(job);
  // Candidates first: a fusion function's last call (the real one, below) is the one its
  // caller keeps.
  const plan = planFor(job, opts);
  const base = gemmSpecOf(job, plan);
  const e = engine();
  if (plan.splits === 1) {
    e.dispatch(gemmLaunch({ ...base, out: job.out.binding }));
    return null;
  }
  const partial = empty([plan.splits, M * N], "f32", "gemm_partial");
  e.dispatch(gemmLaunch({ ...base, out: partial.binding }));
  if (job.deferReduce) return { part: partial, out: job.out, splits: plan.splits };
  e.dispatch(colSumLaunch(partial, job.out, plan.splits, M * N, plan.splits));
  partial.dispose();
  return null;
}
