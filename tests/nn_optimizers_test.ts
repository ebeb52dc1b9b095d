// Optimizer wrappers (nn/optimizers): SGD/AdamW over 3 steps against host f64 references of
// torch.optim.SGD/AdamW, with a per-step learning-rate schedule written by the wrapper, decay
// exclusion by Weight.decay and by name, state save/restore, and clear errors.
import { assert, assertEquals, assertThrows } from "@std/assert";
import { initDevice } from "../gpu/device.ts";
import { ParamArena } from "../gpu/param_arena.ts";
import { Rng } from "../gpu/rng.ts";
import { readAll, type Tensor, tensor } from "../gpu/tensor.ts";
import { AdamW, type Optimizer, optimizerFromConfig, SGD } from "../nn/optimizers/mod.ts";
import { CosineSchedule } from "../nn/schedules.ts";
import type { Weight } from "../nn/types.ts";

await initDevice();

const SPECS: [string, number[], boolean][] = [
  ["conv.weight", [3, 5], true],
  ["bn.weight", [4], true], // excluded by name in some tests
  ["fc.bias", [3], false], // Weight.decay false
  ["fc.weight", [2, 7], true],
];

function randn(rng: Rng, n: number): Float64Array {
  return Float64Array.from({ length: n }, () => rng.normal());
}

function setup(seed: number) {
  const rng = new Rng(seed);
  const init = SPECS.map(([, s]) => randn(rng, s.reduce((a, b) => a * b, 1)));
  const weights: Weight[] = SPECS.map(([name, s, decay], i) => ({
    name,
    value: tensor(Float32Array.from(init[i]), s),
    trainable: true,
    decay,
  }));
  const grads = [0, 1, 2].map(() => init.map((a) => randn(rng, a.length)));
  return { init, weights, grads };
}

function run(opt: Optimizer, seed: number, lrs: number[], bySchedule = false) {
  const { init, weights, grads } = setup(seed);
  const arena = ParamArena.pack(
    weights.map((w) => ({ name: w.name, value: w.value, decay: opt.decays(w) })),
  );
  opt.attach(arena);
  for (let s = 0; s < 3; s++) {
    if (bySchedule) assertEquals(opt.applySchedule(s, 0), lrs[s]);
    else opt.setLearningRate(lrs[s]);
    arena.setGrads(grads[s].map((g, i) => tensor(Float32Array.from(g), SPECS[i][1])));
    opt.step();
  }
  return { init, grads, arena, decayed: weights.map((w) => opt.decays(w)) };
}

function close(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string) {
  assertEquals(got.length, want.length, what);
  for (let i = 0; i < want.length; i++) {
    assert(
      Math.abs(got[i] - want[i]) <= tol * (1 + Math.abs(want[i])),
      `${what}[${i}]: got ${got[i]}, want ${want[i]}`,
    );
  }
}

function sgdRef(
  init: Float64Array[],
  grads: Float64Array[][],
  decayed: boolean[],
  lrs: number[],
  o: { momentum: number; wd: number; nesterov: boolean; dampening: number },
): Float64Array[] {
  return init.map((p0, i) => {
    const p = Float64Array.from(p0);
    let buf: Float64Array | null = null as Float64Array | null;
    for (let s = 0; s < 3; s++) {
      const g = grads[s][i].map((v, j) => v + (decayed[i] ? o.wd * p[j] : 0));
      let d: Float64Array = g;
      if (o.momentum) {
        buf = buf
          ? buf.map((b, j) => o.momentum * b + (1 - o.dampening) * g[j])
          : Float64Array.from(g);
        d = o.nesterov ? g.map((v, j) => v + o.momentum * buf![j]) : buf;
      }
      for (let j = 0; j < p.length; j++) p[j] -= lrs[s] * d[j];
    }
    return p;
  });
}

for (
  const o of [
    { momentum: 0.9, wd: 0.01, nesterov: false, dampening: 0, exclude: false },
    { momentum: 0.9, wd: 0.05, nesterov: true, dampening: 0, exclude: true },
    { momentum: 0.5, wd: 0.02, nesterov: false, dampening: 0.3, exclude: false },
    { momentum: 0, wd: 0.1, nesterov: false, dampening: 0, exclude: true },
  ]
) {
  Deno.test(`SGD wrapper matches torch.optim.SGD over 3 steps ${JSON.stringify(o)}`, async () => {
    const opt = new SGD({
      learningRate: 0.1,
      momentum: o.momentum,
      weightDecay: o.wd,
      nesterov: o.nesterov,
      dampening: o.dampening,
      excludeFromWeightDecay: o.exclude ? /^bn\./ : undefined,
    });
    const lrs = [0.1, 0.05, 0.2];
    const { init, grads, arena, decayed } = run(opt, 7, lrs);
    assertEquals(decayed, [true, !o.exclude, false, true]);
    const want = sgdRef(init, grads, decayed, lrs, o);
    const got = await readAll(arena.params);
    got.forEach((g, i) => close(g, want[i], 2e-5, SPECS[i][0]));
    assertEquals(opt.learningRate, 0.2);
  });
}

