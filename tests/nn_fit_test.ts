// The training loop (nn/training): overfitting 64 fixed images with the ETF head + DR loss and with
// a learnable head + CE; captured vs eager steps give identical weights (with mixup); evaluate's
// GPU-accumulated per-class counts (partial last batch included) and neural-collapse metrics
// against host computations; an interrupted run resumed from its checkpoint ends where the
// uninterrupted run does; the NaN guard names the epoch and step; clear errors.
import { assert, assertEquals, assertRejects } from "@std/assert";
import { initDevice } from "../gpu/device.ts";
import "../gpu/ops/mod.ts";
import { readAll, tensor } from "../gpu/tensor.ts";
import { loadCheckpoint, readCheckpointInfo } from "../nn/checkpoint.ts";
import { DenseClassifier } from "../nn/heads/dense_classifier.ts";
import { ETFClassifier } from "../nn/heads/etf_classifier.ts";
import { BatchNormalization } from "../nn/layers/batch_normalization.ts";
import { Dense } from "../nn/layers/dense.ts";
import { Flatten } from "../nn/layers/flatten.ts";
import { CrossEntropyLoss, DotRegressionLoss } from "../nn/losses/mod.ts";
import { neuralCollapseMetrics } from "../nn/metrics/neural_collapse.ts";
import { Classifier } from "../nn/model/classifier.ts";
import { Sequential } from "../nn/model/sequential.ts";
import { resnet32 } from "../nn/models/resnet32.ts";
import { SGD } from "../nn/optimizers/mod.ts";
import { WarmupMultiStepSchedule } from "../nn/schedules.ts";
import {
  CheckpointCallback,
  compile,
  CsvLogger,
  type DataSource,
  evaluate,
  fit,
  JsonlLogger,
  NonFiniteLossError,
  predict,
  ProgressBarCallback,
} from "../nn/training/mod.ts";
import { prototypeData, prototypeSource } from "./fixtures/prototype_data.ts";
import { useFastCompile } from "./fast_compile.ts";

useFastCompile();
await initDevice();

const K = 4, N = 64, H = 6, C = 3, PIX = H * H * C;

const dataset = (seed: number) =>
  prototypeData(seed, { classes: K, count: N, size: H, channels: C });
const source = prototypeSource;

function mlp(head: "etf" | "dense", seed: number, relu = true) {
  const backbone = new Sequential([
    new Flatten(),
    new Dense(32),
    new BatchNormalization(),
    new Dense(16, { activation: relu ? "relu" : "linear" }),
  ], { childNames: "index" });
  return new Classifier(backbone, head === "etf" ? new ETFClassifier(K) : new DenseClassifier(K), {
    seed,
  });
}

async function weightsOf(
  model: { weights(): { name: string; value: import("../gpu/tensor.ts").Tensor }[] },
) {
  const ws = model.weights();
  const host = await readAll(ws.map((w) => w.value));
  return new Map(ws.map((w, i) => [w.name, Array.from(host[i])]));
}

const data = dataset(5);

