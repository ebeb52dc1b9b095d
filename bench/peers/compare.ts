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
import { buildEvalSetup, buildTrainSetup, cpuMs, matmulReference } from "../step_profile.ts";
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
// The reference of the same run: a 1024^3 matmul with the adapter's GEMM variant, before and
// after the training steps; the faster of the two (the stricter reference) is used.
const mm0 = await matmulReference();
const train = await timeSteps(() => setup.step.run(), steps);
const mm1 = await matmulReference();
const mm = {
  gflops: Math.max(mm0.gflops, mm1.gflops),
  cpuGflops: Math.max(mm0.cpuGflops, mm1.cpuGflops),
};
console.error(`collapse train: ${train.ms.toFixed(0)} ms/step`);
const stepGflops = (setup.flops.train * batch) / train.ms / 1e6;
const stepCpuGflops = (setup.flops.train * batch) / train.cpu / 1e6;
const stepLine = `collapse training step: ${stepGflops.toFixed(2)} GFLOP/s (GEMM FLOPs) = ${
  (stepGflops / mm.gflops).toFixed(2)
} of this run's matmul 1024^3 (${mm.gflops.toFixed(2)} GFLOP/s; before/after the steps ${
  mm0.gflops.toFixed(2)
}/${mm1.gflops.toFixed(2)}); per CPU-second ${stepCpuGflops.toFixed(2)} = ${
  (stepCpuGflops / mm.cpuGflops).toFixed(2)
} of the matmul's ${mm.cpuGflops.toFixed(2)}`;
console.error(stepLine);
const evalStep = buildEvalSetup(setup.model, setup.batch);
evalStep.runFull(setup.batch); // eager first run
const infer = await timeSteps(() => evalStep.runFull(setup.batch), Math.max(steps, 2));
console.error(`collapse eval: ${infer.ms.toFixed(0)} ms/step`);

interface Row {
  name: string;
  train: number;
  infer: number;
  /** Images per second of process CPU time (all threads): the figure a loaded machine moves least. */
  trainPerCpuS: number;
  inferPerCpuS: number;
  note: string;
}
const perCpu = (ms: number) => (ms > 0 ? (batch * 1000) / ms : NaN);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const rows: Row[] = [{
  name: "collapse (this repo)",
  train: (batch * 1000) / train.ms,
  infer: (batch * 1000) / infer.ms,
  trainPerCpuS: perCpu(train.cpu),
  inferPerCpuS: perCpu(infer.cpu),
  note: `measured; ${
    (train.cpu / 1000).toFixed(1)
  } CPU-s per training step, ${setup.step.dispatchCount} dispatches`,
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
      // stepCpuMs lists the warm-up step first.
      trainPerCpuS: perCpu(mean(r.stepCpuMs.train.slice(1))),
      inferPerCpuS: perCpu(mean(r.stepCpuMs.infer.slice(1))),
      note: `measured; backend ${r.backend}; ${
        (mean(r.stepCpuMs.train.slice(1)) / 1000).toFixed(1)
      } CPU-s per training step`,
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
      trainPerCpuS: perCpu(t.cpuMsPerStep ?? NaN),
      inferPerCpuS: perCpu(i.cpuMsPerStep ?? NaN),
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
console.log(
  "| framework | train images/s | inference images/s | train images per CPU-s | inference images per CPU-s | note |",
);
console.log("| --- | ---: | ---: | ---: | ---: | --- |");
for (const r of rows) {
  console.log(
    `| ${r.name} | ${r.train.toFixed(2)} | ${r.infer.toFixed(1)} | ${r.trainPerCpuS.toFixed(2)} | ${
      r.inferPerCpuS.toFixed(1)
    } | ${r.note} |`,
  );
}
if (tf) {
  console.log(
    `\ncollapse / TF.js: ${(ours.train / tf.train).toFixed(1)}x training, ` +
      `${(ours.infer / tf.infer).toFixed(1)}x inference (per CPU-second: ${
        (ours.trainPerCpuS / tf.trainPerCpuS).toFixed(1)
      }x, ${(ours.inferPerCpuS / tf.inferPerCpuS).toFixed(1)}x)`,
  );
}
if (torchRow) {
  console.log(
    `collapse / PyTorch CPU: ${(ours.train / torchRow.train).toFixed(2)}x training, ` +
      `${(ours.infer / torchRow.infer).toFixed(2)}x inference (per CPU-second: ${
        (ours.trainPerCpuS / torchRow.trainPerCpuS).toFixed(2)
      }x, ${(ours.inferPerCpuS / torchRow.inferPerCpuS).toFixed(2)}x)`,
  );
}
console.log(stepLine);
console.log(
  JSON.stringify({
    batch,
    adapter,
    kernelMode: kernelMode(),
    load,
    stepGflops,
    stepCpuGflops,
    matmul: { before: mm0, after: mm1 },
    dispatchesPerStep: setup.step.dispatchCount,
    rows,
  }),
);
