/**
 * DenseNet-BC-150 (and ResNet-32 beside it) training step as `fit` runs it, plus the activation
 * memory per image and the wall time of the whole paper table on this adapter:
 * - per backbone: build, compile (SGD momentum 0.9, wd 2e-4; ETF + DR), the eager first step,
 *   the capture, then `--steps` timed replays (write batch + replay + sync): ms/step, images/s,
 *   GEMM GFLOP/s (bench/flops.ts) and its share of a 1024^3 matmul's of the tuned GEMM variant,
 *   measured right before and after the timed steps (the mean of the two; the load of a shared
 *   machine moves);
 * - activation memory: live GPU bytes (buffer size classes) held after one eager training-mode
 *   forward pass (what the backward pass keeps) at `--memory-batch`, per image; beside it, for
 *   DenseNet, the same count for a concat-per-layer implementation by formula;
 * - the paper table's wall time: 4 datasets x 3 ratios x 4 methods x 2 backbones x `--seeds`
 *   seeds, 200 epochs each, from the long-tailed train sizes (recipes/lib/throughput.ts
 *   `estimatedImages`, as recipes/paper_table.ts: SVHN's train and extra splits) and the images/s
 *   (STL-10's 96x96 images from the 96x96 measurement when `--stl` is given, else scaled by FLOPs).
 *
 *     deno run -A bench/densenet_step.ts [--batch 128] [--steps 2] [--size 32] [--stl]
 *       [--memory-batch 16] [--seeds 3] [--backbones densenet,resnet32] [--out f.json]
 *       [--rates-from f.json]   (the table again from an earlier run's figures, nothing measured)
 *
 * One DenseNet-BC-150 step at batch 128 takes about a minute on the shared 2-core lavapipe
 * machine; the whole script with the defaults about 10 minutes.
 * @module
 */
import { parseArgs } from "jsr:@std/cli@^1.0.32/parse-args";
import { adapterLabel, gpu, initDevice } from "../gpu/device.ts";
import "../gpu/ops/mod.ts";
import { engine } from "../gpu/engine.ts";
import { kernelMode } from "../gpu/kernels/tuning.ts";
import { matmul } from "../gpu/ops/matmul.ts";
import { tidy } from "../gpu/scope.ts";
import { tensor } from "../gpu/tensor.ts";
import { DotRegressionLoss } from "../nn/losses/mod.ts";
import type { ClassifierModel } from "../nn/model/classifier.ts";
import { densenet3 } from "../nn/models/densenet.ts";
import { resnet32 } from "../nn/models/resnet32.ts";
import { SGD } from "../nn/optimizers/mod.ts";
import { compile, trainingState } from "../nn/training/state.ts";
import { TrainStep } from "../nn/training/train_step.ts";
import { matmulFlops, modelFlops } from "./flops.ts";
import { estimatedImages } from "../recipes/lib/throughput.ts";
import { randomBatch } from "./step_profile.ts";

const args = parseArgs(Deno.args, {
  string: ["batch", "steps", "size", "memory-batch", "seeds", "backbones", "out", "rates-from"],
  boolean: ["stl"],
  default: {
    batch: "128",
    steps: "2",
    size: "32",
    "memory-batch": "16",
    seeds: "3",
    backbones: "densenet,resnet32",
  },
});
const BATCH = Number(args.batch), STEPS = Number(args.steps), SIZE = Number(args.size);
const MEM_BATCH = Number(args["memory-batch"]), SEEDS = Number(args.seeds);
const BACKBONES = String(args.backbones).split(",") as ("densenet" | "resnet32")[];

await initDevice();
const a = gpu().adapter;
const adapter = `${adapterLabel(a)}, kernel mode ${kernelMode()}, ` +
  `${navigator.hardwareConcurrency} CPU threads`;
console.log(`adapter: ${adapter}`);

function build(kind: "densenet" | "resnet32", numClasses = 10): ClassifierModel {
  return kind === "densenet"
    ? densenet3({ numClasses, head: "etf", seed: 0 })
    : resnet32({ numClasses, head: "etf", seed: 0 });
}

