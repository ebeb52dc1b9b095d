/**
 * 2-D convolution (NHWC activations, HWIO weights, dilation 1, groups 1) as implicit GEMMs:
 * forward (M = N*OH*OW, N = Cout, K = KH*KW*Cin, fused bias + ReLU epilogue), backward-data as a
 * transposed implicit GEMM (M = N*H*W, N = Cin, K = KH*KW*Cout; strided convs: a dense GEMM into
 * tap columns plus col2im) and backward-weight as a GEMM over batch x pixels with split-K
 * (M = KH*KW*Cin, N = Cout, K = N*OH*OW) plus a reduction. Large convs bake their geometry into the
 * kernel source (kernels/conv2d_operands.ts bakeConv).
 * @module
 */
import { needsGrad, record } from "../autograd.ts";
import { engine } from "../engine.ts";
import {
  bakeWhenLarge,
  convBackwardDataA,
  convBackwardFilterA,
  convBackwardFilterWindowA,
  convForwardA,
  type ConvGeom,
  filterWindowFits,
} from "../kernels/conv2d_operands.ts";
import { reluGradLaunch } from "../kernels/conv2d_relu_grad.ts";
import { convWeightTLaunch } from "../kernels/conv2d_wt.ts";
import { col2imLaunch } from "../kernels/conv2d_col2im.ts";
import {
  parityA,
  parityB,
  parityInterleaveLaunch,
  parityKLimit,
  parityMaxTaps,
  parityRows,
} from "../kernels/conv2d_parity.ts";
import { denseA, denseB } from "../kernels/matmul_operands.ts";
import { colSumLaunch } from "../kernels/matmul_reduce.ts";
import type { GemmOperand } from "../kernels/matmul_gemm.ts";
import type { GemmVariant } from "../kernels/tuning.ts";
import { empty, fmtShape, type Tensor } from "../tensor.ts";
import { runGemm } from "./gemm_run.ts";

/** Options of {@link conv2d} and its backward functions. */
export interface Conv2dOptions {
  /** Stride (rows, cols); default 1. */
  stride?: number | [number, number];
  /** Zero padding (rows, cols), "same" (TensorFlow's: output ceil(H / stride)) or "valid"; default 0. */
  padding?: number | [number, number] | "same" | "valid";
  /** Per-output-channel bias [Cout], added in the epilogue. */
  bias?: Tensor;
  /** Fused activation after the bias. */
  activation?: "relu" | "linear";
  /** Force a GEMM variant (tests, benches); default from kernels/tuning.ts. */
  variant?: GemmVariant;
  /** Register-blocked tile override (benches). */
  tm?: number;
  /** Register-blocked tile override of the other tile side (benches). */
  tn?: number;
  /**
   * Bake the geometry into the kernel source as constants (tests force it; default: for problems of
   * at least `TUNING.bakeWork` multiply-adds, where it pays for one pipeline per shape).
   */
  bake?: boolean;
}

const ZERO4: number[] = [0, 0, 0, 0];

function pair(op: string, v: number | [number, number], what: string, min: number) {
  const [a, b] = typeof v === "number" ? [v, v] : v;
  if (!Number.isInteger(a) || !Number.isInteger(b) || a < min || b < min) {
    throw new Error(
      `collapse: ${op}: ${what} must be integers >= ${min}, got ${JSON.stringify(v)}`,
    );
  }
  return [a, b];
}

