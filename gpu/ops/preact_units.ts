/**
 * The pre-activation conv unit chain behind the dense-concatenation ops: per unit BN (batch or
 * running statistics over every image group) -> ReLU -> conv (1x1 as one dense GEMM, k x k as
 * conv2d) or a global average pool, run per image group; the backward pass recomputes each unit's
 * BN-ReLU output (the forward keeps only the inner unit outputs and the statistics) and writes or
 * accumulates the input gradient through the BN-ReLU kernels of ../kernels/prefix_batch_norm.ts.
 * Internal to ./dense_concat.ts and ./preact_conv.ts.
 * @module
 */
import { needsGrad, noGrad } from "../autograd.ts";
import { engine, type Storage } from "../engine.ts";
import {
  bnEvalStatsLaunch,
  bnGradFinalLaunch,
  bnStatsFinalLaunch,
} from "../kernels/batch_norm_reduce.ts";
import { globalAvgPoolBackwardLaunch, globalAvgPoolLaunch } from "../kernels/pool_global.ts";
import {
  type BnVectors,
  chunkPlans,
  prefixBnApplyLaunch,
  prefixBnBackwardLaunch,
  prefixBnGradPartialLaunch,
  prefixBnStatsPartialLaunch,
  type PrefixView,
} from "../kernels/prefix_batch_norm.ts";
import { stridedMapLaunch } from "../kernels/strided_map.ts";
import { empty, reshapeView, type Tensor } from "../tensor.ts";
import { accumulate_ } from "./accumulate.ts";
import { conv2d, conv2dBackwardFilter, conv2dBackwardInput } from "./conv2d.ts";
import { disposeAll, type Geometry, rowsOf } from "./image_groups.ts";
import { matmulRaw } from "./matmul.ts";

/** A BatchNorm's tensors and settings (PyTorch conventions, as {@link batchNorm}). */
export interface BatchNormParams {
  /** Scale, f32[C]. */
  gamma: Tensor;
  /** Shift, f32[C]. */
  beta: Tensor;
  /** f32[C], updated in place in training mode. */
  runningMean: Tensor;
  /** f32[C] (unbiased), updated in place in training mode. */
  runningVar: Tensor;
  /** Weight of the new batch in the running statistics; default 0.1. */
  momentum?: number;
  /** Default 1e-5. */
  eps?: number;
}

/**
 * One pre-activation conv unit: BN -> ReLU -> conv (no bias, stride 1, spatial size kept: a 1x1
 * kernel, or an odd k x k kernel with padding (k - 1) / 2).
 */
export interface PreactConvUnit {
  /** The BN of the unit's input. */
  bn: BatchNormParams;
  /** HWIO kernel [k, k, Cin, Cout]. */
  weight: Tensor;
}

/** A unit as the chain runs it: a null weight is a global average pool (the last unit only). */
export interface Unit {
  /** The BN of the unit's input. */
  bn: BatchNormParams;
  /** HWIO kernel, or null for a global average pool. */
  weight: Tensor | null;
}

/** Gradient buffers made by this file's backward passes (safe to accumulate into in place). */
const ownGradients = new WeakSet<Storage>();

/** Marks t's storage as a gradient buffer made here (nobody else holds it). */
export function markOwnGradient(t: Tensor): void {
  ownGradients.add(t.storage);
}

/** Whether t's storage is a gradient buffer made here. */
export function isOwnGradient(t: Tensor): boolean {
  return ownGradients.has(t.storage);
}

const COPY = { name: "preact_copy", expr: "a" };

export function checkNhwc(op: string, x: Tensor): [number, number, number, number] {
  if (x.rank !== 4 || x.dtype !== "f32") {
    throw new Error(`collapse: ${op}: needs an f32 NHWC tensor, got ${x.describe()}`);
  }
  return x.shape as unknown as [number, number, number, number];
}

