/**
 * Fused ResNet ops: the CIFAR basic block relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))
 * ({@link fusedBasicBlock}) and the stem relu(bn(conv(x))) ({@link fusedConvBnRelu}), 3x3 convs
 * with padding 1 and no bias, training-mode BatchNorm (batch statistics, running statistics
 * updated in place as PyTorch does) or eval-mode (running statistics), differentiable in x, the
 * conv weights and the BatchNorm gammas and betas.
 *
 * The same maths as conv2d + batchNorm + relu + add, in fewer and fatter kernels: a conv's GEMM
 * epilogue writes per-tile BatchNorm statistics, the next kernel's workgroups combine them
 * (bn_coef.ts) and apply the BatchNorm + ReLU while loading their operand; the backward mirrors
 * it (ReLU mask and gradient statistics in the backward-data epilogue, the BatchNorm backward
 * computed while loading the next GEMM's operand, weight-gradient split-K reductions riding on a
 * later kernel, no transposed weight copies, strided backward-data per parity class). Forward: 3
 * dispatches per block (2 for the stem); backward: 4 (5 with a strided conv). A block's output carries what the producer of its
 * gradient needs to apply this block's final ReLU mask and its statistics in its own epilogue
 * (the next block's backward does), which saves the block a pass.
 * @module
 */
import { gradEnabled, needsGrad, record } from "../autograd.ts";
import { engine } from "../engine.ts";
import { bnFwdCoefPart, bnGradCoefPart, type BnTensors } from "../kernels/bn_coef.ts";
import {
  bnApplyLaunch,
  reluGradStatsLaunch,
  rowPartials,
  type RowShortcut,
  stridedGradLaunch,
} from "../kernels/bn_rows.ts";
import {
  parityA,
  parityB,
  parityKLimit,
  parityMaxTaps,
  parityRows,
} from "../kernels/conv2d_parity.ts";
import {
  bakeWhenLarge,
  convBackwardDataA,
  convBackwardFilterA,
  convBackwardFilterWindowA,
  convForwardA,
  type ConvGeom,
  filterWindowFits,
} from "../kernels/conv2d_operands.ts";
import { bnGradB, convWeightTB, paddedCinB } from "../kernels/conv2d_fused_operands.ts";
import { padChannelsLaunch } from "../kernels/pad_channels.ts";
import {
  composeFusion,
  type FusionPart,
  type RiderJob,
  riderLaunch,
  riderPart,
} from "../kernels/fusion_parts.ts";
import { bnGradEpilogue, bnStatsEpilogue } from "../kernels/gemm_epilogues.ts";
import { denseB } from "../kernels/matmul_operands.ts";
import { TUNING } from "../kernels/tuning.ts";
import { gpu } from "../device.ts";
import { empty, emptyHalf, type Tensor } from "../tensor.ts";
import { convGeometry } from "./conv2d.ts";
import { runGemm } from "./gemm_run.ts";

/** A 3x3 conv (padding 1, no bias) followed by a BatchNorm: the tensors and settings. */
export interface ConvBnParams {
  /** HWIO kernel [3, 3, Cin, Cout]. */
  w: Tensor;
  stride: number;
  gamma: Tensor;
  beta: Tensor;
  runningMean: Tensor;
  runningVar: Tensor;
  /** PyTorch convention (weight of the new batch). */
  momentum: number;
  eps: number;
}

/** The shortcut of a basic block: identity, or option A (stride-2 subsample, zero channels). */
export type BlockShortcut = { kind: "identity" } | { kind: "optionA"; stride: number; pad: number };

const ZERO4 = [0, 0, 0, 0];

/** What a ReLU output of a fused op tells the producer of its gradient (see the module doc). */
interface ReluOutput {
  /** The BatchNorm input whose statistics the gradient's consumer needs, and its saved stats. */
  z: Tensor;
  saved: Tensor;
}
const reluOutputs = new WeakMap<Tensor, ReluOutput>();
/** A gradient already masked by its ReLU output's derivative, with its statistics. */
interface PreReduced {
  owner: ReluOutput;
  part: Tensor;
  tiles: number;
}
const preReduced = new WeakMap<Tensor, PreReduced>();