/** Output size and padding of a conv, validated. */
export function convGeometry(
  op: string,
  xShape: readonly number[],
  wShape: readonly number[],
  opts: Conv2dOptions,
): ConvGeom {
  if (xShape.length !== 4 || wShape.length !== 4) {
    throw new Error(
      `collapse: ${op}: needs x [N, H, W, Cin] and w [KH, KW, Cin, Cout], got x ${
        fmtShape(xShape)
      } and w ${fmtShape(wShape)}`,
    );
  }
  const [N, H, W, Cin] = xShape;
  const [KH, KW, wCin, Cout] = wShape;
  if (wCin !== Cin) {
    throw new Error(
      `collapse: ${op}: x ${fmtShape(xShape)} has ${Cin} channels but w ${
        fmtShape(wShape)
      } expects ${wCin}`,
    );
  }
  if (KH < 1 || KW < 1 || Cout < 1 || Cin < 1) {
    throw new Error(`collapse: ${op}: empty kernel w ${fmtShape(wShape)}`);
  }
  const [sh, sw] = pair(op, opts.stride ?? 1, "stride", 1);
  let padT: number, padL: number, OH: number, OW: number;
  const pad = opts.padding ?? 0;
  if (pad === "same") {
    OH = Math.ceil(H / sh);
    OW = Math.ceil(W / sw);
    padT = Math.floor(Math.max((OH - 1) * sh + KH - H, 0) / 2);
    padL = Math.floor(Math.max((OW - 1) * sw + KW - W, 0) / 2);
  } else {
    const [ph, pw] = pad === "valid" ? [0, 0] : pair(op, pad, "padding", 0);
    padT = ph;
    padL = pw;
    OH = Math.floor((H + 2 * ph - KH) / sh) + 1;
    OW = Math.floor((W + 2 * pw - KW) / sw) + 1;
  }
  if (OH < 1 || OW < 1) {
    throw new Error(
      `collapse: ${op}: kernel ${KH}x${KW} does not fit input ${H}x${W} with padding ${
        JSON.stringify(pad)
      }`,
    );
  }
  return { N, H, W, Cin, Cout, OH, OW, KH, KW, sh, sw, padT, padL };
}

/** The A operand, baked with the geometry when that pays (see {@link Conv2dOptions.bake}). */
function operandA(a: GemmOperand, g: ConvGeom, opts: Conv2dOptions): GemmOperand {
  return bakeWhenLarge(a, g, opts.bake);
}

/** Refuses a `dy` whose shape is not the conv's output shape [N, OH, OW, Cout]. */
function checkOutputGrad(op: string, dy: Tensor, g: ConvGeom): void {
  const want = [g.N, g.OH, g.OW, g.Cout];
  if (dy.rank !== 4 || dy.shape.some((d, i) => d !== want[i])) {
    throw new Error(`collapse: ${op}: dy ${dy.describe()} should be ${fmtShape(want)}`);
  }
}

function checkF32(op: string, ts: Tensor[]): void {
  for (const t of ts) {
    if (t.dtype !== "f32") {
      throw new Error(`collapse: ${op}: needs f32 tensors, got ${t.describe()}`);
    }
  }
}

function forwardRaw(x: Tensor, w: Tensor, g: ConvGeom, opts: Conv2dOptions): Tensor {
  const out = empty([g.N, g.OH, g.OW, g.Cout], "f32", "conv2d");
  const K = g.KH * g.KW * g.Cin;
  runGemm({
    name: "conv2d",
    a: operandA(convForwardA(g, g.Cin % 4 === 0), g, opts),
    b: denseB(false, g.Cout % 4 === 0, ZERO4),
    aT: x,
    bT: w,
    out,
    bias: opts.bias,
    relu: opts.activation === "relu",
    M: g.N * g.OH * g.OW,
    N: g.Cout,
    K,
    batch: 1,
    variant: opts.variant,
    tm: opts.tm,
    tn: opts.tn,
  });
  return out;
}

/**
 * dL/dx of a conv: the transposed implicit GEMM of dy [N, OH, OW, Cout] with w [KH, KW, Cin, Cout]
 * (read through a [KH, KW, Cout, Cin] copy). Returns [N, H, W, Cin] = `xShape`.
 */
