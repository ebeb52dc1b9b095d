// fit keeps the last partial batch (as PyTorch's DataLoader without drop_last): over 60 examples in
// batches of 16 every epoch trains 16 + 16 + 16 + 12, matching an eager step-by-step reference
// (fresh eager steps, the same mixup draws and per-step learning rates over 4 steps per epoch); the
// tail's captured step is made once and replayed in later epochs; a NaN in the tail batch is
// caught at step 4; dropping the tail changes the weights; a third batch size replaces the tail step.
import { assert, assertEquals, assertRejects } from "@std/assert";
import { initDevice } from "../gpu/device.ts";
import "../gpu/ops/mod.ts";
import { Rng } from "../gpu/rng.ts";
import { readAll } from "../gpu/tensor.ts";
import type { Batch } from "../data/types.ts";
import { ETFClassifier } from "../nn/heads/etf_classifier.ts";
import { BatchNormalization } from "../nn/layers/batch_normalization.ts";
import { Dense } from "../nn/layers/dense.ts";
import { Flatten } from "../nn/layers/flatten.ts";
import { DotRegressionLoss } from "../nn/losses/mod.ts";
import { Mixup } from "../nn/losses/mixup.ts";
import { Classifier } from "../nn/model/classifier.ts";
import { Sequential } from "../nn/model/sequential.ts";
import { SGD } from "../nn/optimizers/mod.ts";
import { WarmupMultiStepSchedule } from "../nn/schedules.ts";
import {
  compile,
  type DataSource,
  fit,
  fitRng,
  NonFiniteLossError,
  trainingState,
  TrainStep,
} from "../nn/training/mod.ts";
import { TrainSteps } from "../nn/training/train_steps.ts";

await initDevice();

const K = 4, N = 60, B = 16, H = 4, C = 3, PIX = H * H * C, EPOCHS = 3;
const STEPS = Math.ceil(N / B); // 4: three full batches and one of 12

const rng0 = new Rng(17);
const images = Float32Array.from({ length: N * PIX }, () => rng0.normal());
const labels = Int32Array.from({ length: N }, (_, i) => (i * 5) % K);

/** Shuffled per epoch; batches of B and a last one of N % B (or without it: `dropTail`). */
function batchesOf(epoch: number, o: { dropTail?: boolean; poison?: number } = {}): Batch[] {
  const order = new Rng(100 + epoch).permutation(N);
  const out: Batch[] = [];
  for (let b = 0; b < N; b += B) {
    const n = Math.min(B, N - b);
    if (n < B && o.dropTail) break;
    const im = new Float32Array(n * PIX), lb = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      im.set(images.subarray(order[b + i] * PIX, (order[b + i] + 1) * PIX), i * PIX);
      lb[i] = labels[order[b + i]];
    }
    if (o.poison === epoch && n < B) im[7] = NaN;
    out.push({ images: im, labels: lb, shape: [n, H, H, C] });
  }
  return out;
}

function source(o: { dropTail?: boolean; poison?: number } = {}): DataSource {
  return {
    batches: (epoch) => batchesOf(epoch, o),
    batchesPerEpoch: () => (o.dropTail ? Math.floor(N / B) : STEPS),
  };
}

function setup() {
  const backbone = new Sequential([
    new Flatten(),
    new Dense(24),
    new BatchNormalization(),
    new Dense(12, { activation: "relu" }),
  ], { childNames: "index" });
  const model = new Classifier(backbone, new ETFClassifier(K), { seed: 6 });
  const optimizer = new SGD({
    learningRate: new WarmupMultiStepSchedule({
      base: 0.1,
      warmupEpochs: 2,
      milestones: [2],
      warmupBy: "step",
    }),
    momentum: 0.9,
    weightDecay: 5e-4,
  });
  compile(model, { optimizer, loss: new DotRegressionLoss() });
  return { model, optimizer };
}

async function weightsOf(model: Classifier): Promise<Map<string, number[]>> {
  const ws = model.weights();
  const host = await readAll(ws.map((w) => w.value));
  return new Map(ws.map((w, i) => [w.name, Array.from(host[i])]));
}

const SEED = 3;