/** Why `x` and `cs` cannot take the fused path (null: they can). */
function unfusable(
  x: Tensor,
  cs: ConvBnParams[],
  training: boolean,
  shortcut?: BlockShortcut,
): string | null {
  if (x.dtype !== "f32" || x.rank !== 4) return "x is not NHWC f32";
  let c = x.shape[3];
  if (needsGrad(x) && c % 4 !== 0) return "an input gradient with Cin % 4 != 0";
  if (shortcut) {
    const [c1, c2] = cs;
    if (c2.stride !== 1 || c % 4 !== 0) return "conv2 strided or Cin % 4 != 0";
    if (shortcut.kind === "identity" && (c1.stride !== 1 || c1.w.shape[3] !== c)) {
      return "identity shortcut with a shape change";
    }
    if (shortcut.kind === "optionA") {
      const out = c2.w.shape[3];
      if (c1.stride === 1) return "option-A shortcut without a stride";
      if (shortcut.pad % 4 !== 0 || shortcut.pad + c > out || shortcut.stride !== c1.stride) {
        return "option-A padding not a multiple of 4 or not matching conv1";
      }
    }
  }
  for (const p of cs) {
    const [kh, kw, cin, cout] = p.w.shape;
    if (p.w.rank !== 4 || kh !== 3 || kw !== 3 || cin !== c) return "not a 3x3 conv";
    if (cout % 4 !== 0 || cout > 256) return "output channels not a multiple of 4 (<= 256)";
    if (p.stride !== 1 && p.stride !== 2) return "stride not 1 or 2";
    for (const t of [p.w, p.gamma, p.beta, p.runningMean, p.runningVar]) {
      if (t.dtype !== "f32") return "non-f32 parameters";
    }
    c = cout;
  }
  const params = cs.flatMap((p) => [p.w, p.gamma, p.beta]);
  const grads = params.map(needsGrad);
  if (training && !grads.every((g) => g)) return "some parameters are frozen";
  if (!training && gradEnabled() && (grads.some((g) => g) || needsGrad(x))) {
    return "eval mode with gradients";
  }
  // The backward-data GEMMs of a block bind up to 15 storage buffers.
  if ((gpu().device.limits.maxStorageBuffersPerShaderStage ?? 8) < 16) return "binding limit";
  return null;
}

/**
 * Whether {@link fusedBasicBlock} (two convs and a shortcut) or {@link fusedConvBnRelu} (one conv)
 * accepts these arguments: 3x3 convs with output channels a multiple of 4 (<= 256), an option-A
 * channel padding a multiple of 4, every conv and BatchNorm parameter trainable in training, no
 * gradient wanted in eval mode.
 */
export function canFuseConvBn(
  x: Tensor,
  cs: ConvBnParams[],
  training: boolean,
  shortcut?: BlockShortcut,
): boolean {
  return unfusable(x, cs, training, shortcut) === null;
}

function geom(op: string, xShape: readonly number[], p: ConvBnParams): ConvGeom {
  return convGeometry(op, xShape, p.w.shape, { stride: p.stride, padding: 1 });
}

function bnTensors(p: ConvBnParams, saved: Tensor, rows: number): BnTensors {
  return {
    gamma: p.gamma,
    beta: p.beta,
    runMean: p.runningMean,
    runVar: p.runningVar,
    saved,
    eps: p.eps,
    rows,
  };
}

/** Partial buffers of a BatchNorm over `C` channels from `tiles` row tiles. */
function partials(tiles: number, c: number, label: string): Tensor {
  return empty([2 * tiles * c], "f32", label);
}