export function conv2dBackwardInput(
  dy: Tensor,
  w: Tensor,
  xShape: readonly number[],
  opts: Conv2dOptions = {},
): Tensor {
  const op = "conv2dBackwardInput";
  checkF32(op, [dy, w]);
  const g = convGeometry(op, xShape, w.shape, opts);
  checkOutputGrad(op, dy, g);
  const e = engine();
  if (g.sh > 1 || g.sw > 1) {
    return g.Cout % 4 === 0 && g.Cin % 4 === 0
      ? backwardInputParity(dy, w, g, xShape, opts)
      : backwardInputCol2im(dy, w, g, xShape, opts);
  }
  const wt = empty([g.KH, g.KW, g.Cout, g.Cin], "f32", "conv2d_wt");
  e.dispatch(convWeightTLaunch(w, wt, g.Cin, g.Cout));
  const dx = empty(xShape, "f32", "conv2d_dx");
  runGemm({
    name: "conv2d_backward_input",
    a: operandA(convBackwardDataA(g, g.Cout % 4 === 0, g.sh === 1 && g.sw === 1), g, opts),
    b: denseB(false, g.Cin % 4 === 0, ZERO4),
    aT: dy,
    bT: wt,
    out: dx,
    M: g.N * g.H * g.W,
    N: g.Cin,
    K: g.KH * g.KW * g.Cout,
    batch: 1,
    variant: opts.variant,
    tm: opts.tm,
    tn: opts.tn,
  });
  wt.dispose();
  return dx;
}

/**
 * Strided backward-data as one GEMM per output parity class (kernels/conv2d_parity.ts), then the
 * interleave into dx.
 */
function backwardInputParity(
  dy: Tensor,
  w: Tensor,
  g: ConvGeom,
  xShape: readonly number[],
  opts: Conv2dOptions,
): Tensor {
  const { M, classes } = parityRows(g);
  const tmp = empty([classes, M, g.Cin], "f32", "conv2d_parity");
  runGemm({
    name: "conv2d_backward_input_parity",
    a: parityA(g),
    b: parityB(g),
    aT: dy,
    bT: w,
    out: tmp,
    M,
    N: g.Cin,
    K: parityMaxTaps(g) * g.Cout,
    batch: classes,
    kLimit: parityKLimit(g),
    variant: opts.variant,
    tm: opts.tm,
    tn: opts.tn,
  });
  const dx = empty(xShape, "f32", "conv2d_dx");
  engine().dispatch(parityInterleaveLaunch(tmp, dx, g));
  tmp.dispose();
  return dx;
}

/**
 * Strided backward-data as dcol = dy [N*OH*OW, Cout] x w^T [Cout, KH*KW*Cin] (a dense GEMM), then
 * col2im: the implicit transposed GEMM would spend (sh*sw - 1)/(sh*sw) of its work on taps that do
 * not divide the stride.
 */
function backwardInputCol2im(
  dy: Tensor,
  w: Tensor,
  g: ConvGeom,
  xShape: readonly number[],
  opts: Conv2dOptions,
): Tensor {
  const M = g.N * g.OH * g.OW, N = g.KH * g.KW * g.Cin;
  const dcol = empty([M, N], "f32", "conv2d_dcol");
  runGemm({
    name: "conv2d_backward_input_cols",
    a: denseA(false, g.Cout % 4 === 0, ZERO4),
    b: denseB(true, g.Cout % 4 === 0, ZERO4),
    aT: dy,
    bT: w,
    out: dcol,
    M,
    N,
    K: g.Cout,
    batch: 1,
    variant: opts.variant,
    tm: opts.tm,
    tn: opts.tn,
  });
  const dx = empty(xShape, "f32", "conv2d_dx");
  engine().dispatch(col2imLaunch(dcol, dx, g));
  dcol.dispose();
  return dx;
}

/**
 * dL/dw of a conv: GEMM of the transposed im2col of x [N, H, W, Cin] with dy [N*OH*OW, Cout],
 * split over batch x pixels with a reduction pass. Returns [KH, KW, Cin, Cout] = `wShape`.
 */
