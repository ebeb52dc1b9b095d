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
 * The tensors returned by successive layers of one block share the buffer: later layers write more
 * channels into it, so an intermediate layer's output is meant only as the next layer's input.
 * @module
 */
import { needsGrad, noGrad, record } from "../autograd.ts";
import { engine, type Storage } from "../engine.ts";
import {
  bnChunks,
  bnEvalStatsLaunch,
  bnGradFinalLaunch,
  bnStatsFinalLaunch,
} from "../kernels/batch_norm_reduce.ts";
import {
  type BnVectors,
  prefixBnApplyLaunch,
  prefixBnBackwardLaunch,
  prefixBnGradPartialLaunch,
  prefixBnStatsPartialLaunch,
  type PrefixView,
} from "../kernels/prefix_batch_norm.ts";
import { stridedMapLaunch } from "../kernels/strided_map.ts";
import { empty, fmtShape, reshapeView, type Tensor } from "../tensor.ts";
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

/** Gradient buffers made by this file's backward passes (safe to accumulate into in place). */
const ownGradients = new WeakSet<Storage>();

const COPY = { name: "dense_concat_copy", expr: "a" };

/** Copies x [N, H, W, C] into channels [offset, offset + C) of buf [N, H, W, total] (or back). */
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
  units: PreactConvUnit[],
  c: number,
  rows: number,
  training: boolean,
) {
  if (!units.length) throw new Error(`collapse: ${op}: no units`);
  if (training && rows < 2) {
    throw new Error(`collapse: ${op}: training BatchNorm needs more than one value per channel`);
  }
  const ins: number[] = [];
  let cin = c;
  for (const [j, u] of units.entries()) {
    const w = u.weight;
    const [kh, kw, wc, cout] = w.shape;
    if (w.rank !== 4 || wc !== cin || kh !== kw || kh % 2 !== 1 || cout < 1) {
      throw new Error(
        `collapse: ${op}: unit ${j}: kernel ${w.describe()} should be [k, k, ${cin}, Cout] ` +
          "with an odd k",
      );
    }
    for (const [name, t] of Object.entries(u.bn)) {
      if (typeof t === "number") continue;
      if (t.dtype !== "f32" || t.size !== cin) {
        throw new Error(
          `collapse: ${op}: unit ${j}: BN ${name} ${t.describe()} does not match ${cin} channels`,
        );
      }
    }
    ins.push(cin);
    cin = cout;
  }
  return ins;
}

/** The BN statistics [mean; invstd] of channels [0, c) of x (training: of the batch, updating the running ones). */
function bnStats(x: PrefixView, rows: number, c: number, bn: BatchNormParams, training: boolean) {
  const e = engine();
  const stats = empty([2 * c], "f32", "preact_bn_stats");
  const eps = bn.eps ?? 1e-5;
  if (training) {
    const part = empty([2 * bnChunks(rows).chunks * c], "f32", "preact_bn_partial");
    e.dispatch(prefixBnStatsPartialLaunch(x, part, rows, c));
    e.dispatch(
      bnStatsFinalLaunch(
        x.t,
        part,
        stats,
        bn.runningMean,
        bn.runningVar,
        rows,
        c,
        bn.momentum ?? 0.1,
        eps,
      ),
    );
    part.dispose();
  } else {
    e.dispatch(bnEvalStatsLaunch(bn.runningMean, bn.runningVar, stats, c, eps));
  }
  return stats;
}

/** relu(bn(x)) of channels [0, c) as a new contiguous [N, H, W, c] tensor. */
function bnRelu(x: PrefixView, nhw: number[], c: number, v: BnVectors): Tensor {
  const a = empty([nhw[0], nhw[1], nhw[2], c], "f32", "preact_bn_relu");
  engine().dispatch(prefixBnApplyLaunch(x, v, a, nhw[0] * nhw[1] * nhw[2], c, true));
  return a;
}

function pad(w: Tensor): number {
  return (w.shape[0] - 1) / 2;
}

/** A [.., C] view as [rows, C] (caller disposes). */
function rows2d(t: Tensor): Tensor {
  return reshapeView(t, [t.size / t.shape[t.rank - 1], t.shape[t.rank - 1]]);
}

