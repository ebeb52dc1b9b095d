/**
 * The GEMM dispatcher behind matmul, conv2d and the fused ops (internal: not part of the op API):
 * plans a job (variant, tiles and split-K from kernels/tuning.ts), builds its launch with any
 * fused stages, and reduces split-K partials (or hands them back as a rider job).
 * @module
 */
import type { Bindable } from "../engine.ts";
import { engine } from "../engine.ts";
import type { RiderJob } from "../kernels/fusion_parts.ts";
import {
  type GemmFusion,
  type GemmOperand,
  type GemmSpec,
  tileOf,
} from "../kernels/matmul_gemm.ts";
import { gemmLaunch } from "../kernels/matmul_launch.ts";
import { colSumLaunch } from "../kernels/matmul_reduce.ts";
import { type GemmPlan, gemmPlan, type GemmVariant } from "../kernels/tuning.ts";
import { empty, type Tensor } from "../tensor.ts";

/** A GEMM to run; {@link runGemm} adds the plan (variant, tiles, split-K). */
export interface GemmJob {
  name: string;
  a: GemmOperand;
  b: GemmOperand;
  aT: Tensor;
  bT: Tensor;
  out: Tensor;
  bias?: Tensor;
  relu?: boolean;
  M: number;
  N: number;
  K: number;
  batch: number;
  batchDims?: [number, number, number, number];
  variant?: GemmVariant;
  /** Register-blocked tile override (benches). */
  tm?: number;
  tn?: number;
  /** Bindings of the operands' extra arrays. */
  aExtra?: Bindable[];
  bExtra?: Bindable[];
  /**
   * Fused stages, or a function of the plan's tile rows and row tiles (to size an epilogue's
   * partials). An epilogue rules out split-K.
   */
  fusion?: GemmFusion | ((tileM: number, rowTiles: number) => GemmFusion);
  /** WGSL cap on K per batch (see {@link GemmSpec.kLimit}). */
  kLimit?: string;
  /** Whether the fusion has an epilogue (known before planning). */
  fusedEpilogue?: boolean;
  /**
   * Split-K: leave the partials unreduced and return them as a {@link RiderJob} for a later
   * kernel's rider (the caller must run one before `out` is read).
   */
  deferReduce?: boolean;
}

/** The plan {@link runGemm} uses for a job. */
export function planOf(job: GemmJob): GemmPlan {
  return gemmPlan(job.M, job.N, job.K, job.batch, {
    variant: job.variant,
    tm: job.tm,
    tn: job.tn,
    // Split-K partials are summed by a scalar-store reduction, which a half-stored output refuses.
    allowSplit: !job.bias && !job.relu && !job.fusedEpilogue && !job.out.half,
    scalarA: job.a.rbElem === "f32",
    aLoad: job.a.loadCost,
    bLoad: job.b.loadCost,
    tmMultiple: job.a.rbTmMultiple,
    window: job.a.rbWindow && {
      taps: job.a.rbWindow.taps,
      rowSpan: job.a.rbWindow.rowSpan,
    },
  });
}

/**
 * Dispatches a GEMM: plans it, splits K when that helps (no epilogue), reduces the partials (or,
 * with `deferReduce`, returns them as a rider job).
 */
export function runGemm(job: GemmJob): RiderJob | null {
  const { M, N, K, batch } = job;
  if (M === 0 || N === 0 || batch === 0) return null;
  const plan = planOf(job);
  const { tileM } = tileOf(plan.config);
  const fusion = typeof job.fusion === "function"
    ? job.fusion(tileM, Math.ceil(M / tileM))
    : job.fusion;
  if (fusion?.epilogue && plan.splits > 1) {
    throw new Error(`collapse: ${job.name}: split-K planned for a fused epilogue`);
  }
  const base: Omit<GemmSpec, "out"> = {
    name: job.name,
    a: job.a,
    b: job.b,
    aBinding: job.aT.binding,
    bBinding: job.bT.binding,
    bias: job.bias?.binding,
    relu: job.relu,
    M,
    N,
    K,
    batch,
    batchDims: job.batchDims,
    splits: plan.splits,
    config: plan.config,
    aExtra: job.aExtra,
    bExtra: job.bExtra,
    fusion,
    kLimit: job.kLimit,
  };
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
