/**
 * The whole ResNet-32 step (CIFAR-10, width 1, 32x32, batch 128), as `fit`/`evaluate` run it:
 * training with the ETF head + DR loss, training with a learnable Dense head + cross-entropy (both
 * SGD momentum 0.9, wd 2e-4), and the evaluation step (forward only). Each case's warm-up builds
 * the model and runs the eager first step and the capture; every timed iteration writes the batch,
 * replays the captured step and awaits `engine().sync()`. A 1024^3 matmul of the adapter's tuned
 * GEMM variant runs first, so each step's GFLOP/s is also given as a fraction of the best matmul
 * measured in the same run. Prints images/s, GFLOP/s, that fraction, dispatches per step, host ms
 * per replay and the adapter.
 * Run: `deno bench -A bench/train_step_bench.ts` (`BENCH_BATCH=8` / `BENCH_ITERS=3` to resize).
 * @module
 */
import { adapterLabel, gpu, initDevice } from "../gpu/device.ts";
import "../gpu/ops/mod.ts";
import { engine } from "../gpu/engine.ts";
import { kernelMode } from "../gpu/kernels/tuning.ts";
import { matmul } from "../gpu/ops/matmul.ts";
import { type Tensor, tensor } from "../gpu/tensor.ts";
import type { EvalStep } from "../nn/training/evaluate.ts";
import { matmulFlops } from "./flops.ts";
import { buildEvalSetup, buildTrainSetup, type TrainSetup } from "./step_profile.ts";

await initDevice();
const BATCH = Number(Deno.env.get("BENCH_BATCH") ?? 128);
const ITERS = Number(Deno.env.get("BENCH_ITERS") ?? 2);
const MATMUL_ITERS = 3;

interface Row {
  name: string;
  ms: number;
  imagesPerSec: number;
  gflops: number;
  dispatches: number;
  hostMs: number;
}
const rows: Row[] = [];
let bestMatmul = 0;

function describeAdapter(): string {
  const a = gpu().adapter;
  return `${adapterLabel(a)}, kernel mode ${kernelMode()}`;
}

function rand(shape: number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.sin(i * 12.9898) * 0.5;
  return tensor(a, shape);
}

function report(r: Row): void {
  rows.push(r);
  const frac = bestMatmul > 0 ? `, ${(r.gflops / bestMatmul).toFixed(2)} of best matmul` : "";
  console.log(
    `${r.name}: ${r.ms.toFixed(0)} ms/step, ${r.imagesPerSec.toFixed(2)} images/s, ` +
      `${r.gflops.toFixed(2)} GFLOP/s${frac}, ${r.dispatches} dispatches/step, ` +
      `${r.hostMs.toFixed(2)} ms host per write + replay`,
  );
}

console.log(`adapter: ${describeAdapter()}; ResNet-32 batch ${BATCH}, ${ITERS} timed steps`);

/** The case now holding GPU memory: finishes its report and frees it when the next starts. */
let finishCurrent: (() => void) | null = null;
function startCase(finish: () => void): void {
  finishCurrent?.();
  finishCurrent = finish;
}

// The reference: the tuned GEMM at 1024^3.
{
  const n = 1024;
  let A: Tensor | null = null, B: Tensor | null = null;
  let calls = 0, total = 0;
  Deno.bench({
    name: "matmul 1024^3 (tuned variant, reference)",
    n: MATMUL_ITERS,
    warmup: 1,
    async fn(b) {
      if (!A || !B) {
        const a = A = rand([n, n]), bb = B = rand([n, n]);
        startCase(() => {
          a.dispose();
          bb.dispose();
          console.log(`matmul 1024^3: ${bestMatmul.toFixed(2)} GFLOP/s`);
        });
      }
      b.start();
      const t0 = performance.now();
      matmul(A, B).dispose();
      await engine().sync();
      const dt = performance.now() - t0;
      b.end();
      if (calls++ === 0) return; // the first call compiles
      total += dt;
      bestMatmul = matmulFlops(n, n, n) / (total / (calls - 1)) / 1e6;
    },
  });
}

