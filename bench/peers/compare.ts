/**
 * The peer comparison in one run: collapse's ResNet-32 training and inference steps (the captured
 * fit path) and TensorFlow.js's WebGPU backend on the same model, batch and adapter, measured one
 * after the other on the same machine (TF.js in a subprocess, so each framework owns its device).
 * Prints a markdown table and one JSON line.
 *
 *     deno run -A bench/peers/compare.ts [--batch 128] [--steps 2] [--tfjs-steps 1] [--skip-tfjs]
 *
 * The PyTorch row is context, not measured here: ~380 training / ~1400 inference images/s on the same
 * 2 CPU cores (PyTorch 1.13, native), as reported in the performance issue.
 * @module
 */
import { parseArgs } from "jsr:@std/cli@^1.0.32/parse-args";
import { gpu, initDevice } from "../../gpu/device.ts";
import { engine } from "../../gpu/engine.ts";
import { kernelMode } from "../../gpu/kernels/tuning.ts";
import { buildEvalSetup, buildTrainSetup } from "../step_profile.ts";

const args = parseArgs(Deno.args, {
  string: ["batch", "steps", "tfjs-steps"],
  boolean: ["skip-tfjs"],
  default: { batch: "128", steps: "2", "tfjs-steps": "1" },
});
const batch = Number(args.batch), steps = Number(args.steps), tfSteps = Number(args["tfjs-steps"]);

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
rows.push({
  name: "PyTorch 1.13 CPU (2 cores)",
  train: 380,
  infer: 1400,
  note: "not measured here: figure from the issue, native CPU",
});

const ours = rows[0], tf = rows.find((r) => r.name.startsWith("TensorFlow"));
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
console.log(JSON.stringify({ batch, adapter, kernelMode: kernelMode(), load, rows }));
