/**
 * A/B of one boolean kernel tuning flag (a key of `TUNING` in gpu/kernels/tuning.ts) on the
 * ResNet-32 training step: builds and captures the step once with the flag off and once on (each
 * compiles its own kernels), then alternates their replays, so both see the same machine load,
 * and prints the median step time of each, their ratio and both as fractions of a 1024^3 matmul
 * timed in the same run. Imports no jsr:/npm: modules (runs on a bare GPU machine too).
 *
 * Run: `deno run -A bench/tuning_ab.ts --flag rbWindow [--batch 128] [--pairs 6] [--head etf|dense]`
 * @module
 */
import { initDevice } from "../gpu/device.ts";
import { engine } from "../gpu/engine.ts";
import { TUNING } from "../gpu/kernels/tuning.ts";
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
};
const flag = args.flag as keyof typeof TUNING;
if (!flag || typeof TUNING[flag] !== "boolean") {
  const flags = Object.keys(TUNING).filter((k) =>
    typeof TUNING[k as keyof typeof TUNING] === "boolean"
  );
  throw new Error(`usage: tuning_ab.ts --flag NAME (a boolean TUNING key: ${flags.join(", ")})`);
}
const batch = Number(args.batch), pairs = Number(args.pairs);
const head = args.head as "etf" | "dense";
await initDevice();
const original = TUNING[flag];
const setups = new Map<boolean, TrainSetup>();
for (const value of [false, true]) {
  (TUNING as Record<string, unknown>)[flag] = value;
  const s = buildTrainSetup({ batch, head });
  s.step.run(); // eager: compiles every kernel
  await engine().sync();
  s.step.run(); // the step's capture
  await engine().sync();
  setups.set(value, s);
}
(TUNING as Record<string, unknown>)[flag] = original;
const times = new Map<boolean, number[]>([[false, []], [true, []]]);
for (let i = 0; i < pairs; i++) {
  for (const value of [false, true]) {
    const t0 = performance.now();
    setups.get(value)!.step.run();
    await engine().sync();
    times.get(value)!.push(performance.now() - t0);
  }
}
const mm = await matmulReference();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const flops = setups.get(true)!.flops.train * batch;
console.log(
  `ResNet-32 ${head} head, batch ${batch}, ${pairs} alternating replays each; matmul 1024^3 ${
    mm.gflops.toFixed(2)
  } GFLOP/s`,
);
for (const value of [false, true]) {
  const ms = median(times.get(value)!);
  const gf = flops / ms / 1e6;
  console.log(
    `${flag} ${value}: ${ms.toFixed(0)} ms/step, ${(batch / ms * 1000).toFixed(1)} img/s, ` +
      `${gf.toFixed(2)} GFLOP/s = ${(gf / mm.gflops).toFixed(2)} of matmul ` +
      `(steps: ${times.get(value)!.map((t) => t.toFixed(0)).join(" ")} ms)`,
  );
}
console.log(
  `speed-up (off/on): ${(median(times.get(false)!) / median(times.get(true)!)).toFixed(3)}`,
);
