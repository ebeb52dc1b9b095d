/**
 * CLI for the TensorFlow.js ResNet-32 peer benchmark (see tfjs_resnet32.ts).
 *
 * Usage:
 *   deno run -A bench/peers/tfjs_run.ts [--batch 128] [--steps 1] [--infer-steps 2]
 *     [--mode both|train|infer] [--json]
 *
 * Prints progress per step, then a summary (adapter, backend, images/s, step
 * ms); with --json the summary is one JSON line on stdout instead.
 *
 * @module
 */

import { parseArgs } from "@std/cli/parse-args";
import { measureTfjsResnet32 } from "./tfjs_resnet32.ts";

const args = parseArgs(Deno.args, {
  string: ["batch", "steps", "infer-steps", "mode"],
  boolean: ["json", "help"],
  default: { batch: "128", steps: "1", mode: "both" },
});

if (args.help) {
  console.log(
    "deno run -A bench/peers/tfjs_run.ts [--batch 128] [--steps 1] [--infer-steps 2] " +
      "[--mode both|train|infer] [--json]",
  );
  Deno.exit(0);
}

const mode = args.mode;
if (mode !== "both" && mode !== "train" && mode !== "infer") {
  console.error(`--mode must be both, train or infer (got ${mode})`);
  Deno.exit(2);
}
const batch = Number(args.batch);
const steps = Number(args.steps);
const inferSteps = args["infer-steps"] !== undefined ? Number(args["infer-steps"]) : undefined;

const t0 = performance.now();
const r = await measureTfjsResnet32({
  batch,
  steps,
  mode,
  inferSteps,
  log: (l) => console.error(`[tfjs ${((performance.now() - t0) / 1000).toFixed(1)}s] ${l}`),
});

if (args.json) {
  console.log(JSON.stringify(r));
} else {
  const f = (v: number) => (Number.isNaN(v) ? "-" : v.toFixed(2));
  const ms = (a: number[]) => a.map((v) => v.toFixed(0)).join(", ");
  console.log(`adapter: ${r.adapter}`);
  console.log(`backend: ${r.backend}`);
  console.log(`model:   ResNet-32 (${r.params} params), batch ${r.batch}`);
  console.log(
    `train:   ${f(r.trainImagesPerSec)} images/s  (step ms, warm-up first: ${ms(r.stepMs.train)})`,
  );
  console.log(
    `infer:   ${f(r.inferImagesPerSec)} images/s  (step ms, warm-up first: ${ms(r.stepMs.infer)})`,
  );
  console.log(`cpu ms:  train ${ms(r.stepCpuMs.train)}; infer ${ms(r.stepCpuMs.infer)}`);
  console.log(
    `load:    ${
      r.loadAvg1.toFixed(2)
    } (1-min average at start; ${navigator.hardwareConcurrency} cores)`,
  );
}
