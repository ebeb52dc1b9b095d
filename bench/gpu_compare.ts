/**
 * collapse against PyTorch on the same card, in one call: collapse's training step (the captured
 * fit path) for ResNet-32 (ETF + DR and Dense + CE, batch 128 and 512, 32x32) and ResNet-50 (ETF +
 * DR, batch 64 and 256, 224x224), and ResNet-32 ETF + DR at the smallest batch again with the
 * fused blocks' conv outputs stored in half precision (`TUNING.halfActivations`) and once more
 * with GEMM plans measured on the card (`TrainStep.tune`, gpu/ops/gemm_tune.ts), then the PyTorch
 * peer (peers/torch_cuda.py, a subprocess) on the
 * same cases in its five modes, and a table of images/s with collapse / PyTorch ratios. Imports
 * only relative files with no jsr:/npm: dependencies, so a bare Deno binary runs it on a GPU
 * machine with no network (`deno info bench/gpu_compare.ts` lists none).
 *
 * Run: `deno run -A bench/gpu_compare.ts [--quick] [--out f.json] [--budget 540]
 * [--models resnet32,resnet50] [--torch-modes eager_fp32,...] [--skip-torch] [--skip-ours]
 * [--python python3] [--min-seconds 2]`; bench/gpu_run.sh runs it on the bare GPU machine. `--quick` shrinks everything (ResNet-32 at batch 8, ResNet-50 at batch 2 and
 * 64x64, a couple of steps) to rehearse the script on a software adapter; PyTorch then runs on the
 * CPU when there is no CUDA. The budget (seconds for the whole script) goes first to collapse's
 * cases, the rest to PyTorch, which runs mode-major (every case in eager fp32 first) and skips
 * what no longer fits.
 * @module
 */
import { adapterLabel, gpu, initDevice } from "../gpu/device.ts";
import "../gpu/ops/mod.ts";
import { engine } from "../gpu/engine.ts";
import { kernelMode, TUNING } from "../gpu/kernels/tuning.ts";
import { clearKeptPlans } from "../gpu/ops/gemm_tune.ts";
import { buildTrainSetup } from "./step_profile.ts";
import { runTorchPeer, type TorchCase } from "./peers/torch_peer.ts";

const args = Deno.args;
const flag = (name: string) => args.includes(`--${name}`);
const argOf = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const quick = flag("quick");
const budgetS = Number(argOf("budget") ?? (quick ? 900 : 540));
const minSeconds = Number(argOf("min-seconds") ?? (quick ? 0 : 2));
const models = (argOf("models") ?? "resnet32,resnet50").split(",");
// Cheapest first, torch.compile (tens of seconds per case) last: a budget cut drops the last.
const torchModes = (argOf("torch-modes") ?? "eager_fp32,cuda_graph,eager_tf32,cl_bf16,compile")
  .split(",");
const start = performance.now();
const elapsedS = () => (performance.now() - start) / 1000;

/** A case both frameworks run. */
interface Case {
  model: "resnet32" | "resnet50";
  batch: number;
  head: "etf" | "dense";
  size: number;
  classes: number;
  /** Conv outputs of the fused blocks in binary16 (collapse only; PyTorch's row is the f32 one). */
  half?: boolean;
  /** GEMM plans measured on the card before the capture (collapse only: TUNING.autotune). */
  tuned?: boolean;
}
const CASES: Case[] = [];
if (models.includes("resnet32")) {
  for (const batch of quick ? [8] : [128, 512]) {
    for (const head of ["etf", "dense"] as const) {
      CASES.push({ model: "resnet32", batch, head, size: 32, classes: 10 });
    }
  }
}
if (models.includes("resnet32")) {
  CASES.push({
    model: "resnet32",
    batch: quick ? 8 : 128,
    head: "etf",
    size: 32,
    classes: 10,
    half: true,
  });
}
if (models.includes("resnet32")) {
  CASES.push({
    model: "resnet32",
    batch: quick ? 8 : 128,
    head: "etf",
    size: 32,
    classes: 10,
    tuned: true,
  });
}
if (models.includes("resnet50")) {
  for (const batch of quick ? [2] : [64, 256]) {
    CASES.push({ model: "resnet50", batch, head: "etf", size: quick ? 64 : 224, classes: 1000 });
  }
}