/** Validates the unit chain from `c` input channels; returns each unit's input channel count. */
export function checkUnits(
  op: string,
  units: Unit[],
  c: number,
  rows: number,
  training: boolean,
): number[] {
  if (!units.length) throw new Error(`collapse: ${op}: no units`);
  if (training && rows < 2) {
    throw new Error(`collapse: ${op}: training BatchNorm needs more than one value per channel`);
  }
  const ins: number[] = [];
  let cin = c;
  for (const [j, u] of units.entries()) {
    const w = u.weight;
    if (!w) {
      checkBn(op, j, u.bn, cin);
      ins.push(cin);
      continue;
    }
    const [kh, kw, wc, cout] = w.shape;
    if (w.rank !== 4 || wc !== cin || kh !== kw || kh % 2 !== 1 || cout < 1) {
      throw new Error(
        `collapse: ${op}: unit ${j}: kernel ${w.describe()} should be [k, k, ${cin}, Cout] ` +
          "with an odd k",
      );
    }
    checkBn(op, j, u.bn, cin);
    ins.push(cin);
    cin = cout;
  }
  return ins;
}

function checkBn(op: string, j: number, bn: BatchNormParams, c: number): void {
  for (const [name, t] of Object.entries(bn)) {
    if (typeof t === "number") continue;
    if (t.dtype !== "f32" || t.size !== c) {
      throw new Error(
        `collapse: ${op}: unit ${j}: BN ${name} ${t.describe()} does not match ${c} channels`,
      );
    }
  }
}

/** The widest channel count a unit chain touches (binding sizes per image). */
export function widestOf(units: Unit[], ...cs: number[]): number {
  const ws = units.flatMap((u) => (u.weight ? [u.weight.shape[2], u.weight.shape[3]] : []));
  return Math.max(...cs, ...ws);
}

/**
 * The BN statistics [mean; invstd] of channels [0, c) over every group (training: of the batch,
 * updating the running ones).
 */
function bnStats(
  xs: PrefixView[],
  geo: Geometry,
  c: number,
  bn: BatchNormParams,
  training: boolean,
): Tensor {
  const e = engine();
  const stats = empty([2 * c], "f32", "preact_bn_stats");
  const eps = bn.eps ?? 1e-5;
  if (!training) {
    e.dispatch(bnEvalStatsLaunch(bn.runningMean, bn.runningVar, stats, c, eps));
    return stats;
  }
  const plans = chunkPlans(geo.groups.map((_, k) => rowsOf(geo, k)));
  const chunks = plans[0].chunks;
  const shift = empty([c], "f32", "preact_bn_shift"); // the batch's first row, against cancellation
  e.dispatch(
    stridedMapLaunch(COPY, { t: shift, offset: 0, strides: [1] }, [
      { t: xs[0].t, offset: 0, strides: [1] },
    ], [c]),
  );
  const part = empty([2 * chunks * c], "f32", "preact_bn_partial");
  xs.forEach((x, k) =>
    e.dispatch(prefixBnStatsPartialLaunch(x, shift, part, rowsOf(geo, k), c, plans[k]))
  );
  const rows = geo.n * geo.h * geo.w;
  const m = bn.momentum ?? 0.1;
  e.dispatch(
    bnStatsFinalLaunch(shift, part, stats, bn.runningMean, bn.runningVar, rows, c, m, eps, chunks),
  );
  part.dispose();
  shift.dispose();
  return stats;
}

/** Per-channel sums of g and g * xhat (g = da masked by the ReLU) over every group. */
function gradSums(xs: PrefixView[], das: Tensor[], v: BnVectors, geo: Geometry, c: number) {
  const e = engine();
  const plans = chunkPlans(geo.groups.map((_, k) => rowsOf(geo, k)));
  const chunks = plans[0].chunks;
  const part = empty([2 * chunks * c], "f32", "preact_bn_grad_partial");
  xs.forEach((x, k) =>
    e.dispatch(prefixBnGradPartialLaunch(x, das[k], v, part, rowsOf(geo, k), c, true, plans[k]))
  );
  const dgamma = empty([c], "f32", "preact_dgamma"), dbeta = empty([c], "f32", "preact_dbeta");
  e.dispatch(bnGradFinalLaunch(part, dgamma, dbeta, geo.n * geo.h * geo.w, c, chunks));
  part.dispose();
  return { dgamma, dbeta };
}