/** GFLOP/s of the tuned GEMM at 1024^3 (mean of 3 after one compile run). */
async function matmulReference(): Promise<number> {
  const n = 1024;
  const rand = () => {
    const v = new Float32Array(n * n);
    for (let i = 0; i < v.length; i++) v[i] = Math.sin(i * 12.9898) * 0.5;
    return tensor(v, [n, n]);
  };
  const A = rand(), B = rand();
  let total = 0;
  for (let i = 0; i < 4; i++) {
    const t0 = performance.now();
    matmul(A, B).dispose();
    await engine().sync();
    if (i > 0) total += performance.now() - t0;
  }
  A.dispose();
  B.dispose();
  return matmulFlops(n, n, n) / (total / 3) / 1e6;
}

interface StepResult {
  backbone: string;
  /** The matmul reference right before and after the timed steps (the machine's load moves). */
  matmulGflops: [number, number];
  size: number;
  batch: number;
  msPerStep: number;
  imagesPerSec: number;
  gflopPerImage: number;
  gflops: number;
  shareOfMatmul: number;
  dispatches: number;
  firstStepsSeconds: number;
}

async function timeSteps(kind: "densenet" | "resnet32", size: number, batch: number) {
  const model = build(kind);
  const shape = [batch, size, size, 3];
  model.build(shape);
  compile(model, {
    optimizer: new SGD({ learningRate: 0.1, momentum: 0.9, weightDecay: 2e-4 }),
    loss: new DotRegressionLoss(),
  });
  const state = trainingState(model);
  state.ensureArena();
  state.optimizer.applySchedule(0, 0);
  const step = new TrainStep(state, shape);
  const data = randomBatch(batch, size, 10);
  step.write(data);
  const e = engine();
  const t0 = performance.now();
  step.run(); // eager: compiles the pipelines
  step.run(); // records the capture and runs it
  await e.sync();
  const first = (performance.now() - t0) / 1000;
  const before = await matmulReference();
  let total = 0;
  for (let i = 0; i < STEPS; i++) {
    const s0 = performance.now();
    step.write(data);
    step.run();
    await e.sync();
    total += performance.now() - s0;
  }
  const ms = total / STEPS;
  const after = await matmulReference();
  const ref = (before + after) / 2;
  const flops = modelFlops(model).train;
  const r: StepResult = {
    backbone: kind,
    matmulGflops: [before, after],
    size,
    batch,
    msPerStep: ms,
    imagesPerSec: batch / (ms / 1000),
    gflopPerImage: flops / 1e9,
    gflops: flops * batch / ms / 1e6,
    shareOfMatmul: flops * batch / ms / 1e6 / ref,
    dispatches: step.dispatchCount,
    firstStepsSeconds: first,
  };
  step.dispose();
  model.dispose();
  console.log(
    `${kind} ${size}x${size} batch ${batch}: ${ms.toFixed(0)} ms/step, ` +
      `${r.imagesPerSec.toFixed(2)} images/s, ${r.gflops.toFixed(2)} GEMM GFLOP/s ` +
      `(${r.gflopPerImage.toFixed(3)} GFLOP per training image) = ${
        r.shareOfMatmul.toFixed(2)
      } of the matmul's (${before.toFixed(2)} / ${after.toFixed(2)} GFLOP/s before / after), ` +
      `${r.dispatches} dispatches/step (eager + capture: ${first.toFixed(0)} s)`,
  );
  return r;
}

/** Live bytes held after an eager training-mode forward at `batch`, per image. */
async function activationBytesPerImage(kind: "densenet" | "resnet32", batch: number) {
  const model = build(kind);
  model.build([batch, SIZE, SIZE, 3]);
  const data = randomBatch(batch, SIZE, 10);
  const x = tensor(data.images, data.shape);
  await engine().sync();
  const before = engine().stats().liveBytes;
  let kept = 0;
  tidy(() => {
    const out = model.forward(x, { training: true });
    void out;
    kept = engine().stats().liveBytes - before;
  });
  x.dispose();
  model.dispose();
  return kept / batch;
}

/**
 * Floats per image a concat-per-layer DenseNet-BC keeps for its backward pass: per layer the
 * concatenated input (c channels) and its BN and ReLU outputs, the bottleneck conv output and its
 * BN and ReLU outputs (4k each), the new channels (k); per transition BN, ReLU and conv outputs
 * and the pooled map; the stem output and the final BN/ReLU.
 */
