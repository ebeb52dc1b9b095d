import { assert, assertEquals, assertThrows } from "@std/assert";
import { initDevice } from "../gpu/device.ts";
import { engine } from "../gpu/engine.ts";
import { adamwStep_, setOptimizerChunkElements, sgdStep_ } from "../gpu/ops/optim.ts";
import { zeros } from "../gpu/ops/creation.ts";
import { ParamArena } from "../gpu/param_arena.ts";
import { Rng } from "../gpu/rng.ts";
import { readAll, type Tensor, tensor, writeTensor } from "../gpu/tensor.ts";

await initDevice();

const SHAPES: [string, number[], boolean][] = [
  ["bn.gamma", [3], false],
  ["conv.w", [5, 7], true],
  ["fc.b", [2], false],
  ["fc.w", [4, 3], true],
];

function rand(rng: Rng, n: number): Float64Array {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

function close(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string) {
  assertEquals(got.length, want.length, what);
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    assert(d <= tol * (1 + Math.abs(want[i])), `${what}[${i}]: got ${got[i]}, want ${want[i]}`);
  }
}

function setup(seed: number) {
  const rng = new Rng(seed);
  const init = SHAPES.map(([, s]) => rand(rng, s.reduce((a, b) => a * b, 1)));
  const values = SHAPES.map(([, s], i) => tensor(Float32Array.from(init[i]), s));
  const arena = ParamArena.pack(
    SHAPES.map(([name, , decay], i) => ({ name, value: values[i], decay })),
  );
  // 3 steps of gradients; parameter 2 has no gradient in step 1 (null -> zero).
  const grads = [0, 1, 2].map((step) =>
    SHAPES.map(([, s], i) => (step === 1 && i === 2) ? null : rand(rng, s.reduce((a, b) => a * b)))
  );
  return { rng, init, values, arena, grads };
}

function gpuGrads(g: (Float64Array | null)[]): (Tensor | null)[] {
  return g.map((a, i) => a ? tensor(Float32Array.from(a), SHAPES[i][1]) : null);
}

Deno.test("ParamArena packs aligned slots, decayed first, zero padding, views", async () => {
  const { init, arena } = setup(1);
  const align = Math.ceil((await initDevice()).storageAlign / 4);
  // decayed params (1, 3) first in pack order among themselves, then the others.
  const up = (n: number) => Math.ceil(n / align) * align;
  const o3 = up(35), o0 = o3 + up(12), o2 = o0 + up(3);
  assertEquals(arena.slots[1].offset, 0);
  assertEquals(arena.slots[3].offset, o3);
  assertEquals(arena.decayCount, o0);
  assertEquals(arena.slots[0].offset, o0);
  assertEquals(arena.slots[2].offset, o2);
  assertEquals(arena.total, o2 + up(2));
  for (const s of arena.slots) assertEquals(s.offset % align, 0);
  const [flat, ...views] = await readAll([arena.flatParams, ...arena.params]);
  views.forEach((v, i) => close(v, Float32Array.from(init[i]), 0, `view ${i}`));
  for (let i = 0; i < arena.total; i++) {
    const inSlot = arena.slots.some((s) => i >= s.offset && i < s.offset + s.size);
    if (!inSlot) assertEquals(flat[i], 0, `padding at ${i}`);
  }
  assertEquals(arena.viewOf("fc.w").value, arena.params[3]);
  assertEquals(arena.viewOf(0).grad, arena.grads[0]);
  assertEquals(arena.params[1].shape, [5, 7]);
  assert(arena.params[1].requiresGrad);
  assertThrows(() => arena.viewOf("nope"), Error, "no parameter");
  assertThrows(
    () => arena.setGrads([null]),
    Error,
    "1 gradients for 4 params",
  );
  assertThrows(
    () => arena.setGrads([zeros([4]), null, null, null]),
    Error,
    "bn.gamma",
  );
  assertThrows(
    () => ParamArena.pack([{ name: "i", value: zeros([2], "i32"), decay: true }]),
    Error,
    "not f32",
  );
  assertThrows(
    () =>
      ParamArena.pack([
        { name: "a", value: zeros([2]), decay: true },
        { name: "a", value: zeros([2]), decay: true },
      ]),
    Error,
    "duplicate",
  );
  arena.dispose();
});

function sgdHost(
  p: Float64Array[],
  bufs: (Float64Array | null)[],
  g: (Float64Array | null)[],
  o: { lr: number; momentum: number; wd: number; nesterov: boolean; dampening: number },
) {
  p.forEach((pi, k) => {
    const gk = g[k] ?? new Float64Array(pi.length);
    const decay = SHAPES[k][2];
    const first = bufs[k] === null;
    const buf = bufs[k] ??= new Float64Array(pi.length);
    for (let i = 0; i < pi.length; i++) {
      let d = gk[i] + (decay ? o.wd * pi[i] : 0);
      if (o.momentum !== 0) {
        const b = first ? d : o.momentum * buf[i] + (1 - o.dampening) * d;
        buf[i] = b;
        d = o.nesterov ? d + o.momentum * b : b;
      }
      pi[i] -= o.lr * d;
    }
  });
}