Deno.test("fit trains on the last partial batch, as an eager step-by-step reference", async () => {
  // Reference: every batch through a fresh eager TrainStep, with fit's mixup draws and the
  // learning rate at step n of 4.
  const ref = setup();
  const state = trainingState(ref.model);
  const mixup = new Mixup(1);
  for (let epoch = 0; epoch < EPOCHS; epoch++) {
    const rng = fitRng(SEED, epoch);
    batchesOf(epoch).forEach((batch, n) => {
      if (epoch === 0 && n === 0) {
        ref.model.build(batch.shape);
        state.ensureArena();
      }
      const step = new TrainStep(state, batch.shape, { mixup, capture: false });
      ref.optimizer.applySchedule(epoch, n / STEPS);
      mixup.sample(batch.shape[0], rng);
      step.write(batch);
      step.run();
      step.dispose();
    });
  }
  const want = await weightsOf(ref.model);

  const run = async (capture: boolean) => {
    const { model } = setup();
    const lrs: number[] = [];
    const h = await fit(model, source(), {
      epochs: EPOCHS,
      seed: SEED,
      mixupAlpha: 1,
      capture,
      verbose: 0,
      progressEvery: 1,
      callbacks: [{ onProgress: (_e, _s, logs) => void lrs.push(logs.lr) }],
    });
    return { h, lrs, w: await weightsOf(model) };
  };
  const captured = await run(true);
  const eager = await run(false);
  assertEquals(captured.h.params.steps, STEPS);
  assertEquals(captured.lrs.length, EPOCHS * STEPS);
  // Step 4 of epoch 0 has lr 0.1 * (3/4) / 2: the partial batch counts in the schedule's progress.
  assert(Math.abs(captured.lrs[3] - 0.0375) < 1e-12, `lr ${captured.lrs}`);
  // Main step captured once, tail step captured once (epoch 1) and replayed in epoch 2.
  assertEquals(captured.h.params.capturedSteps, 2);
  assertEquals(eager.h.params.capturedSteps, 0);
  assertEquals(captured.h.history.loss, eager.h.history.loss);
  for (const [name, v] of want) {
    assertEquals(captured.w.get(name), v, `captured ${name}`);
    assertEquals(eager.w.get(name), v, `eager ${name}`);
  }

  // Without the tail batch the weights differ: the tail is really trained on.
  const dropped = setup();
  await fit(dropped.model, source({ dropTail: true }), {
    epochs: EPOCHS,
    seed: SEED,
    mixupAlpha: 1,
    verbose: 0,
  });
  const wd = await weightsOf(dropped.model);
  let differ = 0;
  for (const [name, v] of want) if (v.some((x, i) => x !== wd.get(name)![i])) differ++;
  assert(differ >= want.size - 1, `${differ} of ${want.size} tensors differ`);
});

Deno.test("the NaN guard sees the last partial batch (step 4 of 4)", async () => {
  const { model } = setup();
  const e = await assertRejects(
    () => fit(model, source({ poison: 1 }), { epochs: 3, verbose: 0, progressEvery: 2 }),
    NonFiniteLossError,
  );
  assertEquals([e.epoch, e.step], [1, 4]);
});

Deno.test("TrainSteps: one step per batch size, a third size replaces the tail step", async () => {
  const { model } = setup();
  const state = trainingState(model);
  const [full, tail] = batchesOf(0).filter((_, i) => i === 0 || i === STEPS - 1);
  model.build(full.shape);
  state.ensureArena();
  const steps = new TrainSteps(state, full.shape, { mixup: null });
  const run = (b: Batch) => {
    const s = steps.stepFor(b);
    s.write(b);
    s.run();
    return s;
  };
  assertEquals(run(full), steps.main);
  const t = run(tail);
  assertEquals(t.batchSize, 12);
  run(tail);
  assertEquals(run(tail), t);
  assertEquals([steps.captures, t.captured], [1, true]);
  const small: Batch = {
    images: tail.images.subarray(0, 5 * PIX),
    labels: tail.labels.subarray(0, 5),
    shape: [5, H, H, C],
  };
  const t5 = run(small);
  assertEquals([t5.batchSize, steps.tail === t5, steps.captures], [5, true, 1]);
  run(full);
  const s = await steps.readStats();
  assertEquals([s.steps, s.samples], [6, 16 + 12 * 3 + 5 + 16]);
  const bad: Batch = {
    images: new Float32Array(2 * 2 * 2 * C),
    labels: new Int32Array(2),
    shape: [2, 2, 2, C],
  };
  let msg = "";
  try {
    steps.stepFor(bad);
  } catch (err) {
    msg = (err as Error).message;
  }
  assert(msg.includes("fixed shape"), msg);
  steps.dispose();
});