/** A conv forward GEMM (A = x, optionally transformed), with fused stages. */
function convForwardGemm(
  x: Tensor,
  p: ConvBnParams,
  g: ConvGeom,
  out: Tensor,
  xf: Parameters<typeof convForwardA>[2],
  fusion: (tileM: number, tiles: number) => ReturnType<typeof composeFusion>,
  epilogue: boolean,
): void {
  runGemm({
    name: "conv2d_bn",
    a: bakeWhenLarge(convForwardA(g, g.Cin % 4 === 0, xf), g),
    // x with zero-padded channels (see fusedConvBnRelu): w read with zero rows for them.
    b: g.Cin === p.w.shape[2] ? denseB(false, true, ZERO4) : paddedCinB(p.w.shape[2], g.Cout),
    aT: x,
    bT: p.w,
    out,
    M: g.N * g.OH * g.OW,
    N: g.Cout,
    K: 9 * g.Cin,
    batch: 1,
    fusion,
    fusedEpilogue: epilogue,
  });
}

/** Forward state of one conv + BatchNorm (training: raw output, statistics; eval: raw output). */
interface ConvBnFwd {
  g: ConvGeom;
  z: Tensor;
  saved: Tensor;
  /** Training: the partials the next kernel combines. */
  part: Tensor | null;
  tiles: number;
  tileRows: number;
}

/**
 * Runs conv(x) (x through `xf`'s coefficients part when given) and, in training, its per-tile
 * statistics. Returns the raw output and what the next kernel needs.
 */
function convBnForward(
  op: string,
  x: Tensor,
  p: ConvBnParams,
  training: boolean,
  pre: FusionPart[],
  xf?: { a: string; b: string },
): ConvBnFwd {
  const [n, h, w, cx] = x.shape;
  // x may carry zero-padded channels beyond w's (fusedConvBnRelu's RGB input).
  const g = { ...geom(op, [n, h, w, p.w.shape[2]], p), Cin: cx };
  const zShape = [g.N, g.OH, g.OW, g.Cout];
  const z = TUNING.halfActivations ? emptyHalf(zShape, `${op}_z`) : empty(zShape, "f32", `${op}_z`);
  const saved = empty([2 * g.Cout], "f32", `${op}_stats`);
  const st: ConvBnFwd = { g, z, saved, part: null, tiles: 0, tileRows: 0 };
  convForwardGemm(
    x,
    p,
    g,
    z,
    xf ? { kind: "bnRelu", ...xf } : undefined,
    (tileM, tiles) => {
      const parts = [...pre];
      if (training) {
        st.part = partials(tiles, g.Cout, `${op}_part`);
        st.tiles = tiles;
        st.tileRows = tileM;
        parts.push(bnStatsEpilogue(st.part));
      }
      return composeFusion(parts);
    },
    training,
  );
  return st;
}

/** The coefficients part of a forward state's BatchNorm, for its first consumer. */
function fwdCoef(name: string, s: ConvBnFwd, p: ConvBnParams, training: boolean): FusionPart {
  const t = bnTensors(p, s.saved, s.g.N * s.g.OH * s.g.OW);
  return training
    ? bnFwdCoefPart(name, t, {
      kind: "partials",
      part: s.part!,
      tiles: s.tiles,
      tileRows: s.tileRows,
      momentum: p.momentum,
    })
    : bnFwdCoefPart(name, t, { kind: "running" });
}

/** The gradient of a conv + BatchNorm + ReLU output, masked, with its statistics. */
interface MaskedGrad {
  g: Tensor;
  part: Tensor;
  tiles: number;
  /** Whether `g` and `part` were made here (and are freed here). */
  own: boolean;
}

/** dy masked by relu'(y) with its BatchNorm statistics: from the producer if it did it, else here. */
function maskedGrad(dy: Tensor, y: Tensor, desc: ReluOutput): MaskedGrad {
  const pre = preReduced.get(dy);
  if (pre && pre.owner === desc) return { g: dy, part: pre.part, tiles: pre.tiles, own: false };
  const C = y.shape[3], rows = y.size / C;
  const tiles = rowPartials(rows);
  const g = empty(y.shape, "f32", "fused_relu_grad");
  const part = partials(tiles, C, "fused_grad_part");
  engine().dispatch(reluGradStatsLaunch(dy, y, desc.z, desc.saved, g, part));
  return { g, part, tiles, own: true };
}

/**
 * Weight gradient of a conv whose output feeds a BatchNorm: x^T (im2col) x dz, dz computed on load
 * from the masked gradient and the BatchNorm input (and written to `dz.store` on the way).
 */
