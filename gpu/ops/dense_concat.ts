/**
 * Memory-efficient dense concatenation (DenseNet; the shared-storage scheme of Pleiss et al.,
 * "Memory-Efficient Implementation of DenseNets", 2017). A dense block's growing feature map lives
 * in ONE preallocated NHWC buffer [N, H, W, total] ({@link denseBlockBuffer}); each layer
 * ({@link denseBlockLayer}) reads the channel prefix [0, c) in place, runs a chain of pre-activation
 * conv units (BN -> ReLU -> conv, see {@link PreactConvUnit}) and writes its `growth` new channels
 * into [c, c + growth). Nothing of size c is kept per layer: each unit's BN-ReLU output goes to a
 * temporary that is freed at once and recomputed in the backward pass, so a layer keeps only its
 * intermediate unit outputs (the bottleneck's 4 * growth channels) and the BN statistics.
 *
 * Backward: the block's gradient lives in one buffer too. A layer's backward reads its slice's
 * gradient, runs the units backward and ACCUMULATES the prefix gradient into the same buffer in
 * place (no concat/split copies), then hands that buffer on as the gradient of the layer's input.
 * A gradient that arrives from outside the block is copied into a fresh buffer once per block.
 *
 * Large batches: every kernel binds at most `maxStorageBufferBindingSize` bytes (128 MiB on
 * lavapipe, less than DenseNet-BC-150's first block at batch 128). The ops split the batch into
 * groups of images that fit and bind views of the buffers per group; the BN statistics and every
 * parameter gradient are still over the whole batch.
 *
 * The tensors returned by successive layers of one block share the buffer: later layers write more
 * channels into it, so an intermediate layer's output is meant only as the next layer's input.
 * @module
 */
import { needsGrad, noGrad, record } from "../autograd.ts";
import { gpu } from "../device.ts";
import { engine, type Storage } from "../engine.ts";
import {
  bnEvalStatsLaunch,
  bnGradFinalLaunch,
  bnStatsFinalLaunch,
} from "../kernels/batch_norm_reduce.ts";
import {
  type BnVectors,
  chunkPlans,
  prefixBnApplyLaunch,
  prefixBnBackwardLaunch,
  prefixBnGradPartialLaunch,
  prefixBnStatsPartialLaunch,
  type PrefixView,
} from "../kernels/prefix_batch_norm.ts";
import { globalAvgPoolBackwardLaunch, globalAvgPoolLaunch } from "../kernels/pool_global.ts";
import { poolBackwardLaunch, poolForwardLaunch, type PoolGeom } from "../kernels/pool_window.ts";
import { stridedMapLaunch } from "../kernels/strided_map.ts";
import { empty, fmtShape, reshapeView, type Tensor, viewOf } from "../tensor.ts";
import { accumulate_ } from "./accumulate.ts";
import { conv2d, conv2dBackwardFilter, conv2dBackwardInput } from "./conv2d.ts";
import { matmulRaw } from "./matmul.ts";
import { contiguousStrides } from "./op_util.ts";

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
interface Unit {
  bn: BatchNormParams;
  weight: Tensor | null;
}

/** Gradient buffers made by this file's backward passes (safe to accumulate into in place). */
const ownGradients = new WeakSet<Storage>();

/**
 * The largest binding the dense-concatenation ops make, in bytes (null: the device's
 * `maxStorageBufferBindingSize`). Tests lower it to run the split-batch path at small sizes.
 */
export const denseConcatLimits: { maxBindingBytes: number | null } = { maxBindingBytes: null };