/** relu(bn(x)) of channels [0, c) of one group as a new contiguous [count, H, W, c] tensor. */
function bnRelu(x: PrefixView, geo: Geometry, k: number, c: number, v: BnVectors): Tensor {
  const a = empty([geo.groups[k].count, geo.h, geo.w, c], "f32", "preact_bn_relu");
  engine().dispatch(prefixBnApplyLaunch(x, v, a, rowsOf(geo, k), c, true));
  return a;
}

function pad(w: Tensor): number {
  return (w.shape[0] - 1) / 2;
}

/** A [.., C] view as [rows, C] (caller disposes). */
function rows2d(t: Tensor): Tensor {
  return reshapeView(t, [t.size / t.shape[t.rank - 1], t.shape[t.rank - 1]]);
}

/** conv(a, w) with "same" padding (1x1 kernels as one dense GEMM), or a's global average pool. */
function convForward(a: Tensor, w: Tensor | null): Tensor {
  if (!w) {
    const [n, h, wd, c] = a.shape;
    const y = empty([n, c], "f32", "preact_global_pool");
    engine().dispatch(globalAvgPoolLaunch(a, y, h * wd, c));
    return y;
  }
  if (w.shape[0] !== 1) return noGrad(() => conv2d(a, w, { padding: pad(w) }));
  const a2 = rows2d(a), w2 = rows2d(w);
  const y2 = matmulRaw(a2, w2);
  const y = reshapeView(y2, [a.shape[0], a.shape[1], a.shape[2], w.shape[3]]);
  disposeAll([a2, w2, y2]);
  return y;
}

/** dL/dw (when `wantW`) and dL/da of y = conv(a, w) (or of y = a's global average pool). */
function convBackward(a: Tensor, dy: Tensor, w: Tensor | null, wantW: boolean) {
  if (!w) {
    const [, h, wd, c] = a.shape;
    const da = empty(a.shape, "f32", "preact_global_pool_grad");
    engine().dispatch(globalAvgPoolBackwardLaunch(dy, da, h * wd, c));
    return { dw: null, da };
  }
  if (w.shape[0] !== 1) {
    const o = { padding: pad(w) };
    return {
      dw: wantW ? conv2dBackwardFilter(a, dy, w.shape, o) : null,
      da: conv2dBackwardInput(dy, w, a.shape, o),
    };
  }
  const a2 = rows2d(a), w2 = rows2d(w), d2 = rows2d(dy);
  let dw: Tensor | null = null;
  if (wantW) {
    const g = matmulRaw(a2, d2, { transposeA: true });
    dw = reshapeView(g, w.shape);
    g.dispose();
  }
  const g = matmulRaw(d2, w2, { transposeB: true });
  const da = reshapeView(g, a.shape);
  disposeAll([a2, w2, d2, g]);
  return { dw, da };
}

/** What the forward of a unit chain keeps for its backward. */
export interface Saved {
  /** Per unit: [mean; invstd] of its input. */
  stats: Tensor[];
  /** Per unit 0 .. n-2, per group: its output (the next unit's input). */
  inner: Tensor[][];
}

/** Runs the units on channels [0, c) of each group of x; returns the last unit's outputs. */
export function forwardUnits(
  xs: PrefixView[],
  geo: Geometry,
  ins: number[],
  units: Unit[],
  training: boolean,
): { ys: Tensor[]; saved: Saved } {
  const saved: Saved = { stats: [], inner: [] };
  let cur = xs;
  let ys: Tensor[] = [];
  units.forEach((u, j) => {
    const stats = bnStats(cur, geo, ins[j], u.bn, training);
    saved.stats.push(stats);
    const v = { stats, gamma: u.bn.gamma, beta: u.bn.beta };
    ys = cur.map((x, k) => {
      const a = bnRelu(x, geo, k, ins[j], v);
      const y = convForward(a, u.weight);
      a.dispose();
      return y;
    });
    if (j < units.length - 1) {
      saved.inner.push(ys);
      cur = ys.map((t) => ({ t, ld: t.shape[t.rank - 1] }));
    }
  });
  return { ys, saved };
}