for (const head of ["etf", "dense"] as const) {
  Deno.test(`fit overfits 64 images with the ${head} head (${head === "etf" ? "DR" : "CE"})`, async () => {
    const model = mlp(head, 3);
    compile(model, {
      optimizer: new SGD({ learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4 }),
      loss: head === "etf" ? new DotRegressionLoss() : new CrossEntropyLoss(),
    });
    const train = source(data, 16, { shuffle: true });
    const h = await fit(model, train, { epochs: 25, seed: 1, verbose: 0 });
    assertEquals(h.epoch.length, 25);
    assertEquals(h.params.steps, 4);
    assert(h.history.loss[24] < h.history.loss[0] / 4, `loss ${h.history.loss}`);
    // Training-mode accuracy (batch statistics) reaches 100% and stays near it.
    assert(h.history.accuracy.slice(-10).every((a) => a >= 0.95), `accuracy ${h.history.accuracy}`);
    assert(h.history.accuracy.includes(1), `accuracy ${h.history.accuracy}`);
    // Evaluation in inference mode, batch 24: 24 + 24 + a partial 16 all count.
    const ev = await evaluate(model, source(data, 24), { neuralCollapse: true });
    assertEquals(ev.count, N);
    assertEquals(ev.accuracy, 1);
    assertEquals(ev.total, [16, 16, 16, 16]);
    // Per-class counts and loss agree with a host computation from predict().
    const { logits, shape } = await predict(model, source(data, 24));
    assertEquals(shape, [N, K]);
    const correct = [0, 0, 0, 0];
    for (let i = 0; i < N; i++) {
      const row = logits.subarray(i * K, (i + 1) * K);
      if (row.indexOf(Math.max(...row)) === data.labels[i]) correct[data.labels[i]]++;
    }
    assertEquals(ev.correct, correct);
    assert(Number.isFinite(ev.loss) && ev.loss >= 0);
    // Neural-collapse statistics against the host, from the features of one full-batch forward.
    const x = tensor(data.images, [N, H, H, C]);
    const out = model.forward(x, { training: false });
    const [hf, w] = await readAll([out.features!, out.classifier!]);
    const d = out.features!.shape[1];
    const sums = new Float64Array(K * d), gram = new Float64Array(d * d);
    for (let i = 0; i < N; i++) {
      const c = data.labels[i];
      for (let a = 0; a < d; a++) {
        sums[c * d + a] += hf[i * d + a];
        for (let b = 0; b < d; b++) gram[a * d + b] += hf[i * d + a] * hf[i * d + b];
      }
    }
    const wt = new Float64Array(K * d);
    for (let k = 0; k < K; k++) for (let a = 0; a < d; a++) wt[k * d + a] = w[a * K + k];
    const want = neuralCollapseMetrics(
      { classSums: sums, counts: Float64Array.from([16, 16, 16, 16]), gram, numClasses: K, dim: d },
      wt,
    );
    const got = ev.neuralCollapse!;
    for (
      const k of ["nc1", "normalizedDistance", "meanCosH", "meanCosW", "meanDiagCosHW"] as const
    ) {
      assert(
        Math.abs(got[k] - want[k]) <= 2e-3 * (1 + Math.abs(want[k])),
        `${k}: ${got[k]} vs ${want[k]}`,
      );
    }
  });
}

Deno.test("captured and eager steps give identical weights (with mixup)", async () => {
  const run = async (capture: boolean) => {
    const model = mlp("etf", 9);
    compile(model, {
      optimizer: new SGD({ learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4, nesterov: true }),
      loss: new DotRegressionLoss(),
    });
    const h = await fit(model, source(data, 16, { shuffle: true }), {
      epochs: 2,
      seed: 4,
      mixupAlpha: 1,
      capture,
      verbose: 0,
      progressEvery: 3,
    });
    return { w: await weightsOf(model), h };
  };
  const a = await run(true), b = await run(false);
  assert(a.h.params.dispatchesPerStep as number > 0);
  assertEquals(b.h.params.dispatchesPerStep, 0);
  assertEquals(a.h.history.loss, b.h.history.loss);
  for (const [name, v] of a.w) assertEquals(v, b.w.get(name), name);
});