/** collapse's figures for a case. */
interface Ours extends Case {
  imagesPerSec?: number;
  msPerStep?: number;
  gflops?: number;
  dispatchesPerStep?: number;
  hostMsPerReplay?: number;
  firstStepMs?: number;
  steps?: number;
  /** Autotuned cases: what the measurement found. */
  autotune?: { gemms: number; changed: number; modelMs: number; keptMs: number; seconds: number };
  error?: string;
}

async function measureOurs(c: Case): Promise<Ours> {
  const e = engine();
  TUNING.halfActivations = !!c.half; // read while the step is built and captured
  const s = buildTrainSetup({
    model: c.model,
    batch: c.batch,
    head: c.head,
    size: c.size,
    numClasses: c.classes,
  });
  try {
    const t0 = performance.now();
    s.step.run(); // eager: compiles the pipelines
    await e.sync();
    const firstStepMs = performance.now() - t0;
    let autotune: Ours["autotune"];
    if (c.tuned) {
      const { gemms, changed, modelMs, keptMs, seconds } = await s.step.tune();
      autotune = { gemms: gemms.length, changed, modelMs, keptMs, seconds };
    }
    s.step.run(); // capture + first replay
    await e.sync();
    // Estimate, then K steps back to back with one sync at the end (as fit runs).
    let t1 = performance.now();
    s.step.write(s.batch);
    s.step.run();
    const host = performance.now() - t1;
    await e.sync();
    const est = performance.now() - t1;
    const K = Math.max(2, Math.min(200, Math.ceil((minSeconds * 1000) / est)));
    t1 = performance.now();
    for (let i = 0; i < K; i++) {
      s.step.write(s.batch);
      s.step.run();
    }
    await e.sync();
    const ms = (performance.now() - t1) / K;
    return {
      ...c,
      msPerStep: ms,
      imagesPerSec: c.batch / (ms / 1000),
      gflops: (s.flops.train * c.batch) / ms / 1e6,
      dispatchesPerStep: s.step.dispatchCount,
      hostMsPerReplay: host,
      firstStepMs,
      steps: K,
      autotune,
    };
  } finally {
    if (c.tuned) clearKeptPlans(); // later cases run the cost model's plans
    TUNING.halfActivations = false;
    s.step.dispose();
    s.model.dispose();
  }
}

await initDevice();
const a = gpu().adapter;
const adapter = a.description || a.device;
console.log(`adapter: ${adapterLabel(a)}; kernels: ${kernelMode()}`);
const ours: Ours[] = [];
for (const c of CASES) {
  const tag = `${c.model} batch ${c.batch} ${c.head}${c.half ? " f16 activations" : ""}${
    c.tuned ? " autotuned" : ""
  }`;
  if (flag("skip-ours")) {
    ours.push({ ...c, error: "skipped (--skip-ours)" });
    continue;
  }
  if (elapsedS() > budgetS * 0.4) {
    ours.push({ ...c, error: "skipped: time budget" });
    continue;
  }
  try {
    const r = await measureOurs(c);
    ours.push(r);
    console.log(
      `collapse ${tag}: ${r.msPerStep!.toFixed(2)} ms/step, ${r.imagesPerSec!.toFixed(1)} img/s, ` +
        `${r.gflops!.toFixed(1)} GFLOP/s, ${r.dispatchesPerStep} dispatches, host ${
          r.hostMsPerReplay!.toFixed(2)
        } ms/replay (first eager step ${(r.firstStepMs! / 1000).toFixed(1)} s)`,
    );
    if (r.autotune) {
      const t = r.autotune;
      console.log(
        `  autotune: ${t.gemms} distinct GEMMs measured in ${
          t.seconds.toFixed(1)
        } s, ${t.changed} ` +
          `changed plan; their time ${t.modelMs.toFixed(2)} -> ${t.keptMs.toFixed(2)} ms`,
      );
    }
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    ours.push({ ...c, error: msg });
    console.log(`collapse ${tag}: failed: ${msg}`);
  }
}

