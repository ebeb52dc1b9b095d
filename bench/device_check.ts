/**
 * One self-contained performance check for a GPU machine with a bare Deno binary and no network:
 * imports only relative project files with no jsr:/npm: dependencies (check with
 * `deno info bench/device_check.ts`). Prints the adapter, the GEMM plans at this run's shapes,
 * matmul 1024^3 and 4096^3 GFLOP/s per GEMM candidate (GPU-mode tiled as planned and at forced
 * tiles, GPU-mode register-blocked, the baseline tiled kernel), per variant conv2d forward / backward-data / backward-weight GFLOP/s at ResNet-32's shapes
 * (batch 128), per variant the ResNet-32 training step (ETF + DR, batch 128 and 512: images/s, GFLOP/s,
 * dispatches per step, host ms per replay), the eval step's images/s, and everything again as one
 * JSON object on the last line. Each section is guarded (a failure is recorded, the rest still
 * runs) and later sections are skipped once the time budget (default 200 s) is spent.
 *
 * Run: `deno run -A bench/device_check.ts [--quick] [--budget 200] [--out file.json]`;
 * `--quick` shrinks every shape for a smoke test on a software adapter.
 * @module
 */
import { gpu, initDevice } from "../gpu/device.ts";
import "../gpu/ops/mod.ts";
import { engine } from "../gpu/engine.ts";
import { gemmPlan, type GemmVariant, kernelMode, TUNING } from "../gpu/kernels/tuning.ts";
import type { TiledConfig } from "../gpu/kernels/matmul_gemm.ts";
import { conv2d, conv2dBackwardFilter, conv2dBackwardInput } from "../gpu/ops/conv2d.ts";
import { matmul } from "../gpu/ops/matmul.ts";
import { type Tensor, tensor } from "../gpu/tensor.ts";
import { convFlops, matmulFlops } from "./flops.ts";
import {
  buildEvalSetup,
  buildTrainSetup,
  dispatchTimes,
  groupDispatchTimes,
  kernelFlops,
  syncFloorMs,
} from "./step_profile.ts";

const args = Deno.args;
const quick = args.includes("--quick");
const argOf = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const budgetMs = Number(argOf("budget") ?? (quick ? 600 : 200)) * 1000;
const outFile = argOf("out");
const start = performance.now();
const elapsed = () => performance.now() - start;

const result: Record<string, unknown> = { quick, errors: [] as string[] };
const errors = result.errors as string[];

function rand(shape: number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.sin(i * 12.9898) * 0.5;
  return tensor(a, shape);
}