function weightGrad(
  x: Tensor,
  g: ConvGeom,
  dz: { g: Tensor; z: Tensor; store?: Tensor },
  coef: string,
  parts: FusionPart[],
  dw: Tensor,
  xf?: { a: string; b: string },
): RiderJob | null {
  const t = xf ? { kind: "bnRelu" as const, ...xf } : undefined;
  // CPU kernels: rows grouped by tap row and channel quad so the taps share loads.
  const windowed = filterWindowFits(g);
  return runGemm({
    name: "conv2d_bn_backward_filter",
    a: bakeWhenLarge(
      windowed ? convBackwardFilterWindowA(g, t) : convBackwardFilterA(g, g.Cin % 4 === 0, t),
      g,
    ),
    variant: windowed ? "regblock" : undefined,
    b: bnGradB(
      { a: `${coef}_a`, b: `${coef}_b`, d: `${coef}_d` },
      "B2",
      dz.store ? "BZ" : undefined,
    ),
    aT: x,
    bT: dz.g,
    bExtra: dz.store ? [dz.z.binding, dz.store.binding] : [dz.z.binding],
    out: dw,
    M: 9 * g.Cin,
    N: g.Cout,
    K: g.N * g.OH * g.OW,
    batch: 1,
    fusion: composeFusion(parts),
    deferReduce: true,
  });
}

/** Reduces rider jobs with a dispatch of their own (when no later kernel takes them). */
function reduceNow(jobs: RiderJob[]): void {
  if (!jobs.length) return;
  engine().dispatch(riderLaunch(jobs));
  for (const j of jobs) j.part.dispose();
}

/** Where the input gradient of a fused op goes (the masking its producer wants, if any). */
interface InputGradSink {
  dx: Tensor;
  /** relu'(x) mask + statistics for the fused op that made x. */
  relu: { desc: ReluOutput; part: Tensor; tiles: number } | null;
}

function inputSink(x: Tensor, label: string): InputGradSink {
  const desc = reluOutputs.get(x);
  return { dx: empty(x.shape, "f32", label), relu: desc ? { desc, part: null!, tiles: 0 } : null };
}

/** Tags `sink.dx` for the producer of x (its gradient is masked and reduced already). */
function finishSink(sink: InputGradSink): void {
  if (sink.relu) {
    preReduced.set(sink.dx, {
      owner: sink.relu.desc,
      part: sink.relu.part,
      tiles: sink.relu.tiles,
    });
  }
}

/**
 * dL/dx of a conv whose output gradient is dz, plus an optional residual gradient, masked for x's
 * producer, with the riders.
 */
function inputGrad(
  x: Tensor,
  p: ConvBnParams,
  g: ConvGeom,
  dz: Tensor,
  residual: { g: Tensor; shortcut: BlockShortcut } | null,
  riders: RiderJob[],
  sink: InputGradSink,
): void {
  const parts: FusionPart[] = riders.length ? [riderPart(riders)] : [];
  const relu = sink.relu;
  if (g.sh === 1 && g.sw === 1) {
    runGemm({
      name: "conv2d_bn_backward_input",
      a: bakeWhenLarge(convBackwardDataA(g, true, true), g),
      b: convWeightTB(g.Cin, g.Cout),
      aT: dz,
      bT: p.w,
      out: sink.dx,
      M: g.N * g.H * g.W,
      N: g.Cin,
      K: 9 * g.Cout,
      batch: 1,
      fusedEpilogue: true,
      fusion: (_tileM, tiles) => {
        if (residual && residual.shortcut.kind !== "identity") {
          throw new Error("collapse: a stride-1 block has an identity shortcut");
        }
        if (relu) {
          relu.part = partials(tiles, g.Cin, "fused_grad_part");
          relu.tiles = tiles;
        }
        return composeFusion([
          ...parts,
          bnGradEpilogue({
            residual: residual?.g,
            positive: relu ? x : undefined,
            stats: relu ? { z: relu.desc.z, saved: relu.desc.saved, part: relu.part } : undefined,
          }),
        ]);
      },
    });
  } else {
    // Strided: one GEMM per parity class, then the interleave with the shortcut, mask and riders.
    const { M, classes } = parityRows(g);
    const tmp = empty([classes, M, g.Cin], "f32", "fused_parity");
    runGemm({
      name: "conv2d_bn_backward_input_parity",
      a: parityA(g),
      b: parityB(g),
      aT: dz,
      bT: p.w,
      out: tmp,
      M,
      N: g.Cin,
      K: parityMaxTaps(g) * g.Cout,
      batch: classes,
      kLimit: parityKLimit(g),
    });
    if (relu) {
      relu.tiles = rowPartials(g.N * g.H * g.W);
      relu.part = partials(relu.tiles, g.Cin, "fused_grad_part");
    }
    const sc = residual?.shortcut;
    engine().dispatch(
      stridedGradLaunch(tmp, sink.dx, g, {
        shortcut: residual && sc?.kind === "optionA"
          ? { g: residual.g, stride: sc.stride, pad: sc.pad }
          : undefined,
        reluStats: relu
          ? { y: x, z: relu.desc.z, saved: relu.desc.saved, part: relu.part }
          : undefined,
      }, parts),
    );
    tmp.dispose();
  }
  for (const r of riders) r.part.dispose();
  finishSink(sink);
}

