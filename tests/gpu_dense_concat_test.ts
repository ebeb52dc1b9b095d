import { assert, assertEquals, assertThrows } from "@std/assert";
import { backward, noGrad } from "../gpu/autograd.ts";
import { initDevice } from "../gpu/device.ts";
import { engine } from "../gpu/engine.ts";
import { batchNorm } from "../gpu/ops/batch_norm.ts";
import { conv2d } from "../gpu/ops/conv2d.ts";
import {
  type BatchNormParams,
  denseBlockBuffer,
  denseBlockLayer,
  denseConcatLimits,
  type PreactConvUnit,
} from "../gpu/ops/dense_concat.ts";
import { preactConv, preactGlobalPool } from "../gpu/ops/preact_conv.ts";
import { add, mul, relu } from "../gpu/ops/elementwise.ts";
import "../gpu/ops/mod.ts";
import { avgPool2d, globalAvgPool2d } from "../gpu/ops/pool.ts";
import { sum } from "../gpu/ops/reduce.ts";
import { concat } from "../gpu/ops/shape.ts";
import { tidy, tidyAsync } from "../gpu/scope.ts";
import { readAll, type Tensor, tensor } from "../gpu/tensor.ts";
import { rand, rng } from "./gpu_op_helpers.ts";
import { assertClose } from "./nn_reference.ts";

await initDevice();

/** Host values of one unit's parameters (a 1x1 or 3x3 kernel). */
interface UnitHost {
  gamma: Float32Array;
  beta: Float32Array;
  mean: Float32Array;
  var: Float32Array;
  w: Float32Array;
  shape: number[];
}

function unitHost(r: () => number, k: number, cin: number, cout: number): UnitHost {
  return {
    gamma: rand(r, cin, 0.5, 1.5),
    beta: rand(r, cin, -0.3, 0.3),
    mean: rand(r, cin, -0.1, 0.1),
    var: rand(r, cin, 0.8, 1.2),
    w: rand(r, k * k * cin * cout, -0.5, 0.5),
    shape: [k, k, cin, cout],
  };
}

/** GPU tensors for a unit (fresh running statistics each call). */
function unitOf(h: UnitHost): PreactConvUnit {
  const leaf = (a: Float32Array, shape: number[]) => {
    const t = tensor(a, shape);
    t.requiresGrad = true;
    return t;
  };
  const c = h.shape[2];
  const bn: BatchNormParams = {
    gamma: leaf(h.gamma, [c]),
    beta: leaf(h.beta, [c]),
    runningMean: tensor(h.mean, [c]),
    runningVar: tensor(h.var, [c]),
    momentum: 0.1,
    eps: 1e-5,
  };
  return { bn, weight: leaf(h.w, h.shape) };
}

/** The same unit with standard ops: conv(relu(batchNorm(x))). */
function unitRef(x: Tensor, u: PreactConvUnit, training: boolean): Tensor {
  const b = u.bn;
  const a = relu(batchNorm(x, b.gamma, b.beta, { training, ...b }));
  return conv2d(a, u.weight, { padding: (u.weight.shape[0] - 1) / 2 });
}

/** Two bottleneck layers and a transition on an [n, s, s, 6] input, growth 4, bottleneck 8. */
function setup(seed: number, n = 2, s = 4) {
  const r = rng(seed);
  const xShape = [n, s, s, 6];
  const x = rand(r, n * s * s * 6);
  const layers = [6, 10].map((c) => [unitHost(r, 1, c, 8), unitHost(r, 3, 8, 4)]);
  const trans = [unitHost(r, 1, 14, 7)];
  const head = unitHost(r, 1, 7, 1);
  const h = Math.floor(s / 2);
  return {
    xShape,
    x,
    layers,
    trans,
    head,
    r1: rand(r, n * s * s * 14),
    r2: rand(r, n * h * h * 7),
    r3: rand(r, n * 7),
  };
}

type Setup = ReturnType<typeof setup>;

/** Runs the block (ours or the standard-op reference); returns tensors to compare. */
function run(s: Setup, ours: boolean, training: boolean) {
  const x = tensor(s.x, s.xShape);
  x.requiresGrad = true;
  const layers = s.layers.map((l) => l.map(unitOf));
  const trans = s.trans.map(unitOf);
  let state: Tensor;
  if (ours) {
    state = denseBlockBuffer(x, 14);
    state = denseBlockLayer(state, 6, layers[0], training);
    state = denseBlockLayer(state, 10, layers[1], training);
  } else {
    state = x;
    for (const l of layers) {
      state = concat([state, unitRef(unitRef(state, l[0], training), l[1], training)], -1);
    }
  }
  // The transition (BN-ReLU-conv1x1 + 2x2 average pooling) and the head (BN-ReLU-global pool).
  const head = unitOf(s.head).bn;
  const z = ours
    ? preactConv(state, trans, training, { avgPool2: true })
    : avgPool2d(unitRef(state, trans[0], training), { size: 2, stride: 2 });
  const f = ours
    ? preactGlobalPool(z, head, training)
    : globalAvgPool2d(relu(batchNorm(z, head.gamma, head.beta, { training, ...head })));
  const loss = add(
    add(sum(mul(state, tensor(s.r1, state.shape))), sum(mul(z, tensor(s.r2, z.shape)))),
    sum(mul(f, tensor(s.r3, f.shape))),
  );
  const params = [
    ...[...layers.flat(), ...trans].flatMap((u) => [u.bn.gamma, u.bn.beta, u.weight]),
    head.gamma,
    head.beta,
  ];
  const running = [...layers.flat(), ...trans].flatMap((u) => [
    u.bn.runningMean,
    u.bn.runningVar,
  ]).concat([head.runningMean, head.runningVar]);
  return { x, state, z, f, loss, params, running };
}

