// GEMM autotuning (gpu/ops/gemm_tune.ts): the candidate plans, the trial runs' redirected writes,
// the measurement, the kept plans the dispatcher then runs (and their export/import), and fit's
// autotune option on a fused ResNet, whose results must be those of an untuned run (the trial runs
// write nothing the work reads: BatchNorm running statistics would show it).
import { assert, assertEquals, assertGreater, assertThrows } from "@std/assert";
import { initDevice } from "../gpu/device.ts";
import { engine, type Launch } from "../gpu/engine.ts";
import { timestampsAvailable } from "../gpu/kernel_timer.ts";
import { tileOf } from "../gpu/kernels/matmul_gemm.ts";
import {
  gemmCandidates,
  gemmPlan,
  planLabel,
  type PlanOptions,
  setKernelMode,
  TUNING,
} from "../gpu/kernels/tuning.ts";
import {
  clearKeptPlans,
  exportKeptPlans,
  importKeptPlans,
  keptPlanCount,
  tuneGemms,
  writableBindings,
} from "../gpu/ops/gemm_tune.ts";
import { randomUniform } from "../gpu/ops/creation.ts";
import { matmul } from "../gpu/ops/matmul.ts";
import "../gpu/ops/mod.ts";
import { Rng } from "../gpu/rng.ts";
import { tidy } from "../gpu/scope.ts";
import { DotRegressionLoss } from "../nn/losses/mod.ts";
import { resnet32 } from "../nn/models/resnet32.ts";
import { SGD } from "../nn/optimizers/mod.ts";
import { compile, fit } from "../nn/training/mod.ts";
import type { TuneSummary } from "../nn/training/tune_summary.ts";
import { prototypeData, prototypeSource } from "./fixtures/prototype_data.ts";
import { useFastCompile } from "./fast_compile.ts";
import { assertCloseToScale } from "./gpu_op_helpers.ts";

useFastCompile();
await initDevice();

function hostMatmul(a: Float32Array, b: Float32Array, M: number, K: number, N: number) {
  const c = new Float32Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let k = 0; k < K; k++) {
      const v = a[i * K + k];
      for (let j = 0; j < N; j++) c[i * N + j] += v * b[k * N + j];
    }
  }
  return c;
}

/** Every launch `fn` dispatches. */
function launchesOf(fn: () => void): Launch[] {
  const e = engine(), dispatch = e.dispatch;
  const seen: Launch[] = [];
  e.dispatch = (l: Launch) => {
    seen.push(l);
    dispatch.call(e, l);
  };
  try {
    fn();
  } finally {
    e.dispatch = dispatch;
  }
  return seen;
}

Deno.test("gemm tune: writableBindings reads the read_write storage declarations", () => {
  const code = `
@group(0) @binding(0) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(1) var<storage,read_write> out: array<f32>;
@group(0)   @binding(2)   var<storage , read_write >  err: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;`;
  assertEquals([...writableBindings(code)].sort(), [1, 2]);
  assertEquals(writableBindings("@group(0) @binding(0) var<storage, read> a: array<f32>;").size, 0);
});

Deno.test("gemm tune: candidates start with the model's plan, differ, and respect the limits", () => {
  for (const mode of ["cpu", "gpu"] as const) {
    setKernelMode(mode);
    try {
      for (
        const [M, N, K, opts] of [
          [4096, 16, 144, { allowSplit: false }],
          [144, 32, 8192, { allowSplit: true }],
          [512, 64, 256, {}],
        ] as [number, number, number, PlanOptions][]
      ) {
        const c = gemmCandidates(M, N, K, 1, opts, 5);
        assertEquals(c[0], gemmPlan(M, N, K, 1, opts), `${mode} ${M}x${N}x${K}`);
        assertGreater(c.length, 1);
        assert(c.length <= 5);
        assertEquals(new Set(c.map(planLabel)).size, c.length, "duplicate candidates");
        const variant = mode === "cpu" ? "regblock" : "tiled";
        assert(c.every((p) => p.config.variant === variant));
        if (!opts.allowSplit) assert(c.every((p) => p.splits === 1), c.map(planLabel).join("; "));
        if (mode === "cpu") {
          // Fast-compile limits hold for every candidate, not only the model's.
          const maxAcc = Math.max(TUNING.rbFastAcc, TUNING.rbSmallAcc);
          assert(
            c.every((p) => p.config.variant === "regblock" && p.config.tm * p.config.tn <= maxAcc),
          );
        }
      }
      // Nothing to choose: a forced tile.
      assertEquals(gemmCandidates(512, 64, 256, 1, { tm: 8, tn: 8 }, 5).length, 1);
    } finally {
      setKernelMode(null);
    }
  }
});

