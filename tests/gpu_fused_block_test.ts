// The fused ResNet ops (gpu/ops/fused_block.ts) against the same maths composed from the unfused
// ops (conv2d, batchNorm, relu, add, the option-A shortcut): outputs, running statistics and
// every gradient, for the register-blocked (CPU) and tiled (GPU) kernel families, chained so the
// gradient hand-over between ops is exercised, in training and eval mode.
import { assert, assertEquals } from "@std/assert";
import { backward, noGrad } from "../gpu/autograd.ts";
import { initDevice } from "../gpu/device.ts";
import { engine, type Launch } from "../gpu/engine.ts";
import { setKernelMode, TUNING } from "../gpu/kernels/tuning.ts";
import { batchNorm } from "../gpu/ops/batch_norm.ts";
import { conv2d } from "../gpu/ops/conv2d.ts";
import { add, mul, relu } from "../gpu/ops/elementwise.ts";
import {
  type BlockShortcut,
  canFuseConvBn,
  type ConvBnParams,
  fusedBasicBlock,
  fusedConvBnRelu,
} from "../gpu/ops/fused_block.ts";
import "../gpu/ops/mod.ts";
import { avgPool2d } from "../gpu/ops/pool.ts";
import { sum } from "../gpu/ops/reduce.ts";
import { pad } from "../gpu/ops/shape.ts";
import { tidyAsync } from "../gpu/scope.ts";
import { readAll, type Tensor, tensor } from "../gpu/tensor.ts";
import { rand, rng } from "./gpu_op_helpers.ts";

await initDevice();

function param(r: () => number, shape: number[], lo = -1, hi = 1, grad = true): Tensor {
  const t = tensor(rand(r, shape.reduce((a, b) => a * b, 1), lo, hi), shape);
  t.requiresGrad = grad;
  return t;
}

function convBn(r: () => number, cin: number, cout: number, stride: number): ConvBnParams {
  return {
    w: param(r, [3, 3, cin, cout], -0.5, 0.5),
    stride,
    gamma: param(r, [cout], 0.5, 1.5),
    beta: param(r, [cout], -0.3, 0.3),
    runningMean: param(r, [cout], -0.2, 0.2, false),
    runningVar: param(r, [cout], 0.5, 1.5, false),
    momentum: 0.1,
    eps: 1e-5,
  };
}

/** Copies of the running statistics, so both paths start from the same values. */
function withOwnStats(p: ConvBnParams): ConvBnParams {
  const copy = (t: Tensor) => add(t, tensor(new Float32Array(t.size), [...t.shape]));
  return { ...p, runningMean: copy(p.runningMean), runningVar: copy(p.runningVar) };
}

function refConvBn(x: Tensor, p: ConvBnParams, training: boolean): Tensor {
  const z = conv2d(x, p.w, { stride: p.stride, padding: 1 });
  return batchNorm(z, p.gamma, p.beta, {
    training,
    runningMean: p.runningMean,
    runningVar: p.runningVar,
    momentum: p.momentum,
    eps: p.eps,
  });
}

function refBlock(
  x: Tensor,
  c1: ConvBnParams,
  c2: ConvBnParams,
  sc: BlockShortcut,
  training: boolean,
): Tensor {
  const y = refConvBn(relu(refConvBn(x, c1, training)), c2, training);
  let s = x;
  if (sc.kind === "optionA") {
    s = avgPool2d(x, { size: [1, 1], stride: [sc.stride, sc.stride], padding: 0 });
    const extra = c2.w.shape[3] - x.shape[3];
    s = pad(s, [[0, 0], [0, 0], [0, 0], [sc.pad, extra - sc.pad]], 0);
  }
  return relu(add(y, s));
}

function close(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string) {
  assertEquals(got.length, want.length, what);
  let scale = 0, worst = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  assert(worst <= tol * (1 + scale), `${what}: max |diff| ${worst} (scale ${scale})`);
}

interface Net {
  stem: ConvBnParams;
  blocks: [ConvBnParams, ConvBnParams, BlockShortcut][];
}