/** Our ops and the composition on the same inputs: outputs, running statistics, gradients. */
async function compare(s: Setup, training: boolean): Promise<void> {
  await tidyAsync(async () => {
    const read = async (r: ReturnType<typeof run>) => {
      const g = backward(r.loss, [r.x, ...r.params]);
      return await readAll([
        r.state,
        r.z,
        r.f,
        ...r.running,
        ...[r.x, ...r.params].map((t) => g.get(t)!),
      ]);
    };
    const a = await read(run(s, true, training));
    const b = await read(run(s, false, training));
    assertEquals(a.length, b.length);
    const names = ["block output", "transition output", "pooled head"];
    for (let i = 0; i < a.length; i++) {
      assertClose(a[i], b[i], names[i] ?? `tensor ${i}`, 1e-3, 1e-4);
    }
  });
}

Deno.test("denseBlockLayer/preactConv/preactGlobalPool: values, running statistics and every gradient equal the concat-based composition", async () => {
  await compare(setup(3), true);
});

Deno.test("the same with the batch split into groups of images under a binding limit", async () => {
  // 7 images of 8x8: the widest binding (14 channels) allows 2 images per group -> 2 + 2 + 2 + 1.
  denseConcatLimits.maxBindingBytes = 2 * 8 * 8 * 14 * 4;
  try {
    await compare(setup(6, 7, 8), true);
  } finally {
    denseConcatLimits.maxBindingBytes = null;
  }
});

Deno.test("denseBlockLayer/preactConv/preactGlobalPool in eval mode: running statistics, values and gradients equal the composition", async () => {
  await compare(setup(4), false);
});

Deno.test("a dense block keeps one feature buffer plus each layer's bottleneck output (no per-layer concat copies)", async () => {
  await tidyAsync(async () => {
    const r = rng(9);
    const [n, h, w, c0, growth, layers] = [2, 8, 8, 8, 8, 6];
    const units = Array.from(
      { length: layers },
      (_, i) => [unitHost(r, 1, c0 + i * growth, 8), unitHost(r, 3, 8, growth)].map(unitOf),
    );
    const x = tensor(rand(r, n * h * w * c0), [n, h, w, c0]);
    x.requiresGrad = true;
    await readAll([x]);
    const before = engine().stats().liveBytes;
    let state = denseBlockBuffer(x, c0 + layers * growth);
    units.forEach((u, i) => (state = denseBlockLayer(state, c0 + i * growth, u, true)));
    const kept = engine().stats().liveBytes - before;
    const rows = n * h * w;
    // The buffer (32 KiB size class) + per layer the 8-channel bottleneck output (4 KiB) and two
    // BN statistics vectors (<= 512 B each); a concat per layer would keep sum_i c_i * rows * 4 B
    // (86 KiB here) for the concatenations alone.
    const bound = 32768 + layers * (rows * 8 * 4 + 2 * 512);
    assert(kept <= bound, `kept ${kept} bytes, bound ${bound}`);
    // The same block from concat and standard ops keeps several times more.
    const mid = engine().stats().liveBytes;
    let ref: Tensor = x;
    for (const u of units) ref = concat([ref, unitRef(unitRef(ref, u[0], true), u[1], true)], -1);
    const naive = engine().stats().liveBytes - mid;
    assert(3 * kept < naive, `kept ${kept} bytes, the concat composition ${naive}`);
    const g = backward(sum(state), [x, ...units.flat().map((u) => u.weight)]);
    const grads = await readAll([g.get(x)!]);
    // d sum(state) / dx passes straight through the buffer: ones plus the layers' contributions.
    assert(grads[0].some((v) => Math.abs(v - 1) > 1e-3));
  });
});

Deno.test("denseBlockLayer and preactConv reject mismatched shapes with clear errors", () => {
  tidy(() => {
    const r = rng(2);
    const x = tensor(rand(r, 2 * 4 * 4 * 6), [2, 4, 4, 6]);
    const state = noGrad(() => denseBlockBuffer(x, 10));
    const u = [unitOf(unitHost(r, 1, 6, 8)), unitOf(unitHost(r, 3, 8, 4))];
    assertThrows(() => denseBlockBuffer(x, 5), Error, "totalChannels 5");
    assertThrows(() => denseBlockLayer(state, 7, u, true), Error, "should be [k, k, 7, Cout]");
    assertThrows(() => denseBlockLayer(state, 6, [u[0]], true), Error, "do not fit");
    const even = unitOf(unitHost(r, 2, 6, 4));
    assertThrows(() => preactConv(x, [even], true), Error, "with an odd k");
    const one = noGrad(() => denseBlockBuffer(tensor(rand(r, 6), [1, 1, 1, 6]), 10));
    assertThrows(() => denseBlockLayer(one, 6, u, true), Error, "more than one value per channel");
  });
});