Deno.test("an interrupted fit resumed from its checkpoint matches the uninterrupted run", async () => {
  const dir = await Deno.makeTempDir();
  const train = source(data, 16, { shuffle: true });
  const val = source(data, 24);
  const setup = () => {
    const model = mlp("etf", 21);
    const optimizer = new SGD({
      learningRate: new WarmupMultiStepSchedule({
        base: 0.05,
        warmupEpochs: 2,
        milestones: [3],
        warmupBy: "step",
      }),
      momentum: 0.9,
      weightDecay: 5e-4,
    });
    compile(model, { optimizer, loss: new DotRegressionLoss() });
    return { model, optimizer };
  };
  const opts = { seed: 8, mixupAlpha: 1, verbose: 0 as const, validationData: val };
  const full = setup();
  const hFull = await fit(full.model, train, { ...opts, epochs: 5 });
  const want = await weightsOf(full.model);

  const first = setup();
  const sink = new WritableStream<Uint8Array>();
  const ckpt = new CheckpointCallback({ dir: `${dir}/ckpt`, monitor: "val_loss" });
  await fit(first.model, train, {
    ...opts,
    epochs: 3,
    config: { run: "test" },
    callbacks: [
      ckpt,
      new JsonlLogger(`${dir}/log.jsonl`),
      new CsvLogger(`${dir}/log.csv`),
      new ProgressBarCallback({ writable: sink }),
    ],
  });
  const info = await readCheckpointInfo(ckpt.lastPath);
  assertEquals(info.epoch, 3);
  assertEquals(info.seed, 8);
  assertEquals(info.config, { run: "test" });
  assertEquals(info.extra.monitor, "val_loss");

  const resumed = setup();
  const loaded = await loadCheckpoint(ckpt.lastPath, resumed.model, {
    optimizer: resumed.optimizer,
  });
  const h2 = await fit(resumed.model, train, {
    ...opts,
    epochs: 5,
    initialEpoch: loaded.epoch,
    callbacks: [
      new CheckpointCallback({ dir: `${dir}/ckpt`, monitor: "val_loss" }),
      new JsonlLogger(`${dir}/log.jsonl`),
      new CsvLogger(`${dir}/log.csv`),
    ],
  });
  assertEquals(h2.epoch, [3, 4]);
  const got = await weightsOf(resumed.model);
  for (const [name, v] of want) {
    const g = got.get(name)!;
    for (let i = 0; i < v.length; i++) {
      assert(
        Math.abs(g[i] - v[i]) <= 1e-5 * (1 + Math.abs(v[i])),
        `${name}[${i}]: ${g[i]} vs ${v[i]}`,
      );
    }
  }
  assertEquals(h2.history.loss, hFull.history.loss.slice(3));
  const lines = (await Deno.readTextFile(`${dir}/log.jsonl`)).trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  assertEquals(lines.map((l) => l.epoch), [0, 1, 2, 3, 4]);
  const csv = (await Deno.readTextFile(`${dir}/log.csv`)).trim().split("\n");
  assertEquals(csv.length, 6);
  assert(csv[0].startsWith("epoch,loss,accuracy,lr"), csv[0]);
  const best = await readCheckpointInfo(`${dir}/ckpt/best.safetensors`);
  assertEquals(
    best.extra.bestEpoch,
    h2.epoch.concat([0, 1, 2]).reduce((b, e) => {
      const all = [...hFull.history.val_loss];
      return all[e] < all[b] ? e : b;
    }, 0),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("the NaN guard names the epoch and step of the first non-finite loss", async () => {
  // (No ReLU: the op library's relu maps NaN to 0, which would hide the poisoned input.)
  const model = mlp("dense", 2, false);
  compile(model, { optimizer: new SGD({ learningRate: 0.01 }), loss: new CrossEntropyLoss() });
  const bad = source(data, 8, { poison: { epoch: 1, step: 3 } });
  const e = await assertRejects(
    () => fit(model, bad, { epochs: 3, verbose: 0, progressEvery: 2 }),
    NonFiniteLossError,
  );
  assertEquals([e.epoch, e.step], [1, 3]);
  // The message counts epochs from 1, as the progress and summary lines do.
  assert(/in epoch 2 \(counting from 1\), step 3 of the epoch/.test(e.message), e.message);
});

Deno.test("fit and evaluate give clear errors", async () => {
  const model = mlp("dense", 2);
  await assertRejects(() => fit(model, source(data, 16), { epochs: 1 }), Error, "call compile");
  compile(model, { optimizer: new SGD({ learningRate: 0.01 }), loss: new CrossEntropyLoss() });
  const mixed: DataSource = {
    batches: () => [
      { images: new Float32Array(8 * PIX), labels: new Int32Array(8), shape: [8, H, H, C] },
      { images: new Float32Array(8 * 2 * 2 * C), labels: new Int32Array(8), shape: [8, 2, 2, C] },
    ],
  };
  await assertRejects(() => fit(model, mixed, { epochs: 1, verbose: 0 }), Error, "fixed shape");
  const short: DataSource = {
    batches:
      () => [{ images: new Float32Array(3), labels: new Int32Array(8), shape: [8, H, H, C] }],
  };
  await assertRejects(() => fit(model, short, { epochs: 1, verbose: 0 }), Error, "values");
  await assertRejects(() => evaluate(model, { batches: () => [] }), Error, "no batch");
  await assertRejects(() => fit(model, source(data, 16), { epochs: 1.5 }), Error, "invalid epochs");
});

// The done-when of the nn issue, with the real backbone: a full-depth ResNet-32 (3 stages x 5
// basic blocks, option-A shortcuts; width x0.25 and 6x6 inputs so it runs in seconds on a CPU
// adapter) overfits the 64 fixed images with the ETF head + DR and with a learnable head + CE.
for (const head of ["etf", "dense"] as const) {
  Deno.test(`ResNet-32 overfits 64 images with the ${head} head within 40 epochs`, async () => {
    const model = resnet32({ numClasses: K, head, widthMultiplier: 0.25, seed: 4 });
    compile(model, {
      optimizer: new SGD({ learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4 }),
      loss: head === "etf" ? new DotRegressionLoss() : new CrossEntropyLoss(),
    });
    let epochs = 0, acc = 0;
    while (epochs < 40 && acc < 1) {
      await fit(model, source(data, 16, { shuffle: true }), {
        epochs: epochs + 5,
        initialEpoch: epochs,
        seed: 1,
        verbose: 0,
      });
      epochs += 5;
      acc = (await evaluate(model, source(data, 16))).accuracy;
    }
    assertEquals(acc, 1, `train accuracy ${acc} after ${epochs} epochs`);
  });
}