/** The batch split into groups of images whose tensors each fit one binding. */
interface Geometry {
  n: number;
  h: number;
  w: number;
  groups: { start: number; count: number }[];
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

function geometry(op: string, n: number, h: number, w: number, widest: number): Geometry {
  const limit = denseConcatLimits.maxBindingBytes ??
    gpu().device.limits.maxStorageBufferBindingSize;
  const perImage = h * w * widest * 4;
  // Group starts must give binding offsets aligned to the device's storage offset alignment.
  const unit = Math.max(1, gpu().storageAlign / 4);
  const align = unit / gcd(h * w, unit);
  let per = Math.min(n, Math.floor(limit / perImage));
  if (per < n) per = Math.floor(per / align) * align;
  if (per < 1) {
    throw new Error(
      `collapse: ${op}: ${align} image(s) of ${h}x${w}x${widest} floats exceed the ` +
        `${limit}-byte binding limit; use smaller images`,
    );
  }
  const groups = [];
  for (let s = 0; s < n; s += per) groups.push({ start: s, count: Math.min(per, n - s) });
  return { n, h, w, groups };
}

/** Per group, a view [count, H, W, C] of t [N, H, W, C] (views own nothing; dispose them). */
function views(t: Tensor, geo: Geometry): Tensor[] {
  const c = t.shape[3], hw = geo.h * geo.w;
  return geo.groups.map((g) => viewOf(t.storage, g.start * hw * c, [g.count, geo.h, geo.w, c]));
}

function rowsOf(geo: Geometry, k: number): number {
  return geo.groups[k].count * geo.h * geo.w;
}

function disposeAll(ts: Iterable<Tensor>): void {
  for (const t of ts) t.dispose();
}

const COPY = { name: "dense_concat_copy", expr: "a" };

/** Copies x [n, H, W, C] into channels [offset, offset + C) of buf [n, H, W, total] (or back). */
function copyChannels(buf: Tensor, offset: number, x: Tensor, intoBuffer: boolean): void {
  if (x.size === 0) return;
  const b = { t: buf, offset, strides: contiguousStrides(buf.shape) };
  const t = { t: x, offset: 0, strides: contiguousStrides(x.shape) };
  engine().dispatch(
    stridedMapLaunch(COPY, intoBuffer ? b : t, [intoBuffer ? t : b], [...x.shape]),
  );
}

function checkNhwc(op: string, x: Tensor): [number, number, number, number] {
  if (x.rank !== 4 || x.dtype !== "f32") {
    throw new Error(`collapse: ${op}: needs an f32 NHWC tensor, got ${x.describe()}`);
  }
  return x.shape as unknown as [number, number, number, number];
}

/** Validates the unit chain from `c` input channels; returns each unit's input channel count. */
function checkUnits(
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
function widestOf(units: Unit[], ...cs: number[]): number {
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
interface Saved {
  /** Per unit: [mean; invstd] of its input. */
  stats: Tensor[];
  /** Per unit 0 .. n-2, per group: its output (the next unit's input). */
  inner: Tensor[][];
}

/** Runs the units on channels [0, c) of each group of x; returns the last unit's outputs. */
function forwardUnits(
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
function backwardUnits(
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

function unitInputs(units: Unit[]): Tensor[] {
  return units.flatMap((u) => [u.bn.gamma, u.bn.beta, ...(u.weight ? [u.weight] : [])]);
}

/** The gradients of {@link backwardUnits} in {@link unitInputs} order. */
function unitGrads(units: Unit[], grads: (Tensor | null)[]): (Tensor | null)[] {
  return units.flatMap((u, j) => grads.slice(3 * j, 3 * j + (u.weight ? 3 : 2)));
}

/** One tensor [N, ...] from per-group parts [count, ...] (copies, no binding of the whole). */
function assemble(parts: Tensor[], geo: Geometry, shape: number[]): Tensor {
  if (parts.length === 1) return parts[0];
  const out = empty(shape, "f32", "preact_out");
  const perImage = out.size / geo.n;
  parts.forEach((t, k) =>
    engine().copy(t.storage, out.storage, t.size * 4, 0, geo.groups[k].start * perImage * 4)
  );
  disposeAll(parts);
  return out;
}

/** Per-group copies [count, ...] of t [N, ...] (a view when there is one group). */
function split(t: Tensor, geo: Geometry): Tensor[] {
  if (geo.groups.length === 1) return [reshapeView(t, t.shape)];
  const perImage = t.size / geo.n;
  return geo.groups.map((g) => {
    const part = empty([g.count, ...t.shape.slice(1)], "f32", "preact_part");
    engine().copy(t.storage, part.storage, part.size * 4, g.start * perImage * 4, 0);
    return part;
  });
}

/** The 2x2 / stride-2 average pooling (floor) of y [n, H, W, C]. */
function poolGeom(y: Tensor): PoolGeom {
  const [n, h, w, c] = y.shape;
  const oh = Math.floor(h / 2), ow = Math.floor(w / 2);
  return { n, h, w, c, oh, ow, kh: 2, kw: 2, sh: 2, sw: 2, ph: 0, pw: 0 };
}

function disposeSaved(s: Saved): void {
  disposeAll([...s.stats, ...s.inner.flat()]);
}

/**
 * A dense block's feature buffer: a new [N, H, W, totalChannels] tensor holding x [N, H, W, C0] in
 * channels [0, C0), the rest to be written by {@link denseBlockLayer}. Differentiable in x.
 *
 * @example
 * ```ts ignore
 * let state = denseBlockBuffer(x, 24 + 24 * 12); // x: [N, 32, 32, 24]
 * ```
 */
export function denseBlockBuffer(x: Tensor, totalChannels: number): Tensor {
  const op = "denseBlockBuffer";
  const [n, h, w, c0] = checkNhwc(op, x);
  if (!Number.isInteger(totalChannels) || totalChannels < c0) {
    throw new Error(
      `collapse: ${op}: totalChannels ${totalChannels} must be an integer >= the ` +
        `${c0} channels of ${x.describe()}`,
    );
  }
  const geo = geometry(op, n, h, w, totalChannels);
  const buf = empty([n, h, w, totalChannels], "f32", "dense_block");
  const copy = (big: Tensor, small: Tensor, into: boolean) => {
    const bv = views(big, geo), sv = views(small, geo);
    bv.forEach((b, k) => copyChannels(b, 0, sv[k], into));
    disposeAll([...bv, ...sv]);
  };
  copy(buf, x, true);
  return record(buf, op, [x], (dy) => {
    const dx = empty(x.shape, "f32", "dense_block_dx");
    copy(dy, dx, false);
    return [dx];
  });
}

/**
 * One dense layer: reads channels [0, channels) of the block buffer `state` [N, H, W, total] in
 * place, runs the pre-activation conv `units` (BN -> ReLU -> conv each; DenseNet-BC's bottleneck is
 * a 1x1 unit to 4 * growth channels then a 3x3 unit to growth channels) and writes the last unit's
 * output into channels [channels, channels + growth) of the same buffer. Returns the buffer as a new
 * tensor (the next layer's input). Training mode uses batch statistics and updates the running
 * ones. Differentiable in `state` and every gamma, beta and weight (the backward accumulates into
 * one gradient buffer per block, see the module notes).
 *
 * @example
 * ```ts ignore
 * state = denseBlockLayer(state, 24, [
 *   { bn: bn1, weight: w1 }, // w1 [1, 1, 24, 48]
 *   { bn: bn2, weight: w2 }, // w2 [3, 3, 48, 12]
 * ], true);
 * ```
 */
export function denseBlockLayer(
  state: Tensor,
  channels: number,
  units: PreactConvUnit[],
  training: boolean,
): Tensor {
  const op = "denseBlockLayer";
  const [n, h, w, total] = checkNhwc(op, state);
  const ins = checkUnits(op, units, channels, n * h * w, training);
  const growth = units[units.length - 1].weight.shape[3];
  if (!Number.isInteger(channels) || channels < 1 || channels + growth > total) {
    throw new Error(
      `collapse: ${op}: ${channels} filled channels + ${growth} new ones do not fit ${
        fmtShape(state.shape)
      }`,
    );
  }
  const geo = geometry(op, n, h, w, widestOf(units, total));
  const prefix = (t: Tensor) => views(t, geo).map((v) => ({ t: v, ld: total }));
  const xs = prefix(state);
  const { ys, saved } = forwardUnits(xs, geo, ins, units, training);
  ys.forEach((y, k) => copyChannels(xs[k].t, channels, y, true));
  disposeAll([...ys, ...xs.map((x) => x.t)]);
  const out = reshapeView(state, state.shape);
  record(out, op, [state, ...unitInputs(units)], (dy) => {
    let buf = dy;
    if (!ownGradients.has(dy.storage)) {
      buf = empty(dy.shape, "f32", "dense_block_grad");
      engine().copy(dy.storage, buf.storage, dy.size * 4);
      ownGradients.add(buf.storage);
    }
    const bufs = prefix(buf);
    const slices = geo.groups.map((g, k) => {
      const s = empty([g.count, h, w, growth], "f32", "dense_layer_dy");
      copyChannels(bufs[k].t, channels, s, false);
      return s;
    });
    const wantX = needsGrad(state);
    const xs = prefix(state);
    const grads = backwardUnits(
      xs,
      geo,
      ins,
      units,
      saved,
      slices,
      wantX ? bufs : null,
      true,
      training,
    );
    disposeAll([...slices, ...bufs.map((b) => b.t), ...xs.map((x) => x.t)]);
    const dState = wantX ? reshapeView(buf, buf.shape) : null;
    if (buf !== dy) buf.dispose();
    return [dState, ...grads];
  });
  if (!out.node) disposeSaved(saved);
  return out;
}

/** Options of {@link preactConv}. */
export interface PreactConvOptions {
  /**
   * Follow the chain with 2x2 average pooling, stride 2 (floor, as PyTorch's `F.avg_pool2d(y, 2)`),
   * fused per image group: a DenseNet transition, which then keeps nothing of the conv output.
   */
  avgPool2?: boolean;
}

/** The chain on groups of x; returns the output [N, ...] and records the backward pass. */
function runChain(
  op: string,
  x: Tensor,
  units: Unit[],
  training: boolean,
  pool: boolean,
): Tensor {
  const [n, h, w, c] = checkNhwc(op, x);
  const ins = checkUnits(op, units, c, n * h * w, training);
  if (pool && (h < 2 || w < 2)) {
    throw new Error(`collapse: ${op}: cannot pool ${x.describe()} by 2`);
  }
  const geo = geometry(op, n, h, w, widestOf(units, c));
  const prefix = (t: Tensor) => views(t, geo).map((v) => ({ t: v, ld: t.shape[3] }));
  const xs = prefix(x);
  const { ys, saved } = forwardUnits(xs, geo, ins, units, training);
  disposeAll(xs.map((v) => v.t));
  const outs = pool
    ? ys.map((t) => {
      const g = poolGeom(t);
      const p = empty([g.n, g.oh, g.ow, g.c], "f32", "preact_pool");
      engine().dispatch(poolForwardLaunch("avg", t, p, null, g));
      t.dispose();
      return p;
    })
    : ys;
  const y = assemble(outs, geo, [n, ...outs[0].shape.slice(1)]);
  record(y, op, [x, ...unitInputs(units)], (dy) => {
    const dx = needsGrad(x) ? empty(x.shape, "f32", "preact_dx") : null;
    let dys = split(dy, geo);
    if (pool) {
      dys = dys.map((d) => {
        const pre = empty([d.shape[0], h, w, d.shape[3]], "f32", "preact_pool_grad");
        engine().dispatch(poolBackwardLaunch("avg", d, null, pre, poolGeom(pre)));
        d.dispose();
        return pre;
      });
    }
    const xs = prefix(x), dxs = dx ? prefix(dx) : null;
    const grads = backwardUnits(xs, geo, ins, units, saved, dys, dxs, false, training);
    disposeAll([...dys, ...xs.map((v) => v.t), ...(dxs ?? []).map((v) => v.t)]);
    if (dx) ownGradients.add(dx.storage);
    return [dx, ...unitGrads(units, grads)];
  });
  if (!y.node) disposeSaved(saved);
  return y;
}

/**
 * A chain of pre-activation conv units on a whole tensor x [N, H, W, C] (a DenseNet transition's
 * BN -> ReLU -> conv1x1, with `avgPool2` its pooling too), with the same recomputation: nothing of
 * x's size is kept for the backward pass. Returns the last unit's output [N, H, W, Cout] (pooled:
 * [N, floor(H / 2), floor(W / 2), Cout]). Differentiable in x and every gamma, beta and weight.
 *
 * @example
 * ```ts ignore
 * const z = preactConv(x, [{ bn, weight: w }], true, { avgPool2: true }); // w [1, 1, C, C / 2]
 * ```
 */
export function preactConv(
  x: Tensor,
  units: PreactConvUnit[],
  training: boolean,
  options: PreactConvOptions = {},
): Tensor {
  return runChain("preactConv", x, units, training, !!options.avgPool2);
}

/**
 * BN -> ReLU -> global average pooling of x [N, H, W, C] to [N, C] (DenseNet's head: `bn1`, ReLU,
 * `F.avg_pool2d(out, H)`), with the BN-ReLU output recomputed in the backward pass and the batch
 * split into image groups under the binding limit. Differentiable in x, gamma and beta.
 *
 * @example
 * ```ts ignore
 * const features = preactGlobalPool(x, bn, true); // [N, C]
 * ```
 */
export function preactGlobalPool(x: Tensor, bn: BatchNormParams, training: boolean): Tensor {
  return runChain("preactGlobalPool", x, [{ bn, weight: null }], training, false);
}