/** conv(a, w) with "same" padding; 1x1 kernels as one dense GEMM. */
function convForward(a: Tensor, w: Tensor): Tensor {
  if (w.shape[0] !== 1) return noGrad(() => conv2d(a, w, { padding: pad(w) }));
  const a2 = rows2d(a), w2 = rows2d(w);
  const y2 = matmulRaw(a2, w2);
  const y = reshapeView(y2, [a.shape[0], a.shape[1], a.shape[2], w.shape[3]]);
  for (const t of [a2, w2, y2]) t.dispose();
  return y;
}

/** dL/dw (when `wantW`) and dL/da of y = conv(a, w). */
function convBackward(a: Tensor, dy: Tensor, w: Tensor, wantW: boolean) {
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
  for (const t of [a2, w2, d2, g]) t.dispose();
  return { dw, da };
}

/** What the forward of a unit chain keeps for its backward. */
interface Saved {
  /** Per unit: [mean; invstd] of its input. */
  stats: Tensor[];
  /** The outputs of units 0 .. n-2 (the inputs of units 1 .. n-1). */
  inner: Tensor[];
}

/** Runs the units on channels [0, c) of x; returns the last unit's output (contiguous). */
function forwardUnits(
  x: PrefixView,
  nhw: number[],
  ins: number[],
  units: PreactConvUnit[],
  training: boolean,
): { y: Tensor; saved: Saved } {
  const rows = nhw[0] * nhw[1] * nhw[2];
  const saved: Saved = { stats: [], inner: [] };
  let cur = x;
  let y: Tensor | null = null;
  units.forEach((u, j) => {
    const stats = bnStats(cur, rows, ins[j], u.bn, training);
    saved.stats.push(stats);
    const a = bnRelu(cur, nhw, ins[j], { stats, gamma: u.bn.gamma, beta: u.bn.beta });
    y = convForward(a, u.weight);
    a.dispose();
    if (j < units.length - 1) {
      saved.inner.push(y);
      cur = { t: y, ld: y.shape[3] };
    }
  });
  return { y: y!, saved };
}

/**
 * Backward of {@link forwardUnits}: from dL/d(last output) `dy`, the gradients
 * [gamma, beta, weight] of every unit (null where not needed) and dL/dx of channels [0, c) written
 * or accumulated into `dx` (skipped when null).
 */
function backwardUnits(
  x: PrefixView,
  nhw: number[],
  ins: number[],
  units: PreactConvUnit[],
  saved: Saved,
  dy: Tensor,
  dx: PrefixView | null,
  accumulate: boolean,
  training: boolean,
): (Tensor | null)[] {
  const e = engine();
  const rows = nhw[0] * nhw[1] * nhw[2];
  const grads: (Tensor | null)[] = new Array(3 * units.length).fill(null);
  let d = dy;
  for (let j = units.length - 1; j >= 0; j--) {
    const u = units[j], c = ins[j];
    const inp: PrefixView = j === 0 ? x : { t: saved.inner[j - 1], ld: c };
    const v: BnVectors = { stats: saved.stats[j], gamma: u.bn.gamma, beta: u.bn.beta };
    const target: PrefixView | null = j > 0
      ? { t: empty([nhw[0], nhw[1], nhw[2], c], "f32", "preact_grad"), ld: c }
      : dx;
    const wantBn = needsGrad(u.bn.gamma) || needsGrad(u.bn.beta);
    const a = bnRelu(inp, nhw, c, v); // recomputed: the forward kept nothing of size c
    const { dw, da } = convBackward(a, d, u.weight, needsGrad(u.weight));
    a.dispose();
    if (d !== dy) d.dispose();
    grads[3 * j + 2] = dw;
    if (wantBn || (target && training)) {
      const part = empty([2 * bnChunks(rows).chunks * c], "f32", "preact_bn_grad_partial");
      const dgamma = empty([c], "f32", "preact_dgamma"), dbeta = empty([c], "f32", "preact_dbeta");
      e.dispatch(prefixBnGradPartialLaunch(inp, da, v, part, rows, c, true));
      e.dispatch(bnGradFinalLaunch(part, dgamma, dbeta, rows, c));
      part.dispose();
      if (target) {
        e.dispatch(
          prefixBnBackwardLaunch(inp, da, v, { sumDyXhat: dgamma, sumDy: dbeta }, target, rows, c, {
            training,
            relu: true,
            accumulate: j === 0 && accumulate,
          }),
        );
      }
      grads[3 * j] = needsGrad(u.bn.gamma) ? dgamma : (dgamma.dispose(), null);
      grads[3 * j + 1] = needsGrad(u.bn.beta) ? dbeta : (dbeta.dispose(), null);
    } else if (target) {
      // Eval-mode input gradient without BN parameter gradients: the sums are not read.
      e.dispatch(
        prefixBnBackwardLaunch(inp, da, v, null, target, rows, c, {
          training: false,
          relu: true,
          accumulate: j === 0 && accumulate,
        }),
      );
    }
    da.dispose();
    if (j > 0) d = target!.t;
  }
  return grads;
}

