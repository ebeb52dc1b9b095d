/**
 * The peer comparison in one run: collapse's ResNet-32 training and inference steps (the captured
 * fit path) and TensorFlow.js's WebGPU backend on the same model, batch and adapter, measured one
 * after the other on the same machine (TF.js in a subprocess, so each framework owns its device).
 * Prints a markdown table and one JSON line.
 *
 * Then PyTorch on the CPU (torch_cuda.py `--device cpu`: the same ResNet-32, learnable head + CE,
 * eager fp32, all cores unless `--torch-threads`) in the same run, where a Python with torch is found (`--python`, default
 * `$COLLAPSE_TORCH_PYTHON`, else /usr/bin/python3; Debian: `apt-get install python3-torch`);
 * `--skip-torch` leaves it out.
 *
 *     deno run -A bench/peers/compare.ts [--batch 128] [--steps 2] [--tfjs-steps 1] [--skip-tfjs]
 *       [--skip-torch] [--python /usr/bin/python3] [--torch-threads N]
 * @module
 */
import { parseArgs } from "jsr:@std/cli@^1.0.32/parse-args";
import { gpu, initDevice } from "../../gpu/device.ts";
import { engine } from "../../gpu/engine.ts";
import { kernelMode } from "../../gpu/kernels/tuning.ts";
import { matmul } from "../../gpu/ops/matmul.ts";
import { tensor } from "../../gpu/tensor.ts";
import { buildEvalSetup, buildTrainSetup } from "../step_profile.ts";
import { runTorchPeer } from "./torch_peer.ts";

const args = parseArgs(Deno.args, {
  string: ["batch", "steps", "tfjs-steps", "python", "torch-threads"],
  boolean: ["skip-tfjs", "skip-torch"],
  default: { batch: "128", steps: "2", "tfjs-steps": "1" },
});
const batch = Number(args.batch), steps = Number(args.steps), tfSteps = Number(args["tfjs-steps"]);

/** Debian's python3-torch lives in the system Python (a PATH python3 may be a pyenv without it). */
function systemPython(): string | undefined {
  if (Deno.env.get("COLLAPSE_TORCH_PYTHON")) return undefined;
  try {
    Deno.statSync("/usr/bin/python3");
    return "/usr/bin/python3";
  } catch {
    return undefined;
  }
}

function cpuMs(): number {
  const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) * 10; // utime + stime, in 1/100 s ticks
}

async function timeSteps(run: () => void, n: number): Promise<{ ms: number; cpu: number }> {
  const e = engine();
  run(); // warm-up / capture
  await e.sync();
  const c0 = cpuMs(), t0 = performance.now();
  for (let i = 0; i < n; i++) run();
  await e.sync();
  return { ms: (performance.now() - t0) / n, cpu: (cpuMs() - c0) / n };
}

await initDevice();
const adapter = gpu().adapter.description;
const load = Deno.loadavg()[0];
console.error(`adapter: ${adapter}; kernels: ${kernelMode()}; load average ${load.toFixed(2)}`);
const setup = buildTrainSetup({ batch, head: "dense" }); // learnable + CE, like the TF.js model
setup.step.run(); // eager first step (compiles, builds)
await engine().sync();
const train = await timeSteps(() => setup.step.run(), steps);
console.error(`collapse train: ${train.ms.toFixed(0)} ms/step`);
const stepGflops = (setup.flops.train * batch) / train.ms / 1e6;
// The reference of the same run: a 1024^3 matmul with the adapter's GEMM variant (best of 3).
const mmA = tensor(new Float32Array(1024 * 1024).map((_, i) => Math.sin(i) * 0.5), [1024, 1024]);
let mmMs = Infinity;
for (let i = 0; i < 4; i++) {
  const t0 = performance.now();
  matmul(mmA, mmA).dispose();
  await engine().sync();
  if (i > 0) mmMs = Math.min(mmMs, performance.now() - t0);
}
mmA.dispose();
const matmulGflops = (2 * 1024 ** 3) / mmMs / 1e6;
console.error(
  `collapse train: ${stepGflops.toFixed(2)} GFLOP/s (GEMM FLOPs) = ${
    (stepGflops / matmulGflops).toFixed(2)
  } of the same run's matmul 1024^3 (${matmulGflops.toFixed(2)} GFLOP/s)`,
);
const evalStep = buildEvalSetup(setup.model, setup.batch);
evalStep.runFull(setup.batch); // eager first run
const infer = await timeSteps(() => evalStep.runFull(setup.batch), Math.max(steps, 2));
console.error(`collapse eval: ${infer.ms.toFixed(0)} ms/step`);