/**
 * The CIFAR basic block, fused (see the module doc): relu(bn2(conv2(relu(bn1(conv1(x))))) +
 * shortcut(x)), conv1 with `c1.stride`, conv2 stride 1; the option-A shortcut subsamples x by its
 * stride and puts its channels at [pad, pad + Cin). Check {@link canFuseConvBn} first.
 *
 * @example
 * ```ts
 * import { assert, assertEquals } from "@std/assert";
 * import { initDevice, ones, type Tensor, zeros } from "../mod.ts";
 * import { canFuseConvBn, type ConvBnParams, fusedBasicBlock } from "./fused_block.ts";
 *
 * await initDevice();
 * const trained = (t: Tensor) => Object.assign(t, { requiresGrad: true }); // as layer weights are
 * const convBn = (c: number): ConvBnParams => ({
 *   w: trained(ones([3, 3, c, c])),
 *   stride: 1,
 *   gamma: trained(ones([c])),
 *   beta: trained(zeros([c])),
 *   runningMean: zeros([c]),
 *   runningVar: ones([c]),
 *   momentum: 0.1,
 *   eps: 1e-5,
 * });
 * const x = ones([2, 8, 8, 16]);
 * const c1 = convBn(16), c2 = convBn(16);
 * assert(canFuseConvBn(x, [c1, c2], true, { kind: "identity" }));
 * assertEquals(fusedBasicBlock(x, c1, c2, { kind: "identity" }, true).shape, [2, 8, 8, 16]);
 * ```
 */
