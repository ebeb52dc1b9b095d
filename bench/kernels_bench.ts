/**
 * GEMM kernel benches: matmul 1024^3 per variant, and conv2d forward / backward-data /
 * backward-weight at ResNet-32's shapes (batch 128, 3x3, pad 1: the three stages, the two stride-2
 * transitions and the RGB stem). Each case runs one warm-up (pipeline compile; the first run on a
 * machine compiles for seconds per kernel, Mesa's disk cache keeps them) and a few timed
 * iterations, each dispatching then awaiting `engine().sync()`; GFLOP/s come from the mean time,
 * and on Linux also GFLOP per process CPU-second (lavapipe's threads are in-process, so this is
 * the number to compare on a shared, loaded machine). The table prints with the adapter and load.
 * `BENCH_VARIANTS=regblock,tiled` picks the conv variants (default: the adapter's), `BENCH_ITERS`
 * the timed iterations per case (default 3).
 * Run: `deno bench -A bench/kernels_bench.ts`.
 * @module
 */
import { adapterLabel, gpu, initDevice } from "../gpu/device.ts";
import { engine } from "../gpu/engine.ts";
import { type GemmVariant, kernelMode } from "../gpu/kernels/tuning.ts";
import { conv2d, conv2dBackwardFilter, conv2dBackwardInput } from "../gpu/ops/conv2d.ts";
import { matmul } from "../gpu/ops/matmul.ts";
import { type Tensor, tensor } from "../gpu/tensor.ts";

await initDevice();
const ITERS = Number(Deno.env.get("BENCH_ITERS") ?? 3);
const results: {
  name: string;
  gflops: number;
  ms: number;
  conv: boolean;
  cpuGflops: number | null;
}[] = [];
const defaultVariant: GemmVariant = kernelMode() === "cpu" ? "regblock" : "tiled";
const convVariants =
  (Deno.env.get("BENCH_VARIANTS")?.split(",") ?? [defaultVariant]) as GemmVariant[];

function rand(shape: number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.sin(i * 12.9898) * 0.5;
  return tensor(a, shape);
}

/** This process's user + system CPU time in seconds (Linux), else null. */
function cpuSeconds(): number | null {
  try {
    const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return null;
  }
}

function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "n/a";
  }
}

/** Registers a bench that times `run` (one warm-up call, then ITERS timed calls). */
function bench(name: string, flops: number, conv: boolean, run: () => Tensor, iters = ITERS) {
  let calls = 0;
  let total = 0;
  let cpu = 0;
  Deno.bench({
    name,
    n: iters,
    warmup: 1,
    async fn() {
      const c0 = cpuSeconds();
      const t0 = performance.now();
      run().dispose();
      await engine().sync();
      const dt = performance.now() - t0;
      const c1 = cpuSeconds();
      if (calls++ > 0) {
        total += dt;
        cpu += c0 !== null && c1 !== null ? c1 - c0 : NaN;
      }
      if (calls === iters + 1) {
        const ms = total / iters;
        const gflops = flops / ms / 1e6;
        const cpuGflops = Number.isFinite(cpu) && cpu > 0 ? (flops * iters) / cpu / 1e9 : null;
        results.push({ name, gflops, ms, conv, cpuGflops });
        console.log(`${name}: ${ms.toFixed(1)} ms, ${gflops.toFixed(2)} GFLOP/s`);
      }
    },
  });
}

const n = 1024;
const A = rand([n, n]), B = rand([n, n]);
for (const variant of ["regblock", "tiled"] as GemmVariant[]) {
  const iters = variant === defaultVariant ? ITERS : 1;
  bench(`matmul 1024^3 ${variant}`, 2 * n ** 3, false, () => matmul(A, B, { variant }), iters);
}

/** [input size, Cin, Cout, stride]. */
const SHAPES: [number, number, number, number][] = [
  [32, 3, 16, 1], // stem: 32x32x3 -> 16
  [32, 16, 16, 1],
  [16, 32, 32, 1],
  [8, 64, 64, 1],
  [32, 16, 32, 2], // transition 32x32x16 -> 16x16x32
  [16, 32, 64, 2], // transition 16x16x32 -> 8x8x64
];
const BATCH = 128;
for (const [hw, cin, cout, stride] of SHAPES) {
  const ohw = Math.floor((hw + 2 - 3) / stride) + 1;
  const x = rand([BATCH, hw, hw, cin]);
  const w = rand([3, 3, cin, cout]);
  const dy = rand([BATCH, ohw, ohw, cout]);
  const flops = 2 * BATCH * ohw * ohw * cout * 9 * cin;
  const tag = `${hw}x${hw}x${cin}->${cout}${stride > 1 ? ` s${stride}` : ""}`;
  for (const variant of convVariants) {
    const o = { padding: 1, stride, variant };
    bench(`conv2d fwd ${tag} ${variant}`, flops, true, () => conv2d(x, w, o));
    if (cin > 3) {
      bench(
        `conv2d bwd-data ${tag} ${variant}`,
        flops,
        true,
        () => conv2dBackwardInput(dy, w, x.shape, o),
      );
    }
    bench(
      `conv2d bwd-weight ${tag} ${variant}`,
      flops,
      true,
      () => conv2dBackwardFilter(x, dy, w.shape, o),
    );
  }
}

globalThis.addEventListener("unload", () => {
  const a = gpu().adapter;
  console.log(
    `\nadapter: ${adapterLabel(a)}, kernel mode: ${kernelMode()}, load average: ${loadAverage()}`,
  );
  const best = (key: "gflops" | "cpuGflops") =>
    Math.max(0, ...results.filter((r) => !r.conv).map((r) => r[key] ?? 0));
  const mm = best("gflops"), mmCpu = best("cpuGflops");
  console.log(
    `${"case".padEnd(40)} ${"ms".padStart(9)} ${"GFLOP/s".padStart(9)} ${"/cpu-s".padStart(7)}`,
  );
  for (const r of results) {
    const frac = r.conv && mm > 0
      ? `  (${(r.gflops / mm).toFixed(2)} of best matmul${
        r.cpuGflops && mmCpu > 0 ? `; per CPU-s ${(r.cpuGflops / mmCpu).toFixed(2)}` : ""
      })`
      : "";
    console.log(
      `${r.name.padEnd(40)} ${r.ms.toFixed(1).padStart(9)} ${r.gflops.toFixed(2).padStart(9)} ${
        (r.cpuGflops?.toFixed(2) ?? "n/a").padStart(7)
      }${frac}`,
    );
  }
});