for (
  const o of [
    { momentum: 0.9, wd: 2e-4, nesterov: false, dampening: 0 },
    { momentum: 0.9, wd: 5e-2, nesterov: true, dampening: 0 },
    { momentum: 0.5, wd: 1e-1, nesterov: false, dampening: 0.3 },
    { momentum: 0, wd: 1e-1, nesterov: false, dampening: 0 },
  ]
) {
  Deno.test(`sgdStep_ matches torch.optim.SGD over 3 steps ${JSON.stringify(o)}`, async () => {
    const { init, arena, grads } = setup(2);
    const p = init.map((a) => Float64Array.from(a));
    // host momentum buffers: null until the first step (torch: buf = g then).
    const bufs: (Float64Array | null)[] = p.map(() => null);
    const lrs = [0.1, 0.05, 0.2];
    const lr = zeros([1]);
    for (let s = 0; s < 3; s++) {
      writeTensor(lr, new Float32Array([lrs[s]]));
      arena.setGrads(gpuGrads(grads[s]));
      sgdStep_(arena, {
        lr,
        momentum: o.momentum,
        weightDecay: o.wd,
        nesterov: o.nesterov,
        dampening: o.dampening,
      });
      sgdHost(p, bufs, grads[s], { lr: lrs[s], ...o });
    }
    const got = await readAll(arena.params);
    got.forEach((g, k) => close(g, p[k], 1e-5, `param ${k}`));
    const flat = await arena.flatParams.data();
    for (let i = 0; i < arena.total; i++) {
      if (!arena.slots.some((s) => i >= s.offset && i < s.offset + s.size)) {
        assertEquals(flat[i], 0);
      }
    }
    arena.dispose();
  });
}

Deno.test("sgdStep_ is one dispatch and rejects bad options", () => {
  const { arena } = setup(3);
  const lr = zeros([1]);
  engine().flush();
  const before = engine().stats().dispatches;
  sgdStep_(arena, { lr, momentum: 0.9, weightDecay: 1e-4 });
  assertEquals(engine().stats().dispatches - before, 1);
  assertThrows(
    () => sgdStep_(arena, { lr: zeros([2]), momentum: 0.9, weightDecay: 0 }),
    Error,
    "lr",
  );
  assertThrows(
    () => sgdStep_(arena, { lr, momentum: 0, weightDecay: 0, nesterov: true }),
    Error,
    "Nesterov",
  );
  assertThrows(() => sgdStep_(arena, { lr, momentum: -1, weightDecay: 0 }), Error, "momentum");
  arena.dispose();
});

Deno.test("adamwStep_ matches torch.optim.AdamW over 3 steps", async () => {
  const { init, arena, grads } = setup(4);
  const o = { beta1: 0.8, beta2: 0.95, eps: 1e-6, weightDecay: 0.1 };
  const p = init.map((a) => Float64Array.from(a));
  const m = p.map((a) => new Float64Array(a.length));
  const v = p.map((a) => new Float64Array(a.length));
  const lrs = [0.01, 0.02, 0.005];
  const lr = zeros([1]);
  const step = zeros([1]);
  for (let s = 0; s < 3; s++) {
    writeTensor(lr, new Float32Array([lrs[s]]));
    arena.setGrads(gpuGrads(grads[s]));
    adamwStep_(arena, { lr, step, ...o });
    const t = s + 1;
    p.forEach((pk, k) => {
      const gk = grads[s][k] ?? new Float64Array(pk.length);
      for (let i = 0; i < pk.length; i++) {
        if (SHAPES[k][2]) pk[i] *= 1 - lrs[s] * o.weightDecay;
        m[k][i] = o.beta1 * m[k][i] + (1 - o.beta1) * gk[i];
        v[k][i] = o.beta2 * v[k][i] + (1 - o.beta2) * gk[i] * gk[i];
        const denom = Math.sqrt(v[k][i]) / Math.sqrt(1 - o.beta2 ** t) + o.eps;
        pk[i] -= lrs[s] / (1 - o.beta1 ** t) * m[k][i] / denom;
      }
    });
  }
  const got = await readAll([...arena.params, step]);
  p.forEach((pk, k) => close(got[k], pk, 1e-5, `param ${k}`));
  assertEquals(got[4][0], 3);
  arena.dispose();
});