export function conv2dBackwardFilter(
  x: Tensor,
  dy: Tensor,
  wShape: readonly number[],
  opts: Conv2dOptions = {},
): Tensor {
  const op = "conv2dBackwardFilter";
  checkF32(op, [x, dy]);
  const g = convGeometry(op, x.shape, wShape, opts);
  checkOutputGrad(op, dy, g);
  const dw = empty(wShape, "f32", "conv2d_dw");
  const M = g.KH * g.KW * g.Cin;
  // CPU kernels: rows grouped by tap row and channel quad so the taps share loads.
  const windowed = filterWindowFits(g, opts.variant, opts.tm);
  runGemm({
    name: "conv2d_backward_filter",
    a: operandA(
      windowed ? convBackwardFilterWindowA(g) : convBackwardFilterA(g, g.Cin % 4 === 0),
      g,
      opts,
    ),
    b: denseB(false, g.Cout % 4 === 0, ZERO4),
    aT: x,
    bT: dy,
    out: dw,
    M,
    N: g.Cout,
    K: g.N * g.OH * g.OW,
    batch: 1,
    variant: windowed ? "regblock" : opts.variant,
    tm: opts.tm,
    tn: opts.tn,
  });
  return dw;
}

/** Sum of dy [..., C] over all but the last axis (the bias gradient), in two passes. */
export function biasGrad(dy: Tensor): Tensor {
  const C = dy.shape[dy.rank - 1];
  const R = dy.size / C;
  const e = engine();
  const out = empty([C], "f32", "conv2d_db");
  const chunk = 256;
  if (R <= 2 * chunk) {
    e.dispatch(colSumLaunch(dy, out, R, C, Math.max(R, 1)));
    return out;
  }
  const S = Math.ceil(R / chunk);
  const part = empty([S, C], "f32", "conv2d_db_partial");
  e.dispatch(colSumLaunch(dy, part, R, C, chunk));
  e.dispatch(colSumLaunch(part, out, S, C, S));
  part.dispose();
  return out;
}

/**
 * 2-D convolution: x [N, H, W, Cin] (NHWC) with w [KH, KW, Cin, Cout] (HWIO) -> [N, OH, OW, Cout],
 * with stride, zero padding (or "same"/"valid"), an optional bias [Cout] and fused ReLU.
 * Differentiable in x, w and bias.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { conv2d, initDevice, ones, tensor } from "@collapse/collapse/gpu";
 *
 * await initDevice();
 * const x = ones([1, 4, 4, 1]); // one 4x4 image with one channel (NHWC)
 * const w = ones([3, 3, 1, 2]); // 3x3 kernel, 1 -> 2 channels (HWIO)
 * const y = conv2d(x, w, { padding: 1, bias: tensor([0, -5], [2]), activation: "relu" });
 * assertEquals(y.shape, [1, 4, 4, 2]);
 * // Top-left pixel: 4 ones under the window (and relu(4 - 5) = 0), its right neighbour 6 (and 1).
 * assertEquals((await y.array()).slice(0, 4), [4, 0, 6, 1]);
 * ```
 */
export function conv2d(x: Tensor, w: Tensor, opts: Conv2dOptions = {}): Tensor {
  const op = "conv2d";
  const bias = opts.bias;
  checkF32(op, bias ? [x, w, bias] : [x, w]);
  const g = convGeometry(op, x.shape, w.shape, opts);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== g.Cout)) {
    throw new Error(`collapse: ${op}: bias ${bias.describe()} should be [${g.Cout}]`);
  }
  if (opts.activation && opts.activation !== "relu" && opts.activation !== "linear") {
    throw new Error(`collapse: ${op}: unknown activation ${JSON.stringify(opts.activation)}`);
  }
  const out = forwardRaw(x, w, g, opts);
  const relu = opts.activation === "relu";
  const xShape = x.shape;
  const wShape = w.shape;
  return record(out, op, [x, w, bias ?? null], (dy) => {
    let dz = dy;
    if (relu) {
      dz = empty(dy.shape, "f32", "conv2d_relu_grad");
      engine().dispatch(reluGradLaunch(dy, out, dz));
    }
    const dx = needsGrad(x) ? conv2dBackwardInput(dz, w, xShape, opts) : null;
    const dw = needsGrad(w) ? conv2dBackwardFilter(x, dz, wShape, opts) : null;
    const db = bias && needsGrad(bias) ? biasGrad(dz) : null;
    if (dz !== dy) dz.dispose();
    return [dx, dw, db];
  });
}