/** Runs a section unless the budget is spent; records its error instead of failing. */
async function section(name: string, fn: () => Promise<void>): Promise<void> {
  if (elapsed() > budgetMs) {
    console.log(`[skip] ${name}: time budget spent`);
    errors.push(`${name}: skipped (time budget)`);
    return;
  }
  const t0 = performance.now();
  try {
    await fn();
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    console.log(`[fail] ${name}: ${msg}`);
    errors.push(`${name}: ${msg}`);
  }
  console.log(`  (${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}

/**
 * Mean ms of `run` (which dispatches and returns a tensor to free): one warm-up, then `reps`
 * launches in one submission and one sync (the empty-sync floor subtracted); on a slow adapter
 * (first timed run > 2 s) just that one.
 */
async function timeOp(run: () => Tensor, reps: number, floor: number): Promise<number> {
  const e = engine();
  run().dispose();
  await e.sync();
  let t0 = performance.now();
  run().dispose();
  await e.sync();
  const one = performance.now() - t0;
  if (one > 2000 || reps <= 1) return Math.max(one - floor, 1e-3);
  t0 = performance.now();
  for (let i = 0; i < reps; i++) run().dispose();
  await e.sync();
  return Math.max(performance.now() - t0 - floor, 1e-3) / reps;
}

await initDevice();
const ctx = gpu();
const a = ctx.adapter;
const limits = ctx.device.limits;
result.adapter = {
  description: a.description,
  vendor: a.vendor,
  architecture: a.architecture,
  device: a.device,
  fallback: a.isFallbackAdapter,
  backend: a.backend,
  features: [...ctx.device.features],
  kernelMode: kernelMode(),
  maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
  maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
  maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
};
result.deno = Deno.version.deno;
console.log(`adapter: ${JSON.stringify(result.adapter)}`);
const floor = await syncFloorMs();
result.syncFloorMs = floor;
console.log(`empty submit + sync: ${floor.toFixed(2)} ms`);
const reps = quick ? 2 : 10;

const matmulRes: Record<string, number> = {};
result.matmulGflops = matmulRes;
/** GEMM candidates: variant, tiled tile override (null: planned), baseline tiled kernel. */
interface Candidate {
  name: string;
  variant: GemmVariant;
  force?: [number, number, number, number, number];
  legacy?: boolean;
  only?: number;
}
const CANDIDATES: Candidate[] = [
  { name: "tiled", variant: "tiled" },
  { name: "regblock", variant: "regblock" },
  { name: "tiled_128x128_bk16", variant: "tiled", force: [16, 16, 8, 8, 16] },
  { name: "tiled_128x128_bk8", variant: "tiled", force: [16, 16, 8, 8, 8] },
  { name: "tiled_128x64_bk16", variant: "tiled", force: [16, 16, 8, 4, 16] },
  { name: "tiled_64x64_bk16", variant: "tiled", force: [16, 16, 4, 4, 16] },
  { name: "tiled_legacy", variant: "tiled", legacy: true, only: 1024 },
];
function useCandidate(c: Candidate | null): void {
  TUNING.gpuTiledLegacy = !!c?.legacy;
  const f = c?.force;
  TUNING.gpuTiledForce = f
    ? { variant: "tiled", wgm: f[0], wgn: f[1], tm: f[2], tn: f[3], bk: f[4] } as TiledConfig
    : null;
}
// The plans the tuning picks at this run's shapes (host only).
const plans: Record<string, unknown> = {};
result.plans = plans;
for (
  const [M, N, K, what] of [
    [4096, 4096, 4096, "matmul 4096"],
    [1024, 1024, 1024, "matmul 1024"],
    [131072, 16, 27, "stem fwd"],
    [131072, 16, 144, "32x32x16 fwd"],
    [32768, 32, 288, "16x16x32 fwd"],
    [8192, 64, 576, "8x8x64 fwd"],
    [27, 16, 131072, "stem bwd_weight"],
    [144, 16, 131072, "32x32x16 bwd_weight"],
    [288, 32, 32768, "16x16x32 bwd_weight"],
    [576, 64, 8192, "8x8x64 bwd_weight"],
  ] as [number, number, number, string][]
) {
  for (const variant of ["tiled", "regblock"] as GemmVariant[]) {
    plans[`${what} ${variant}`] = gemmPlan(M, N, K, 1, { variant, allowSplit: true });
  }
}
console.log(`plans: ${JSON.stringify(plans)}`);
for (const n of quick ? [256, 512] : [1024, 4096]) {
  for (const cand of CANDIDATES) {
    if (cand.only && !quick && cand.only !== n) continue;
    await section(`matmul ${n}^3 ${cand.name}`, async () => {
      const A = rand([n, n]), B = rand([n, n]);
      useCandidate(cand);
      try {
        const ms = await timeOp(
          () => matmul(A, B, { variant: cand.variant }),
          n >= 4096 ? 3 : reps,
          floor,
        );
        const gf = matmulFlops(n, n, n) / ms / 1e6;
        matmulRes[`${n}_${cand.name}`] = gf;
        console.log(`matmul ${n}^3 ${cand.name}: ${ms.toFixed(3)} ms, ${gf.toFixed(1)} GFLOP/s`);
      } finally {
        useCandidate(null);
        A.dispose();
        B.dispose();
      }
    });
  }
}

const convRes: Record<string, number> = {};
result.conv2dGflops = convRes;
const convBatch = quick ? 8 : 128;
const SHAPES: [number, number, number][] = [[32, 3, 16], [32, 16, 16], [16, 32, 32], [8, 64, 64]];
for (const variant of ["tiled", "regblock"] as GemmVariant[]) {
  await section(`conv2d ${variant} at ResNet-32 shapes, batch ${convBatch}`, async () => {
    for (const [hw, cin, cout] of SHAPES) {
      const x = rand([convBatch, hw, hw, cin]);
      const w = rand([3, 3, cin, cout]);
      const dy = rand([convBatch, hw, hw, cout]);
      const flops = convBatch * convFlops(hw, hw, cout, 3, 3, cin);
      const tag = `${hw}x${hw}x${cin}->${cout}`;
      const o = { padding: 1, variant };
      try {
        const cases: [string, () => Tensor][] = [
          ["fwd", () => conv2d(x, w, o)],
          ["bwd_data", () => conv2dBackwardInput(dy, w, x.shape, o)],
          ["bwd_weight", () => conv2dBackwardFilter(x, dy, w.shape, o)],
        ];
        for (const [kind, run] of cases) {
          if (kind === "bwd_data" && cin === 3) continue; // the stem needs no input gradient
          const ms = await timeOp(run, reps, floor);
          const gf = flops / ms / 1e6;
          convRes[`${tag}_${kind}_${variant}`] = gf;
          console.log(
            `conv2d ${variant} ${kind} ${tag}: ${ms.toFixed(3)} ms, ${gf.toFixed(1)} GFLOP/s`,
          );
        }
      } finally {
        for (const t of [x, w, dy]) t.dispose();
      }
    }
  });
}

const trainRes: Record<string, unknown>[] = [];
result.trainStep = trainRes;
const gpuDefault = TUNING.gpuVariant;
for (const batch of quick ? [8, 16] : [128, 512]) {
  for (const variant of ["tiled", "regblock"] as GemmVariant[]) {
    await section(`ResNet-32 ETF+DR training step, batch ${batch}, ${variant}`, async () => {
      TUNING.gpuVariant = variant;
      const e = engine();
      const s = buildTrainSetup({ batch, head: "etf" });
      try {
        const tb = performance.now();
        s.step.run(); // eager: compiles the pipelines
        await e.sync();
        const eagerMs = performance.now() - tb;
        s.step.run(); // capture + run
        await e.sync();
        // One step at a time (write + replay + sync), as a readback-every-step loop would.
        const single: number[] = [], host: number[] = [];
        for (let i = 0; i < (quick ? 1 : 3); i++) {
          const t0 = performance.now();
          s.step.write(s.batch);
          s.step.run();
          host.push(performance.now() - t0);
          await e.sync();
          single.push(performance.now() - t0);
        }
        // Steady state, as fit runs: K steps back to back, one sync at the end.
        const K = quick ? 2 : 20;
        const t0 = performance.now();
        for (let i = 0; i < K; i++) {
          s.step.write(s.batch);
          s.step.run();
        }
        await e.sync();
        const ms = (performance.now() - t0) / K;
        const min = (xs: number[]) => Math.min(...xs);
        const r = {
          batch,
          variant,
          firstEagerStepMs: eagerMs,
          stepMs: ms,
          imagesPerSec: batch / (ms / 1000),
          gflops: (s.flops.train * batch) / ms / 1e6,
          singleStepWithSyncMs: min(single),
          hostMsPerReplay: min(host),
          dispatchesPerStep: s.step.dispatchCount,
          gflopPerImage: s.flops.train / 1e9,
        };
        const rx: Record<string, unknown> = r;
        trainRes.push(rx);
        console.log(
          `train ${variant} batch ${batch}: ${ms.toFixed(2)} ms/step, ${
            r.imagesPerSec.toFixed(1)
          } images/s, ` +
            `${r.gflops.toFixed(1)} GFLOP/s, ${r.dispatchesPerStep} dispatches, host ${
              r.hostMsPerReplay.toFixed(2)
            } ms/replay, single step + sync ${r.singleStepWithSyncMs.toFixed(1)} ms`,
        );
        if (variant === gpuDefault) {
          // Per-kernel device time of the step from timestamp queries (where the device has them).
          const { step: rec } = e.capture(() => s.step.body());
          try {
            const times = await dispatchTimes(rec.records);
            if (times) {
              const rows = groupDispatchTimes(
                rec.records,
                times,
                (d) => d.name,
                (n) => kernelFlops(n, s.flops, batch),
              );
              const total = rows.reduce((a, k) => a + k.ms, 0);
              rx.timestampStepMs = total;
              rx.timestampKernels = rows.map((k) => ({
                name: k.name,
                launches: k.launches,
                ms: k.ms,
                gflops: k.flops ? k.flops / k.ms / 1e6 : null,
              }));
              console.log(
                `  timestamps: ${total.toFixed(2)} ms of device time per step; ` +
                  rows.slice(0, 6).map((k) => `${k.name} ${k.ms.toFixed(2)} ms`).join(", "),
              );
            }
          } finally {
            rec.dispose();
          }
        }
        if (batch === (quick ? 8 : 128)) {
          const ev = buildEvalSetup(s.model, s.batch);
          try {
            ev.runFull(s.batch);
            ev.runFull(s.batch);
            await e.sync();
            const d0 = e.stats().dispatches;
            const t1 = performance.now();
            for (let i = 0; i < K; i++) ev.runFull(s.batch);
            await e.sync();
            const ems = (performance.now() - t1) / K;
            const er = {
              batch,
              stepMs: ems,
              imagesPerSec: batch / (ems / 1000),
              gflops: (s.flops.forward * batch) / ems / 1e6,
              dispatchesPerStep: (e.stats().dispatches - d0) / K,
            };
            result[`evalStep_${variant}`] = er;
            console.log(
              `eval ${variant} batch ${batch}: ${ems.toFixed(2)} ms/step, ${
                er.imagesPerSec.toFixed(1)
              } ` +
                `images/s, ${er.dispatchesPerStep} dispatches`,
            );
          } finally {
            ev.dispose();
          }
        }
      } finally {
        TUNING.gpuVariant = gpuDefault;
        s.step.dispose();
        s.model.dispose();
      }
    });
  }
}

const best = Math.max(0, ...Object.values(matmulRes));
result.bestMatmulGflops = best;
for (const r of trainRes) r.fractionOfBestMatmul = best > 0 ? (r.gflops as number) / best : null;
result.totalSeconds = elapsed() / 1000;
if (outFile) await Deno.writeTextFile(outFile, JSON.stringify(result, null, 2));
console.log(JSON.stringify(result));