Deno.test("optimizer steps replay inside a captured step", async () => {
  const { init, arena, grads } = setup(5);
  const lr = zeros([1]);
  const g = gpuGrads(grads[0]);
  const { step } = engine().capture(() => {
    arena.setGrads(g);
    sgdStep_(arena, { lr, momentum: 0.9, weightDecay: 0 });
  });
  const p = init.map((a) => Float64Array.from(a));
  const bufs: (Float64Array | null)[] = p.map(() => null);
  for (const a of [0.1, 0.3]) {
    writeTensor(lr, new Float32Array([a]));
    step.run();
    sgdHost(p, bufs, grads[0], { lr: a, momentum: 0.9, wd: 0, nesterov: false, dampening: 0 });
  }
  const got = await readAll(arena.params);
  got.forEach((x, k) => close(x, p[k], 1e-5, `param ${k}`));
  step.dispose();
  arena.dispose();
});

Deno.test("captured head step (pool, batchNorm, l2Normalize, DR loss, backward, SGD) = eager", async () => {
  const { grad } = await import("../gpu/autograd.ts");
  await import("../gpu/ops/mod.ts"); // plugs add/onesLike into autograd
  const { batchNorm } = await import("../gpu/ops/batch_norm.ts");
  const { globalAvgPool2d } = await import("../gpu/ops/pool.ts");
  const { l2Normalize } = await import("../gpu/ops/normalize.ts");
  const { dotRegressionLoss } = await import("../gpu/ops/dot_regression.ts");
  const { tidy } = await import("../gpu/scope.ts");
  const rng = new Rng(9);
  const [n, h, w, c, k] = [6, 3, 3, 5, 3];
  const xs = Float32Array.from(rand(rng, n * h * w * c));
  const ms = Float32Array.from(rand(rng, c * k));
  const gs = Float32Array.from(rand(rng, c).map((v) => 1 + 0.2 * v));
  const bs = Float32Array.from(rand(rng, c));
  const x = tensor(xs, [n, h, w, c]), M = tensor(ms, [c, k]);
  const labels = tensor([0, 1, 1, 2, 0, 0], [n], "i32");
  const lr = tensor([0.5], [1]);
  const make = () => {
    const arena = ParamArena.pack([
      { name: "gamma", value: tensor(gs, [c]), decay: true },
      { name: "beta", value: tensor(bs, [c]), decay: false },
    ]);
    return {
      arena,
      rm: tensor(new Float32Array(c), [c]),
      rv: tensor(new Float32Array(c).fill(1), [c]),
    };
  };
  const body = (s: ReturnType<typeof make>) =>
    tidy(() => {
      const z = batchNorm(globalAvgPool2d(x), s.arena.params[0], s.arena.params[1], {
        training: true,
        runningMean: s.rm,
        runningVar: s.rv,
      });
      const loss = dotRegressionLoss(l2Normalize(z), M, labels);
      s.arena.setGrads(grad(loss, s.arena.params));
      sgdStep_(s.arena, { lr, momentum: 0.9, weightDecay: 1e-2 });
    });
  const eager = make();
  body(eager);
  body(eager);
  const cap = make();
  const { step } = engine().capture(() => body(cap));
  step.run();
  step.run();
  const got = await readAll([
    ...eager.arena.params,
    eager.rm,
    eager.rv,
    ...cap.arena.params,
    cap.rm,
    cap.rv,
  ]);
  for (let i = 0; i < 4; i++) close(got[4 + i], got[i], 1e-6, `tensor ${i}`);
  assert(got[0].some((v, i) => Math.abs(v - gs[i]) > 1e-4), "gamma was updated");
  step.dispose();
});

Deno.test("optimizer steps over arenas larger than one binding run in chunks, same result", async () => {
  const run = async (chunk: number | null, adam: boolean) => {
    setOptimizerChunkElements(chunk);
    try {
      const { arena, grads } = setup(5);
      const lr = zeros([1]), step = zeros([1]);
      writeTensor(lr, new Float32Array([0.1]));
      const before = engine().stats().dispatches;
      for (let s = 0; s < 3; s++) {
        arena.setGrads(gpuGrads(grads[s]));
        if (adam) adamwStep_(arena, { lr, step, weightDecay: 0.1 });
        else sgdStep_(arena, { lr, momentum: 0.9, weightDecay: 0.01, dampening: 0.1 });
      }
      const dispatches = engine().stats().dispatches - before;
      const out = (await readAll(arena.params)).map((a) => Array.from(a));
      arena.dispose();
      return { out, dispatches };
    } finally {
      setOptimizerChunkElements(null);
    }
  };
  for (const adam of [false, true]) {
    const whole = await run(null, adam), parts = await run(64, adam);
    assertEquals(parts.out, whole.out);
    assert(parts.dispatches > whole.dispatches, "chunked run should use more dispatches");
  }
});