/**
 * Backward of {@link forwardUnits}: from dL/d(last output) per group `dys`, the gradients
 * [gamma, beta, weight] of every unit (null where not needed) and dL/dx of channels [0, c) per
 * group written or accumulated into `dxs` (skipped when null).
 */
export function backwardUnits(
  xs: PrefixView[],
  geo: Geometry,
  ins: number[],
  units: Unit[],
  saved: Saved,
  dys: Tensor[],
  dxs: PrefixView[] | null,
  accumulate: boolean,
  training: boolean,
): (Tensor | null)[] {
  const e = engine();
  const grads: (Tensor | null)[] = new Array(3 * units.length).fill(null);
  let d = dys;
  for (let j = units.length - 1; j >= 0; j--) {
    const u = units[j], c = ins[j];
    const inp = j === 0 ? xs : saved.inner[j - 1].map((t) => ({ t, ld: c }));
    const v: BnVectors = { stats: saved.stats[j], gamma: u.bn.gamma, beta: u.bn.beta };
    const wantW = !!u.weight && needsGrad(u.weight);
    let dw: Tensor | null = null;
    const das = inp.map((x, k) => {
      const a = bnRelu(x, geo, k, c, v); // recomputed: the forward kept nothing of size c
      const g = convBackward(a, d[k], u.weight, wantW);
      a.dispose();
      if (d !== dys) d[k].dispose();
      if (g.dw && dw) {
        accumulate_(dw, g.dw);
        g.dw.dispose();
      } else dw = g.dw;
      return g.da;
    });
    grads[3 * j + 2] = dw;
    const targets: PrefixView[] | null = j > 0
      ? geo.groups.map((g) => ({
        t: empty([g.count, geo.h, geo.w, c], "f32", "preact_grad"),
        ld: c,
      }))
      : dxs;
    const batchRows = geo.n * geo.h * geo.w;
    const mode = { training, relu: true, accumulate: j === 0 && accumulate, batchRows };
    if (needsGrad(u.bn.gamma) || needsGrad(u.bn.beta) || (targets && training)) {
      const { dgamma, dbeta } = gradSums(inp, das, v, geo, c);
      targets?.forEach((t, k) =>
        e.dispatch(
          prefixBnBackwardLaunch(
            inp[k],
            das[k],
            v,
            { sumDyXhat: dgamma, sumDy: dbeta },
            t,
            rowsOf(geo, k),
            c,
            mode,
          ),
        )
      );
      grads[3 * j] = needsGrad(u.bn.gamma) ? dgamma : (dgamma.dispose(), null);
      grads[3 * j + 1] = needsGrad(u.bn.beta) ? dbeta : (dbeta.dispose(), null);
    } else {
      // Eval-mode input gradient without BN parameter gradients: no sums needed.
      targets?.forEach((t, k) =>
        e.dispatch(prefixBnBackwardLaunch(inp[k], das[k], v, null, t, rowsOf(geo, k), c, mode))
      );
    }
    disposeAll(das);
    if (j > 0) d = targets!.map((t) => t.t);
  }
  return grads;
}

export function unitInputs(units: Unit[]): Tensor[] {
  return units.flatMap((u) => [u.bn.gamma, u.bn.beta, ...(u.weight ? [u.weight] : [])]);
}

/** The gradients of {@link backwardUnits} in {@link unitInputs} order. */
export function unitGrads(units: Unit[], grads: (Tensor | null)[]): (Tensor | null)[] {
  return units.flatMap((u, j) => grads.slice(3 * j, 3 * j + (u.weight ? 3 : 2)));
}

/** Frees what a forward pass kept (when no backward pass will run). */
export function disposeSaved(s: Saved): void {
  disposeAll([...s.stats, ...s.inner.flat()]);
}