interface Row {
  name: string;
  train: number;
  infer: number;
  note: string;
}
const rows: Row[] = [{
  name: "collapse (this repo)",
  train: (batch * 1000) / train.ms,
  infer: (batch * 1000) / infer.ms,
  note: `measured; ${(train.cpu / 1000).toFixed(1)} CPU-s per training step`,
}];

if (!args["skip-tfjs"]) {
  console.error(`TF.js: running ${tfSteps} timed training step(s) at batch ${batch} (slow)...`);
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./tfjs_run.ts", import.meta.url).pathname,
      "--batch",
      String(batch),
      "--steps",
      String(tfSteps),
      "--json",
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const line = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
  try {
    const r = JSON.parse(line);
    rows.push({
      name: "TensorFlow.js 4.22 WebGPU",
      train: r.trainImagesPerSec,
      infer: r.inferImagesPerSec,
      note: `measured; backend ${r.backend}`,
    });
  } catch {
    console.error(`TF.js run failed (exit ${out.code}): ${line.slice(0, 300)}`);
  }
}
if (!args["skip-torch"]) {
  console.error(`PyTorch (CPU): training and inference at batch ${batch}...`);
  const common = {
    python: args.python ?? systemPython(),
    device: "cpu" as const,
    models: ["resnet32"],
    batches32: [batch],
    heads: ["dense"],
    modes: ["eager_fp32"],
    threads: args["torch-threads"] ? Number(args["torch-threads"]) : undefined,
  };
  const tr = await runTorchPeer({ ...common, what: "train" });
  const inf = await runTorchPeer({ ...common, what: "infer" });
  const t = tr.cases[0], i = inf.cases[0];
  if (t?.imagesPerSec && i?.imagesPerSec) {
    rows.push({
      name: `PyTorch ${t.torch} CPU, eager fp32`,
      train: t.imagesPerSec,
      infer: i.imagesPerSec,
      note: `measured, same run; ${t.device}; native CPU kernels (not WebGPU)`,
    });
  } else {
    console.error(
      `PyTorch not measured: ${tr.failure ?? t?.error ?? t?.skipped ?? inf.failure ?? i?.error}`,
    );
  }
}

const ours = rows[0], tf = rows.find((r) => r.name.startsWith("TensorFlow"));
const torchRow = rows.find((r) => r.name.startsWith("PyTorch"));
console.log(`\nResNet-32 (CIFAR), batch ${batch}, ${adapter}, load average ${load.toFixed(2)}\n`);
console.log("| framework | train images/s | inference images/s | note |");
console.log("| --- | ---: | ---: | --- |");
for (const r of rows) {
  console.log(`| ${r.name} | ${r.train.toFixed(2)} | ${r.infer.toFixed(1)} | ${r.note} |`);
}
if (tf) {
  console.log(
    `\ncollapse / TF.js: ${(ours.train / tf.train).toFixed(1)}x training, ` +
      `${(ours.infer / tf.infer).toFixed(1)}x inference`,
  );
}
if (torchRow) {
  console.log(
    `collapse / PyTorch CPU: ${(ours.train / torchRow.train).toFixed(2)}x training, ` +
      `${(ours.infer / torchRow.infer).toFixed(2)}x inference`,
  );
}
console.log(
  `collapse training step: ${stepGflops.toFixed(2)} GFLOP/s = ${
    (stepGflops / matmulGflops).toFixed(2)
  } of this run's matmul 1024^3 (${matmulGflops.toFixed(2)} GFLOP/s)`,
);
console.log(
  JSON.stringify({
    batch,
    adapter,
    kernelMode: kernelMode(),
    load,
    stepGflops,
    matmulGflops,
    dispatchesPerStep: setup.step.dispatchCount,
    rows,
  }),
);