let torch: TorchCase[] = [];
let torchFailure: string | undefined;
if (!flag("skip-torch")) {
  const r32 = CASES.filter((c) => c.model === "resnet32" && !c.half && !c.tuned),
    r50 = CASES.filter((c) => c.model !== "resnet32");
  const uniq = <T>(xs: T[]) => [...new Set(xs)];
  const res = await runTorchPeer({
    python: argOf("python"),
    models: uniq(CASES.map((c) => c.model)),
    batches32: uniq(r32.map((c) => c.batch)),
    batches50: uniq(r50.map((c) => c.batch)),
    heads: uniq(r32.map((c) => c.head)),
    heads50: uniq(r50.map((c) => c.head)),
    modes: torchModes,
    minSeconds,
    quick,
    budgetSeconds: Math.max(30, budgetS - elapsedS() - 20),
  });
  torch = res.cases;
  torchFailure = res.failure;
  if (torchFailure) console.log(`PyTorch peer did not run: ${torchFailure}`);
}

// The table: one row per case, collapse img/s, then each PyTorch mode with collapse / mode.
const fmt = (x: number | undefined, d = 1) => (x === undefined ? "-" : x.toFixed(d));
const device = torch.find((t) => t.device)?.device ?? "";
const tv = torch.find((t) => t.torch)?.torch ?? "";
console.log(
  `\ncollapse vs PyTorch ${tv} (${
    device || "not run"
  }), training images/s; ratio = collapse / PyTorch`,
);
console.log(`| case | collapse | ${torchModes.map((m) => `${m} | ratio`).join(" | ")} |`);
console.log(`| --- | ---: | ${torchModes.map(() => "---: | ---:").join(" | ")} |`);
const table: Record<string, unknown>[] = [];
for (const o of ours) {
  const cells = torchModes.map((m) => {
    const t = torch.find((t) =>
      t.model === o.model && t.batch === o.batch && t.head === o.head && t.mode === m
    );
    const ratio = t?.imagesPerSec && o.imagesPerSec ? o.imagesPerSec / t.imagesPerSec : undefined;
    const why = t?.skipped ? "skipped" : t?.error ? "error" : undefined;
    return { mode: m, imagesPerSec: t?.imagesPerSec, ratio, why };
  });
  table.push({
    model: o.model,
    batch: o.batch,
    head: o.head,
    half: !!o.half,
    tuned: !!o.tuned,
    ours: o.imagesPerSec,
    torch: cells,
  });
  console.log(
    `| ${o.model} b${o.batch} ${o.head === "etf" ? "ETF+DR" : "Dense+CE"}${
      o.half ? " (collapse: f16 activations)" : o.tuned ? " (collapse: autotuned GEMMs)" : ""
    } | ${o.error ? "error" : fmt(o.imagesPerSec)} | ${
      cells.map((c) => `${c.why ?? fmt(c.imagesPerSec)} | ${fmt(c.ratio, 2)}`).join(" | ")
    } |`,
  );
}
console.log(
  "\nWebGPU has no tensor cores: collapse computes in fp32 on the CUDA cores; PyTorch's eager_tf32 " +
    "and cl_bf16 use tensor cores (TF32 / bf16 products). compile and cuda_graph run with TF32 off.",
);
for (const t of torch.filter((t) => t.skipped || t.error)) {
  console.log(`PyTorch ${t.model} b${t.batch} ${t.head} ${t.mode}: ${t.skipped ?? t.error}`);
}
const result = {
  adapter,
  kernelMode: kernelMode(),
  quick,
  ours,
  torch,
  torchFailure,
  table,
  totalSeconds: elapsedS(),
};
const out = argOf("out");
if (out) await Deno.writeTextFile(out, JSON.stringify(result, null, 2));
console.log(JSON.stringify(result));