/** stem (3 -> 8) -> identity block (8) -> option-A block (8 -> 16, stride 2) -> identity (16). */
function net(seed: number): Net {
  const r = rng(seed);
  return {
    stem: convBn(r, 3, 8, 1),
    blocks: [
      [convBn(r, 8, 8, 1), convBn(r, 8, 8, 1), { kind: "identity" }],
      [convBn(r, 8, 16, 2), convBn(r, 16, 16, 1), { kind: "optionA", stride: 2, pad: 4 }],
      [convBn(r, 16, 16, 1), convBn(r, 16, 16, 1), { kind: "identity" }],
    ],
  };
}

function run(n: Net, x: Tensor, fused: boolean, training: boolean): Tensor {
  let y = fused ? fusedConvBnRelu(x, n.stem, training) : relu(refConvBn(x, n.stem, training));
  for (const [c1, c2, sc] of n.blocks) {
    y = fused ? fusedBasicBlock(y, c1, c2, sc, training) : refBlock(y, c1, c2, sc, training);
  }
  return y;
}

const allParams = (n: Net) =>
  [n.stem, ...n.blocks.flatMap(([a, b]) => [a, b])].flatMap((p) => [p.w, p.gamma, p.beta]);
const allStats = (n: Net) =>
  [n.stem, ...n.blocks.flatMap(([a, b]) => [a, b])].flatMap((p) => [p.runningMean, p.runningVar]);

/**
 * Names of the kernels dispatched during `f` whose code loads A through a sliding window, and of
 * those that bound a half-stored tensor.
 */
async function kernelsRun(
  f: () => Promise<void>,
): Promise<{ windowed: Set<string>; half: Set<string> }> {
  const e = engine(), dispatch = e.dispatch;
  const windowed = new Set<string>(), half = new Set<string>();
  e.dispatch = (l: Launch) => {
    if (l.code.includes("for (var q = 0u;") || l.code.includes("the taps share loads")) {
      windowed.add(l.name);
    }
    if (l.bindings.some((b) => b.half)) half.add(l.name);
    dispatch.call(e, l);
  };
  try {
    await f();
  } finally {
    e.dispatch = dispatch;
  }
  return { windowed, half };
}