Deno.test("AdamW wrapper matches torch.optim.AdamW over 3 steps with a schedule", async () => {
  const sched = new CosineSchedule(0.01, 3, 0, 0.001);
  const opt = new AdamW({
    learningRate: sched,
    weightDecay: 0.1,
    beta1: 0.8,
    beta2: 0.95,
    epsilon: 1e-6,
  });
  const lrs = [0, 1, 2].map((e) => sched.lr(e, 0));
  const { init, grads, arena, decayed } = run(opt, 11, lrs, true);
  const want = init.map((p0, i) => {
    const p = Float64Array.from(p0);
    const m = new Float64Array(p.length), v = new Float64Array(p.length);
    for (let s = 0; s < 3; s++) {
      const t = s + 1, lr = lrs[s];
      for (let j = 0; j < p.length; j++) {
        if (decayed[i]) p[j] *= 1 - lr * 0.1;
        const g = grads[s][i][j];
        m[j] = 0.8 * m[j] + 0.2 * g;
        v[j] = 0.95 * v[j] + 0.05 * g * g;
        const bc1 = 1 - 0.8 ** t, bc2 = 1 - 0.95 ** t;
        p[j] -= (lr / bc1) * m[j] / (Math.sqrt(v[j]) / Math.sqrt(bc2) + 1e-6);
      }
    }
    return p;
  });
  const got = await readAll(arena.params);
  got.forEach((g, i) => close(g, want[i], 3e-5, SPECS[i][0]));
});

Deno.test("optimizer state saves per parameter and restores into a new arena layout", async () => {
  const opt = new AdamW({ learningRate: 0.01 });
  const { arena } = run(opt, 3, [0.01, 0.01, 0.01]);
  const state = await opt.saveState();
  assertEquals(
    Object.keys(state).sort(),
    [
      ...SPECS.map(([n]) => `exp_avg.${n}`),
      ...SPECS.map(([n]) => `exp_avg_sq.${n}`),
      "step",
    ].sort(),
  );
  assertEquals(Array.from(state.step.data), [3]);
  // Restore into an optimizer attached to an arena packed in another order (decay flags differ).
  const opt2 = optimizerFromConfig(opt.getConfig()) as AdamW;
  assertEquals(opt2.getConfig(), opt.getConfig());
  opt2.loadState(state); // before attach: kept until attach
  const vals: Tensor[] = SPECS.map(([, s]) =>
    tensor(new Float32Array(s.reduce((a, b) => a * b)), s)
  );
  const arena2 = ParamArena.pack(
    SPECS.map(([name], i) => ({ name, value: vals[i], decay: i % 2 === 0 })),
    { adam: true },
  );
  opt2.attach(arena2);
  const back = await opt2.saveState();
  for (const k of Object.keys(state)) {
    assertEquals(Array.from(back[k].data), Array.from(state[k].data), k);
  }
  assert(arena.slots[0].offset !== undefined);
  // Mismatches are named.
  const bad = { ...state };
  delete bad["exp_avg.fc.bias"];
  bad["exp_avg.nope"] = { shape: [1], data: new Float32Array(1) };
  bad["step"] = { shape: [2], data: new Float32Array(2) };
  const e = assertThrows(() => opt2.loadState(bad));
  assert(/missing 'exp_avg\.fc\.bias'/.test((e as Error).message), (e as Error).message);
  assert(/unexpected 'exp_avg\.nope'/.test((e as Error).message));
  assert(/'step' has shape \[2\], expected \[1\]/.test((e as Error).message));
});

Deno.test("optimizers reject bad options and use before attach", () => {
  assertThrows(() => new SGD({ learningRate: -1 }), Error, "learningRate");
  assertThrows(() => new SGD({ learningRate: 0.1, nesterov: true }), Error, "Nesterov");
  assertThrows(() => new SGD({ learningRate: 0.1, weightDecay: NaN }), Error, "weightDecay");
  assertThrows(() => new AdamW({ learningRate: 0.1, beta1: 1 }), Error, "betas");
  const opt = new SGD({ learningRate: 0.1 });
  assertThrows(() => opt.setLearningRate(0.1), Error, "not attached");
  assertThrows(() => opt.step(), Error, "not attached");
});