Deno.test("gemm tune: a matmul is measured, keeps a plan no slower than the model's, and runs it", async () => {
  if (!timestampsAvailable()) return;
  clearKeptPlans();
  const M = 192, K = 96, N = 40;
  const a = randomUniform([M, K], new Rng(1), -1, 1);
  const b = randomUniform([K, N], new Rng(2), -1, 1);
  const want = hostMatmul(await a.data() as Float32Array, await b.data() as Float32Array, M, K, N);
  const r = await tuneGemms(() => void matmul(a, b), { candidates: 4, reps: 2 });
  assert(r.available);
  assertEquals(r.gemms.length, 1);
  const g = r.gemms[0];
  assertEquals([g.name, g.M, g.N, g.K], ["matmul", M, N, K]);
  assertEquals(g.candidates, 4);
  assert(g.modelMs > 0 && g.keptMs > 0 && g.keptMs <= g.modelMs, JSON.stringify(g));
  assertEquals(g.kept === g.model ? 0 : 1, r.changed);
  assertEquals(keptPlanCount(), 1);
  assertCloseToScale(await matmul(a, b).data(), want, "with the kept plan", 1e-5);

  // The dispatcher runs the kept plan: import another one for the same GEMM and look at the grid.
  const saved = exportKeptPlans();
  assertEquals(saved.plans.length, 1);
  const other = {
    config: { variant: "regblock" as const, wgm: 8, wgn: 1, tm: 4, tn: 4 },
    splits: 1,
  };
  clearKeptPlans();
  assertEquals(importKeptPlans({ ...saved, plans: [[saved.plans[0][0], other]] }), 1);
  const launches = launchesOf(() => tidy(() => void matmul(a, b)));
  assertEquals(launches.length, 1);
  const { tileM, tileN } = tileOf(other.config);
  const [x, y = 1, z = 1] = launches[0].workgroups;
  assertEquals(x * y * z, Math.ceil(M / tileM) * Math.ceil(N / tileN));
  assertCloseToScale(await matmul(a, b).data(), want, "with the imported plan", 1e-5);
  // Plans measured on another adapter are not imported.
  clearKeptPlans();
  assertEquals(importKeptPlans({ adapter: "another GPU", plans: saved.plans }), 0);
  assertEquals(keptPlanCount(), 0);
  assertEquals(importKeptPlans(JSON.parse(JSON.stringify(saved))), 1);
  clearKeptPlans();
});

Deno.test("gemm tune: tuneGemms refuses to nest, and the trial runs write only scratch", async () => {
  if (!timestampsAvailable()) return;
  clearKeptPlans();
  const a = randomUniform([64, 32], new Rng(3), -1, 1);
  const b = randomUniform([32, 16], new Rng(4), -1, 1);
  await tuneGemms(() => {
    assertThrows(() => tuneGemms(() => void matmul(a, b)), Error, "inside tuneGemms");
    void matmul(a, b);
  }, { candidates: 2, reps: 1 });
  // Every trial launch binds scratch for what it writes; the real launch binds its output.
  clearKeptPlans();
  const outputs = new Set<GPUBuffer>();
  const e = engine(), dispatch = e.dispatch;
  e.dispatch = (l: Launch) => {
    for (const i of writableBindings(l.code)) outputs.add(l.bindings[i].storage.buffer);
    dispatch.call(e, l);
  };
  try {
    await tuneGemms(() => void matmul(a, b), { candidates: 3, reps: 2 });
  } finally {
    e.dispatch = dispatch;
  }
  // 6 trial launches share one scratch buffer; the real one writes the result: 2 buffers.
  assertEquals(outputs.size, 2);
  clearKeptPlans();
});

// A short fused-ResNet run with and without autotuning, from the same weights and batches.
async function trainRun(autotune: boolean) {
  clearKeptPlans();
  TUNING.autotuneOptions = { candidates: 3, reps: 2, margin: 0.03 };
  const data = prototypeData(9, { classes: 4, count: 32, size: 8, channels: 3 });
  const model = resnet32({ numClasses: 4, head: "etf", widthMultiplier: 0.5, seed: 2 });
  compile(model, {
    optimizer: new SGD({ learningRate: 0.01, momentum: 0.9 }),
    loss: new DotRegressionLoss(),
  });
  const h = await fit(model, prototypeSource(data, 8, { shuffle: true }), {
    epochs: 2,
    seed: 1,
    verbose: 0,
    autotune,
  });
  const weights = await Promise.all(
    model.weights().map(async (w) => ({ trainable: w.trainable, v: await w.value.data() })),
  );
  const kept = keptPlanCount();
  clearKeptPlans();
  return { loss: h.history.loss, params: h.params, weights, kept };
}

Deno.test("gemm tune: fit with autotune trains as without it (ResNet-32, fused blocks)", async () => {
  if (!timestampsAvailable()) return;
  const plain = await trainRun(false);
  const tuned = await trainRun(true);
  assertEquals(plain.params.autotune, undefined);
  const s = (tuned.params.autotune as TuneSummary[])[0];
  assert(s.available);
  assertEquals(s.batchSize, 8);
  assertGreater(s.gemms, 10);
  assert(tuned.kept >= s.gemms);
  assert(s.keptMs <= s.modelMs && s.keptMs > 0, JSON.stringify(s));
  for (let i = 0; i < plain.loss.length; i++) {
    assert(
      Math.abs(tuned.loss[i] - plain.loss[i]) <= 1e-4 * Math.abs(plain.loss[0]),
      `loss ${tuned.loss} vs ${plain.loss}`,
    );
  }
  // Weights and BatchNorm running statistics (non-trainable): a trial run that wrote the running
  // statistics would have moved them once per trial.
  let nonTrainable = 0;
  plain.weights.forEach((w, i) => {
    if (!w.trainable) nonTrainable++;
    assertCloseToScale(
      tuned.weights[i].v,
      w.v,
      `weight ${i} (${w.trainable ? "trainable" : "running statistic"})`,
      1e-3,
    );
  });
  assertGreater(nonTrainable, 0);
});