export function fusedBasicBlock(
  x: Tensor,
  c1: ConvBnParams,
  c2: ConvBnParams,
  shortcut: BlockShortcut,
  training: boolean,
): Tensor {
  const op = "fusedBasicBlock";
  const why = unfusable(x, [c1, c2], training, shortcut);
  if (why) throw new Error(`collapse: ${op}: cannot fuse: ${why}`);
  const f1 = convBnForward(op, x, c1, training, []);
  const f2 = convBnForward(op, f1.z, c2, training, [fwdCoef("n1", f1, c1, training)], {
    a: "n1_a",
    b: "n1_b",
  });
  f1.part?.dispose();
  const g2 = f2.g;
  const out = empty(f2.z.shape, "f32", "fused_block");
  const rs: RowShortcut = shortcut.kind === "identity" ? { kind: "identity", x } : {
    kind: "optionA",
    x,
    H: x.shape[1],
    W: x.shape[2],
    Cin: x.shape[3],
    OH: g2.OH,
    OW: g2.OW,
    stride: shortcut.stride,
    pad: shortcut.pad,
  };
  if (shortcut.kind === "identity" && x.shape.some((d, i) => d !== out.shape[i])) {
    throw new Error(`collapse: ${op}: an identity shortcut needs equal shapes`);
  }
  engine().dispatch(bnApplyLaunch(f2.z, out, "n2", [fwdCoef("n2", f2, c2, training)], rs));
  f2.part?.dispose();
  if (!training) {
    for (const t of [f1.z, f1.saved, f2.z, f2.saved]) t.dispose();
    return out;
  }
  const desc: ReluOutput = { z: f2.z, saved: f2.saved };
  reluOutputs.set(out, desc);
  return record(out, op, [x, c1.w, c1.gamma, c1.beta, c2.w, c2.gamma, c2.beta], (dy) => {
    const g1 = f1.g;
    const m = maskedGrad(dy, out, desc);
    const rows1 = g1.N * g1.OH * g1.OW, rows2 = g2.N * g2.OH * g2.OW;
    const C1 = g1.Cout, C2 = g2.Cout;
    const dw1 = empty(c1.w.shape, "f32", "fused_dw"), dw2 = empty(c2.w.shape, "f32", "fused_dw");
    const dg1 = empty([C1]), db1 = empty([C1]), dg2 = empty([C2]), db2 = empty([C2]);
    const bn1 = bnTensors(c1, f1.saved, rows1), bn2 = bnTensors(c2, f2.saved, rows2);
    // conv2 backward-weight: a1 = relu(bn1(z1)) and dz2 = bn2's backward on load (the first
    // reader of bn2's gradient statistics), dz2 stored on the way.
    const dz2 = empty(f2.z.shape, "f32", "fused_dz");
    const j2 = weightGrad(
      f1.z,
      g2,
      { g: m.g, z: f2.z, store: dz2 },
      "m2",
      [
        bnFwdCoefPart("f1", bn1, { kind: "saved" }),
        bnGradCoefPart("m2", bn2, dg2, db2, { kind: "partials", part: m.part, tiles: m.tiles }),
      ],
      dw2,
      { a: "f1_a", b: "f1_b" },
    );
    // conv2 backward-data; epilogue: relu'(bn1) mask and bn1's gradient statistics; it also
    // reduces conv2's weight-gradient partials.
    const da1 = empty(f1.z.shape, "f32", "fused_grad");
    const b3: { q1: Tensor | null; tiles: number } = { q1: null, tiles: 0 };
    runGemm({
      name: "conv2d_bn_backward_input",
      a: bakeWhenLarge(convBackwardDataA(g2, true, true), g2),
      b: convWeightTB(C1, C2),
      aT: dz2,
      bT: c2.w,
      out: da1,
      M: rows1,
      N: C1,
      K: 9 * C2,
      batch: 1,
      fusedEpilogue: true,
      fusion: (_tileM, tiles) => {
        const q1 = b3.q1 = partials(tiles, C1, "fused_grad_part");
        b3.tiles = tiles;
        return composeFusion([
          ...(j2 ? [riderPart([j2])] : []),
          bnGradEpilogue({
            bnRelu: { z: f1.z, saved: f1.saved, gamma: c1.gamma, beta: c1.beta },
            stats: { z: f1.z, saved: f1.saved, part: q1 },
          }),
        ]);
      },
    });
    j2?.part.dispose();
    dz2.dispose();
    // conv1 backward-weight: dz1 on load (the first reader of bn1's gradient statistics), stored.
    const dz1 = needsGrad(x) ? empty(f1.z.shape, "f32", "fused_dz") : undefined;
    const j1 = weightGrad(
      x,
      g1,
      { g: da1, z: f1.z, store: dz1 },
      "m1",
      [bnGradCoefPart("m1", bn1, dg1, db1, { kind: "partials", part: b3.q1!, tiles: b3.tiles })],
      dw1,
    );
    const riders = j1 ? [j1] : [];
    let dx: Tensor | null = null;
    if (dz1) {
      const sink = inputSink(x, "fused_dx");
      inputGrad(x, c1, g1, dz1, { g: m.g, shortcut }, riders, sink);
      dx = sink.dx;
      dz1.dispose();
    } else {
      reduceNow(riders);
    }
    b3.q1?.dispose();
    da1.dispose();
    if (m.own) m.g.dispose();
    m.part.dispose();
    return [dx, dw1, dg1, db1, dw2, dg2, db2];
  });
}