/** Running means of a case's timed iterations (every call after the first). */
class Timing {
  calls = 0;
  total = 0;
  host = 0;
  add(ms: number, hostMs: number): void {
    if (this.calls++ === 0) return;
    this.total += ms;
    this.host += hostMs;
  }
  row(name: string, flopsPerStep: number, dispatches: number): Row {
    const k = Math.max(1, this.calls - 1);
    const ms = this.total / k;
    return {
      name,
      ms,
      imagesPerSec: BATCH / (ms / 1000),
      gflops: flopsPerStep / ms / 1e6,
      dispatches,
      hostMs: this.host / k,
    };
  }
}

/** A training-step case: the warm-up builds, runs eagerly and captures; then timed replays. */
function trainCase(name: string, head: "etf" | "dense"): void {
  let s: TrainSetup | null = null;
  const t = new Timing();
  Deno.bench({
    name,
    n: ITERS,
    warmup: 1,
    async fn(b) {
      const e = engine();
      if (!s) {
        const setup = s = buildTrainSetup({ batch: BATCH, head });
        setup.step.run(); // eager: compiles the pipelines
        setup.step.run(); // records the capture and runs it
        await e.sync();
        startCase(() => {
          report(t.row(name, setup.flops.train * BATCH, setup.step.dispatchCount));
          setup.step.dispose();
          setup.model.dispose();
        });
      }
      const step = s.step;
      b.start();
      const t0 = performance.now();
      step.write(s.batch);
      step.run();
      const t1 = performance.now();
      await e.sync();
      const dt = performance.now() - t0;
      b.end();
      t.add(dt, t1 - t0);
    },
  });
}

trainCase("train step ETF + DR (captured)", "etf");
trainCase("train step Dense + CE (captured)", "dense");

{
  let s: TrainSetup | null = null;
  let ev: EvalStep | null = null;
  let dispatches = 0;
  const t = new Timing();
  const name = "eval step (forward, captured)";
  Deno.bench({
    name,
    n: ITERS,
    warmup: 1,
    async fn(b) {
      const e = engine();
      if (!s || !ev) {
        const setup = s = buildTrainSetup({ batch: BATCH, head: "etf" });
        const evs = ev = buildEvalSetup(s.model, s.batch);
        evs.runFull(s.batch); // eager
        evs.runFull(s.batch); // capture + run
        await e.sync();
        startCase(() => {
          report(t.row(name, setup.flops.forward * BATCH, dispatches));
          evs.dispose();
          setup.step.dispose();
          setup.model.dispose();
        });
      }
      b.start();
      const d0 = e.stats().dispatches;
      const t0 = performance.now();
      ev.runFull(s.batch);
      const t1 = performance.now();
      await e.sync();
      const dt = performance.now() - t0;
      b.end();
      dispatches = e.stats().dispatches - d0;
      t.add(dt, t1 - t0);
    },
  });
}

globalThis.addEventListener("unload", () => {
  finishCurrent?.();
  finishCurrent = null;
  console.log(`\nadapter: ${describeAdapter()}`);
  console.log(`best matmul 1024^3: ${bestMatmul.toFixed(2)} GFLOP/s`);
  for (const r of rows) {
    console.log(
      `${r.name.padEnd(36)} ${r.ms.toFixed(0).padStart(7)} ms ${
        r.imagesPerSec.toFixed(2).padStart(8)
      } img/s ${r.gflops.toFixed(2).padStart(7)} GFLOP/s ${
        bestMatmul > 0 ? (r.gflops / bestMatmul).toFixed(2).padStart(5) : "  n/a"
      } of matmul ${String(r.dispatches).padStart(5)} dispatches ${
        r.hostMs.toFixed(2).padStart(7)
      } ms host (write + replay)`,
    );
  }
});