// "narrow": CPU kernels with 4-thread row kernels (their BatchNorm pre-stages walk the partials
// per thread instead of merging lanes; each row lane sweeps its own block of a workgroup's rows).
// "window": row kernels of 3 workgroups whose sets of 8 threads sweep blocks of several rows (the
// last block of a workgroup cut short), and CPU kernels on 8x8 images with every stride-1
// conv planned as 4 rows per thread, so the forward and backward-data GEMMs load their operands
// (BatchNorm + ReLU applied while loading) through the sliding window, and the weight gradients
// (rows grouped by tap row and channel quad) share their taps' loads. "+half": the conv outputs
// kept for the backward pass stored in half precision (TUNING.halfActivations), against the f32
// unfused ops with tolerances for binary16 rounding.
for (
  const variant of [
    "cpu",
    "gpu",
    "narrow",
    "window",
    "cpu+half",
    "gpu+half",
    "window+half",
  ] as const
) {
  const [mode, half] = [variant.replace("+half", ""), variant.endsWith("+half")];
  Deno.test(`fused ResNet ops (${variant} kernels): forward, running stats and gradients match the unfused ops`, async () => {
    setKernelMode(mode === "gpu" ? "gpu" : "cpu");
    TUNING.halfActivations = half;
    // binary16 rounding (2^-11 relative) measured 5e-4 to 1.1e-3 of the scale on these nets.
    const tol = half ? { out: 3e-3, grad: 5e-3 } : { out: 2e-5, grad: 2e-4 };
    const rowKernel = TUNING.rowKernel.cpu;
    if (mode === "narrow") TUNING.rowKernel.cpu = { threads: 4, groups: 3, sweep: 2 };
    if (mode === "window") TUNING.rowKernel.cpu = { threads: 64, groups: 3, sweep: 8 };
    const windowWork = TUNING.rbWindowWork;
    if (mode === "window") {
      TUNING.rbWindowWork = 0; // these shapes are below the default size
      TUNING.planHook = (_m, _n, _k, _b, o) =>
        o.window
          ? { config: { variant: "regblock", wgm: 8, wgn: 1, tm: 4, tn: 8 }, splits: 1 }
          : null;
    }
    const side = mode === "window" ? 8 : 10;
    try {
      const { windowed, half: halfKernels } = await kernelsRun(() =>
        tidyAsync(async () => {
          const r = rng(7);
          const x = tensor(rand(r, 2 * side * side * 3, -1.5, 1.5), [2, side, side, 3]);
          const a = net(3);
          const b: Net = {
            stem: withOwnStats(a.stem),
            blocks: a.blocks.map(([c1, c2, sc]) => [withOwnStats(c1), withOwnStats(c2), sc]),
          };
          assert(canFuseConvBn(x, [a.stem], true));
          const ya = run(a, x, true, true);
          const yb = run(b, x, false, true);
          const R = tensor(rand(r, ya.size), [...ya.shape]);
          const ga = backward(sum(mul(ya, R)), allParams(a));
          const gb = backward(sum(mul(yb, R)), allParams(b));
          const [va, vb] = await Promise.all([readAll([ya]), readAll([yb])]);
          close(va[0], vb[0], tol.out, "output");
          const sa = await readAll(allStats(a)), sb = await readAll(allStats(b));
          sa.forEach((s, i) => close(s, sb[i], tol.out, `running stat ${i}`));
          const pa = allParams(a), pb = allParams(b);
          const gra = await readAll(pa.map((p) => ga.get(p)!));
          const grb = await readAll(pb.map((p) => gb.get(p)!));
          gra.forEach((g, i) => close(g, grb[i], tol.grad, `gradient ${i} (${pa[i].shape})`));
          // Eval mode: running statistics, no graph.
          const ea = noGrad(() => run(a, x, true, false)),
            eb = noGrad(() => run(b, x, false, false));
          const [eva, evb] = await Promise.all([readAll([ea]), readAll([eb])]);
          close(eva[0], evb[0], tol.out, "eval output");
          assert(ea.node === null);
        })
      );
      if (mode === "window") {
        for (const k of ["conv2d_bn", "conv2d_bn_backward_input", "conv2d_bn_backward_filter"]) {
          assert(windowed.has(k), `${k} ran without the window (windowed: ${[...windowed]})`);
        }
      }
      // Every kernel that reads or writes a conv output: its producer, the BatchNorm-apply and
      // its consumers in both passes.
      const wantHalf = half
        ? [
          "conv2d_bn",
          "bn_apply_relu",
          "conv2d_bn_backward_filter",
          "conv2d_bn_backward_input",
          "relu_grad_bn_stats",
          "conv2d_strided_grad",
        ]
        : [];
      assertEquals([...halfKernels].sort(), wantHalf.sort());
    } finally {
      TUNING.halfActivations = false;
      setKernelMode(null);
      TUNING.rowKernel.cpu = rowKernel;
      TUNING.planHook = null;
      TUNING.rbWindowWork = windowWork;
    }
  });
}

Deno.test("fused ResNet ops: what cannot fuse is refused with a reason", () => {
  const r = rng(1);
  const x = tensor(rand(r, 2 * 4 * 4 * 6), [2, 4, 4, 6]);
  const c = convBn(r, 6, 6, 1);
  assert(!canFuseConvBn(x, [convBn(r, 6, 6, 1), convBn(r, 6, 6, 1)], true, { kind: "identity" }));
  const frozen = { ...convBn(r, 6, 8, 1), gamma: param(r, [8], 0.5, 1.5, false) };
  assert(!canFuseConvBn(x, [frozen], true));
  assert(!canFuseConvBn(x, [{ ...c, w: param(r, [1, 1, 6, 8]) }], true));
});

Deno.test("fused ResNet ops: a NaN propagates through the fused BatchNorm + ReLU loads as unfused", async () => {
  await tidyAsync(async () => {
    const r = rng(5);
    const x = tensor(rand(r, 2 * 6 * 6 * 8), [2, 6, 6, 8]);
    const c1 = convBn(r, 8, 8, 1), c2 = convBn(r, 8, 8, 1);
    const w = await c1.w.data();
    w[3] = NaN; // one output channel of conv1 is NaN everywhere
    const c1n = { ...c1, w: tensor(w, [...c1.w.shape]) };
    const sc: BlockShortcut = { kind: "identity" };
    const [fused, ref] = await readAll(noGrad(() => [
      fusedBasicBlock(x, c1n, c2, sc, false),
      refBlock(x, c1n, c2, sc, false),
    ]));
    const nans = (v: ArrayLike<number>) => Array.from(v).filter((e) => Number.isNaN(e)).length;
    assert(nans(ref) > 0);
    assertEquals(nans(fused), nans(ref));
  });
});