/**
 * relu(bn(conv(x))), fused (the stem of a CIFAR ResNet): 3x3 conv with padding 1, no bias. Check
 * {@link canFuseConvBn} first.
 *
 * @example
 * ```ts
 * import { assert, assertEquals } from "@std/assert";
 * import { initDevice, ones, type Tensor, zeros } from "../mod.ts";
 * import { canFuseConvBn, type ConvBnParams, fusedConvBnRelu } from "./fused_block.ts";
 *
 * await initDevice();
 * const trained = (t: Tensor) => Object.assign(t, { requiresGrad: true }); // as layer weights are
 * const stem: ConvBnParams = {
 *   w: trained(ones([3, 3, 3, 16])), // RGB -> 16 channels
 *   stride: 1,
 *   gamma: trained(ones([16])),
 *   beta: trained(zeros([16])),
 *   runningMean: zeros([16]),
 *   runningVar: ones([16]),
 *   momentum: 0.1,
 *   eps: 1e-5,
 * };
 * const images = ones([2, 32, 32, 3]);
 * assert(canFuseConvBn(images, [stem], true));
 * assertEquals(fusedConvBnRelu(images, stem, true).shape, [2, 32, 32, 16]);
 * ```
 */
export function fusedConvBnRelu(x: Tensor, c: ConvBnParams, training: boolean): Tensor {
  const op = "fusedConvBnRelu";
  const why = unfusable(x, [c], training);
  if (why) throw new Error(`collapse: ${op}: cannot fuse: ${why}`);
  // Fewer than 4 input channels (RGB): zero-pad them to 4 for vec4 loads (x needs no gradient).
  const cin = x.shape[3];
  let xp = x;
  if (cin < 4) {
    xp = empty([...x.shape.slice(0, 3), 4], "f32", "fused_padded_input");
    engine().dispatch(padChannelsLaunch(x, xp));
  }
  const f = convBnForward(op, xp, c, training, []);
  const out = empty(f.z.shape, "f32", "fused_conv_bn_relu");
  engine().dispatch(bnApplyLaunch(f.z, out, "n0", [fwdCoef("n0", f, c, training)]));
  f.part?.dispose();
  if (!training) {
    for (const t of [f.z, f.saved]) t.dispose();
    if (xp !== x) xp.dispose();
    return out;
  }
  const desc: ReluOutput = { z: f.z, saved: f.saved };
  reluOutputs.set(out, desc);
  return record(out, op, [x, c.w, c.gamma, c.beta], (dy) => {
    const g = f.g;
    const m = maskedGrad(dy, out, desc);
    const rows = g.N * g.OH * g.OW;
    const dw = empty(c.w.shape, "f32", "fused_dw");
    const dg = empty([g.Cout]), db = empty([g.Cout]);
    const bn = bnTensors(c, f.saved, rows);
    const coef = bnGradCoefPart("m0", bn, dg, db, {
      kind: "partials",
      part: m.part,
      tiles: m.tiles,
    });
    let dx: Tensor | null = null;
    if (xp !== x) {
      // The gradient of w over the padded channels: computed, then dropped by the reduction.
      const dw4 = empty([3, 3, 4, g.Cout], "f32", "fused_dw_padded");
      const j = weightGrad(xp, g, { g: m.g, z: f.z }, "m0", [coef], dw4);
      const regroup = { inner: g.Cout, from: 4, to: cin };
      reduceNow([j ? { ...j, out: dw, regroup } : { part: dw4, out: dw, splits: 1, regroup }]);
      if (j) dw4.dispose();
    } else {
      const dz = needsGrad(x) ? empty(f.z.shape, "f32", "fused_dz") : undefined;
      const j = weightGrad(x, g, { g: m.g, z: f.z, store: dz }, "m0", [coef], dw);
      const riders = j ? [j] : [];
      if (dz) {
        const sink = inputSink(x, "fused_dx");
        inputGrad(x, c, g, dz, null, riders, sink);
        dx = sink.dx;
        dz.dispose();
      } else {
        reduceNow(riders);
      }
    }
    if (m.own) m.g.dispose();
    m.part.dispose();
    return [dx, dw, dg, db];
  });
}
