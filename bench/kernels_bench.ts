/**
 * GEMM kernel benches: matmul 1024^3 per variant, and conv2d forward / backward-data /
 * backward-weight at ResNet-32's shapes (batch 128, 3x3, stride 1, pad 1). Each case runs one
 * warm-up (pipeline compile) and a few timed iterations, each dispatching then awaiting
 * `engine().sync()`; GFLOP/s come from the mean time and print with the adapter's description.
 * `BENCH_VARIANTS=regblock,tiled` picks the conv variants (default: the adapter's).
 * Run: `deno bench -A bench/kernels_bench.ts`.
 * @module
 */
import { gpu, initDevice } from "../gpu/device.ts";
import { engine } from "../gpu/engine.ts";
import { type GemmVariant, kernelMode } from "../gpu/kernels/tuning.ts";
import { conv2d, conv2dBackwardFilter, conv2dBackwardInput } from "../gpu/ops/conv2d.ts";
import { matmul } from "../gpu/ops/matmul.ts";
import { type Tensor, tensor } from "../gpu/tensor.ts";

await initDevice();
const ITERS = 2;
const results: { name: string; gflops: number; ms: number; conv: boolean }[] = [];
const defaultVariant: GemmVariant = kernelMode() === "cpu" ? "regblock" : "tiled";
const convVariants =
  (Deno.env.get("BENCH_VARIANTS")?.split(",") ?? [defaultVariant]) as GemmVariant[];

function rand(shape: number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.sin(i * 12.9898) * 0.5;
  return tensor(a, shape);
}

/** Registers a bench that times `run` (one warm-up call, then ITERS timed calls). */
function bench(name: string, flops: number, conv: boolean, run: () => Tensor, iters = ITERS) {
  let calls = 0;
  let total = 0;
  Deno.bench({
    name,
    n: iters,
    warmup: 1,
    async fn() {
      const t0 = performance.now();
      run().dispose();
      await engine().sync();
      const dt = performance.now() - t0;
      if (calls++ > 0) total += dt;
      if (calls === iters + 1) {
        const ms = total / iters;
        const gflops = flops / ms / 1e6;
        results.push({ name, gflops, ms, conv });
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

const SHAPES: [number, number, number, number][] = [
  [32, 3, 16, 1], // stem: 32x32x3 -> 16
  [32, 16, 16, 1],
  [16, 32, 32, 1],
  [8, 64, 64, 1],
];
const BATCH = 128;
for (const [hw, cin, cout] of SHAPES) {
  const x = rand([BATCH, hw, hw, cin]);
  const w = rand([3, 3, cin, cout]);
  const dy = rand([BATCH, hw, hw, cout]);
  const flops = 2 * BATCH * hw * hw * cout * 9 * cin;
  const tag = `${hw}x${hw}x${cin}->${cout}`;
  for (const variant of convVariants) {
    const o = { padding: 1, variant };
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
    `\nadapter: ${a.description || a.device} (fallback: ${a.isFallbackAdapter}), ` +
      `kernel mode: ${kernelMode()}`,
  );
  const mm = Math.max(0, ...results.filter((r) => !r.conv).map((r) => r.gflops));
  for (const r of results) {
    const frac = r.conv && mm > 0 ? `  (${(r.gflops / mm).toFixed(2)} of best matmul)` : "";
    console.log(
      `${r.name.padEnd(40)} ${r.ms.toFixed(1).padStart(9)} ms ${
        r.gflops.toFixed(2).padStart(7)
      } GFLOP/s${frac}`,
    );
  }
});