function unitInputs(units: PreactConvUnit[]): Tensor[] {
  return units.flatMap((u) => [u.bn.gamma, u.bn.beta, u.weight]);
}

function disposeSaved(s: Saved): void {
  for (const t of [...s.stats, ...s.inner]) t.dispose();
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
  const [n, h, w, c0] = checkNhwc("denseBlockBuffer", x);
  if (!Number.isInteger(totalChannels) || totalChannels < c0) {
    throw new Error(
      `collapse: denseBlockBuffer: totalChannels ${totalChannels} must be an integer >= the ` +
        `${c0} channels of ${x.describe()}`,
    );
  }
  const buf = empty([n, h, w, totalChannels], "f32", "dense_block");
  copyChannels(buf, 0, x, true);
  return record(buf, "denseBlockBuffer", [x], (dy) => {
    const dx = empty(x.shape, "f32", "dense_block_dx");
    copyChannels(dy, 0, dx, false);
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
  const nhw = [n, h, w];
  const ins = checkUnits(op, units, channels, n * h * w, training);
  const growth = units[units.length - 1].weight.shape[3];
  if (!Number.isInteger(channels) || channels < 1 || channels + growth > total) {
    throw new Error(
      `collapse: ${op}: ${channels} filled channels + ${growth} new ones do not fit ${
        fmtShape(state.shape)
      }`,
    );
  }
  const x: PrefixView = { t: state, ld: total };
  const { y, saved } = forwardUnits(x, nhw, ins, units, training);
  copyChannels(state, channels, y, true);
  y.dispose();
  const out = reshapeView(state, state.shape);
  record(out, op, [state, ...unitInputs(units)], (dy) => {
    let buf = dy;
    if (!ownGradients.has(dy.storage)) {
      buf = empty(dy.shape, "f32", "dense_block_grad");
      engine().copy(dy.storage, buf.storage, dy.size * 4);
      ownGradients.add(buf.storage);
    }
    const dSlice = empty([n, h, w, growth], "f32", "dense_layer_dy");
    copyChannels(buf, channels, dSlice, false);
    const wantX = needsGrad(state);
    const grads = backwardUnits(
      x,
      nhw,
      ins,
      units,
      saved,
      dSlice,
      wantX ? { t: buf, ld: total } : null,
      true,
      training,
    );
    dSlice.dispose();
    const dState = wantX ? reshapeView(buf, buf.shape) : null;
    if (buf !== dy) buf.dispose();
    return [dState, ...grads];
  });
  if (!out.node) disposeSaved(saved);
  return out;
}

/**
 * A chain of pre-activation conv units on a whole tensor x [N, H, W, C] (a DenseNet transition's
 * BN -> ReLU -> conv1x1), with the same recomputation: nothing of x's size is kept for the
 * backward pass. Returns the last unit's output [N, H, W, Cout]. Differentiable in x and every
 * gamma, beta and weight.
 *
 * @example
 * ```ts ignore
 * const z = preactConv(x, [{ bn, weight: w }], true); // w [1, 1, C, C / 2]
 * ```
 */
export function preactConv(x: Tensor, units: PreactConvUnit[], training: boolean): Tensor {
  const op = "preactConv";
  const [n, h, w, c] = checkNhwc(op, x);
  const nhw = [n, h, w];
  const ins = checkUnits(op, units, c, n * h * w, training);
  const xv: PrefixView = { t: x, ld: c };
  const { y, saved } = forwardUnits(xv, nhw, ins, units, training);
  record(y, op, [x, ...unitInputs(units)], (dy) => {
    const wantX = needsGrad(x);
    const dx = wantX ? empty(x.shape, "f32", "preact_dx") : null;
    const grads = backwardUnits(
      xv,
      nhw,
      ins,
      units,
      saved,
      dy,
      dx && { t: dx, ld: c },
      false,
      training,
    );
    if (dx) ownGradients.add(dx.storage);
    return [dx, ...grads];
  });
  if (!y.node) disposeSaved(saved);
  return y;
}
