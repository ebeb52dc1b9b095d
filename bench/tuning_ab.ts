/**
 * A/B of one kernel tuning constant (a boolean or numeric key of `TUNING` in gpu/kernels/tuning.ts,
 * or a dotted path to one inside it, e.g. `rowKernel.cpu.sweep`)
 * on the ResNet-32 training step: builds and captures the step once with each of two values (a
 * boolean's: off and on; a number's: `--values A,B`; each compiles its own kernels), then
 * alternates their replays, so both see the same machine load, and prints the median step time of
 * each, their ratio and both as fractions of a 1024^3 matmul timed in the same run. Imports no
 * jsr:/npm: modules (runs on a bare GPU machine too).
 *
 * Run: `deno run -A bench/tuning_ab.ts --flag rbWindow [--batch 128] [--pairs 6] [--head etf|dense]`,
 * `deno run -A bench/tuning_ab.ts --flag rbBigWork --values 33554432,134217728`,
 * `deno run -A bench/tuning_ab.ts --flag rowKernel.cpu.sweep --values 0,8`,
 * `deno run -A bench/tuning_ab.ts --flag autotune` (the cost model's GEMM plans against measured
 * ones: the "on" side's second run measures them, see gpu/ops/gemm_tune.ts)
 * @module
 */
import { initDevice } from "../gpu/device.ts";
import { engine } from "../gpu/engine.ts";
import { TUNING } from "../gpu/kernels/tuning.ts";
import { tuneLine } from "../nn/training/tune_summary.ts";
import { buildTrainSetup, matmulReference, type TrainSetup } from "./step_profile.ts";

function arg(name: string, def: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : def;
}
const args = {
  flag: arg("flag", ""),
  batch: arg("batch", "128"),
  pairs: arg("pairs", "6"),
  head: arg("head", "etf"),
  values: arg("values", ""),
};
const flag = args.flag;
// The object holding the constant and its key (a dotted path walks nested objects).
const path = flag.split(".");
let holder: Record<string, unknown> | undefined = TUNING as Record<string, unknown>;
for (const k of path.slice(0, -1)) {
  const next: unknown = holder?.[k];
  holder = next !== null && typeof next === "object" ? next as Record<string, unknown> : undefined;
}
const key = path[path.length - 1];
const kind = flag && holder ? typeof holder[key] : "";
if (kind !== "boolean" && !(kind === "number" && args.values.split(",").length === 2)) {
  const flags = Object.keys(TUNING).filter((k) =>
    ["boolean", "number"].includes(typeof TUNING[k as keyof typeof TUNING])
  );
  throw new Error(
    `usage: tuning_ab.ts --flag NAME [--values A,B] (a boolean TUNING key, or a numeric one ` +
      `with two values, or a dotted path to one such as rowKernel.cpu.sweep: ${flags.join(", ")})`,
  );
}
const tuned = holder!;
const values: (boolean | number)[] = kind === "boolean"
  ? [false, true]
  : args.values.split(",").map(Number);
const batch = Number(args.batch), pairs = Number(args.pairs);
const head = args.head as "etf" | "dense";
await initDevice();
const original = tuned[key];
const setups = new Map<boolean | number, TrainSetup>();
for (const value of values) {
  tuned[key] = value;
  const s = buildTrainSetup({ batch, head });
  s.step.run(); // eager: compiles every kernel
  await engine().sync();
  if (TUNING.autotune && s.step.tunable) {
    // --flag autotune: the second run measures the GEMM plans the capture then uses.
    const report = await s.step.tune();
    console.log(`autotune: ${tuneLine(report, batch)}`);
    for (const g of report.gemms.filter((g) => g.kept !== g.model)) {
      console.log(
        `  ${g.name} ${g.M}x${g.N}x${g.K}: ${g.model} ${g.modelMs.toFixed(2)} ms -> ${g.kept} ${
          g.keptMs.toFixed(2)
        } ms`,
      );
    }
  }
  s.step.run(); // the step's capture
  await engine().sync();
  setups.set(value, s);
}
tuned[key] = original;
const times = new Map<boolean | number, number[]>(values.map((v) => [v, []]));
for (let i = 0; i < pairs; i++) {
  for (const value of values) {
    const t0 = performance.now();
    setups.get(value)!.step.run();
    await engine().sync();
    times.get(value)!.push(performance.now() - t0);
  }
}
const mm = await matmulReference();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const flops = setups.get(values[1])!.flops.train * batch;
console.log(
  `ResNet-32 ${head} head, batch ${batch}, ${pairs} alternating replays each; matmul 1024^3 ${
    mm.gflops.toFixed(2)
  } GFLOP/s`,
);
for (const value of values) {
  const ms = median(times.get(value)!);
  const gf = flops / ms / 1e6;
  console.log(
    `${flag} ${value}: ${ms.toFixed(0)} ms/step, ${(batch / ms * 1000).toFixed(1)} img/s, ` +
      `${gf.toFixed(2)} GFLOP/s = ${(gf / mm.gflops).toFixed(2)} of matmul ` +
      `(steps: ${times.get(value)!.map((t) => t.toFixed(0)).join(" ")} ms)`,
  );
}
const [a, b] = values;
console.log(
  `speed-up (${kind === "boolean" ? "off/on" : `${a}/${b}`}): ${
    (median(times.get(a)!) / median(times.get(b)!)).toFixed(3)
  }`,
);