function concatFloatsPerImage(depth: number, k: number, size: number): number {
  const n = Math.floor((depth - 4) / 6);
  let c = 2 * k, hw = size * size, f = c * hw;
  for (let b = 0; b < 3; b++) {
    for (let i = 0; i < n; i++, c += k) f += hw * (3 * c + 3 * 4 * k + k);
    if (b < 2) {
      const out = Math.floor(c / 2);
      f += hw * (2 * c + out) + (hw / 4) * out;
      c = out;
      hw /= 4;
    }
  }
  return f + 2 * c * hw;
}

// --rates-from FILE: the figures of an earlier run's --out file, only the table recomputed.
const earlier = args["rates-from"] ? JSON.parse(await Deno.readTextFile(args["rates-from"])) : null;
const steps: StepResult[] = earlier?.steps ?? [];
const stl: StepResult[] = earlier?.stl ?? [];
if (!earlier) {
  for (const b of BACKBONES) steps.push(await timeSteps(b, SIZE, BATCH));
  if (args.stl) {
    for (const b of BACKBONES) stl.push(await timeSteps(b, 96, Math.min(BATCH, 32)));
  }
}

const memory: Record<string, number> = earlier?.activationBytesPerImage ?? {};
for (const b of earlier ? [] : BACKBONES) {
  memory[b] = await activationBytesPerImage(b, MEM_BATCH);
  console.log(
    `${b}: ${(memory[b] / 2 ** 20).toFixed(2)} MiB of activations per ${SIZE}x${SIZE} image ` +
      `(live GPU bytes after a training-mode forward at batch ${MEM_BATCH})`,
  );
}
const concatMiB = concatFloatsPerImage(150, 12, SIZE) * 4 / 2 ** 20;
console.log(`a concat-per-layer DenseNet-BC-150 would keep ${concatMiB.toFixed(2)} MiB per image`);

/** The grid's long-tailed train sizes at a ratio, as recipes/paper_table.ts estimates them. */
function trainSizes(ratio: number): Record<string, number> {
  const ds = ["cifar10", "cifar100", "svhn", "stl10"] as const;
  return Object.fromEntries(ds.map((d) => [d, estimatedImages(d, ratio, undefined).train]));
}

// The paper table: every dataset x ratio x method x backbone x seed, 200 epochs.
const EPOCHS = 200, METHODS = 4, RATIOS = [0.005, 0.01, 0.02];
const table: Record<string, { images: number; hours: number }> = {};
let totalHours = 0;
for (const b of BACKBONES) {
  const at32 = steps.find((s) => s.backbone === b)!;
  const at96 = stl.find((s) => s.backbone === b);
  // STL-10 at 96x96: measured if --stl, else the 32x32 rate scaled by the FLOP ratio (9x).
  const stlRate = at96 ? at96.imagesPerSec : at32.imagesPerSec / 9;
  let images = 0, hours = 0;
  for (const r of RATIOS) {
    for (const [ds, n] of Object.entries(trainSizes(r))) {
      const runImages = n * EPOCHS * METHODS * SEEDS;
      images += runImages;
      hours += runImages / (ds === "stl10" ? stlRate : at32.imagesPerSec) / 3600;
    }
  }
  table[b] = { images, hours };
  totalHours += hours;
  console.log(
    `paper table, ${b}: ${(images / 1e6).toFixed(1)} M training images, ` +
      `${hours.toFixed(0)} h = ${(hours / 24 / 365).toFixed(2)} years on this adapter` +
      (at96 ? "" : " (STL-10 at 1/9 of the 32x32 rate)"),
  );
}
console.log(
  `paper table (4 datasets x 3 ratios x 4 methods x ${BACKBONES.length} backbones x ${SEEDS} ` +
    `seeds, ${EPOCHS} epochs): ${totalHours.toFixed(0)} h = ${(totalHours / 24).toFixed(0)} days`,
);
for (const r of RATIOS) console.log(`train sizes at r = ${r}: ${JSON.stringify(trainSizes(r))}`);

const result = {
  adapter,
  steps,
  stl,
  activationBytesPerImage: memory,
  concatDenseNetBytesPerImage: concatMiB * 2 ** 20,
  paperTable: { seeds: SEEDS, epochs: EPOCHS, byBackbone: table, totalHours },
};
console.log(JSON.stringify(result));
if (args.out) await Deno.writeTextFile(args.out, JSON.stringify(result, null, 2) + "\n");
