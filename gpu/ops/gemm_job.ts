/**
 * A GEMM job as matmul, conv2d and the fused ops describe it to the dispatcher (internal: not part
 * of the op API), the planner's options it implies, and the kernel spec of the job under a plan.
 * @module
 */
import type { Bindable } from "../engine.ts";
import {
  type GemmFusion,
  type GemmOperand,
  type GemmSpec,
  tileOf,
} from "../kernels/matmul_gemm.ts";
import type { GemmPlan, GemmVariant, PlanOptions } from "../kernels/tuning.ts";
import type { Tensor } from "../tensor.ts";

/** A GEMM to run; the dispatcher adds the plan (variant, tiles, split-K). */
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
   * Split-K: leave the partials unreduced and return them as a rider job for a later kernel's
   * rider (the caller must run one before `out` is read).
   */
  deferReduce?: boolean;
}

/** The planner's options for a job: its overrides, operand costs and whether K may be split. */
export function planOptions(job: GemmJob): PlanOptions {
  return {
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
  };
}

/**
 * The kernel spec of a job under `plan`, all but the output binding. A fusion given as a function
 * is called here, with the plan's tile rows (it may size and allocate the epilogue's partials).
 */
export function gemmSpecOf(job: GemmJob, plan: GemmPlan): Omit<GemmSpec, "out"> {
  const { tileM } = tileOf(plan.config);
  const fusion = typeof job.fusion === "function"
    ? job.fusion(tileM, Math.ceil(job.M / tileM))
    : job.fusion;
  if (fusion?.epilogue && plan.splits > 1) {
    throw new Error(`collapse: ${job.name}: split-K planned for a fused epilogue`);
  }
  return {
    name: job.name,
    a: job.a,
    b: job.b,
    aBinding: job.aT.binding,
    bBinding: job.bT.binding,
    bias: job.bias?.binding,
    relu: job.relu,
    M: job.M,
    N: job.N,
    K: job.K,
    batch: job.batch,
    batchDims: job.batchDims,
    splits: plan.splits,
    config: plan.config,
    aExtra: job.aExtra,
    bExtra: job.bExtra,
    fusion,
    kLimit: job.kLimit,
  };
}
