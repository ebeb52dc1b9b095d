// The library as a Keras user reaches for it, through mod.ts: a Sequential model compiled with
// strings, fit on in-memory arrays with validationSplit, EarlyStopping and ReduceLROnPlateau,
// evaluated, saved with saveWeights and loaded into a freshly built identical model (same names,
// same predictions); the Keras callbacks' semantics; in-memory data in every form fit, evaluate and
// predict take; class weights; top-k metrics; stable per-model layer names.
import { assert, assertAlmostEquals, assertEquals, assertRejects } from "@std/assert";
import {
  AdamW,
  type Batch,
  BatchNormalization,
  Conv2D,
  CrossEntropyLoss,
  Dense,
  DotRegressionLoss,
  EarlyStopping,
  type FitContext,
  Flatten,
  formatCheckpointPath,
  Functional,
  GlobalAveragePooling2D,
  initDevice,
  input,
  LearningRateScheduler,
  loadCheckpoint,
  ModelCheckpoint,
  NonFiniteLossError,
  readAll,
  ReduceLROnPlateau,
  ReLU,
  Rng,
  Sequential,
  SGD,
  tensor,
  TerminateOnNaN,
  writeTensor,
} from "../mod.ts";

await initDevice();

/** Three Gaussian blobs in 2-D, as nested arrays (Keras' numpy habit); shuffled. */
function blobs(n: number, seed: number): { x: number[][]; y: number[] } {
  const rng = new Rng(seed);
  const centres = [[0, 2], [2, -1], [-2, -1]];
  const x: number[][] = [], y: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    y.push(c);
    x.push([centres[c][0] + 0.6 * rng.normal(), centres[c][1] + 0.6 * rng.normal()]);
  }
  const order = rng.permutation(n);
  return { x: [...order].map((i) => x[i]), y: [...order].map((i) => y[i]) };
}

function build(): Sequential {
  return new Sequential([
    new Dense(16, { activation: "relu" }),
    new Dense(16, { activation: "relu" }),
    new Dense(3),
  ], { inputShape: [2] });
}

Deno.test("Keras flow: compile with strings, fit(x, y, {validationSplit}) with EarlyStopping and ReduceLROnPlateau, evaluate, saveWeights, loadWeights into a new model", async () => {
  const { x, y } = blobs(300, 1);
  const model = build();
  model.compile({
    optimizer: "adamw",
    loss: "sparse_categorical_crossentropy",
    metrics: ["accuracy"],
  });
  const early = new EarlyStopping({ monitor: "val_loss", patience: 3, restoreBestWeights: true });
  const plateau = new ReduceLROnPlateau({ monitor: "val_loss", factor: 0.5, patience: 1 });
  const history = await model.fit(x, y, {
    epochs: 40,
    batchSize: 32,
    validationSplit: 0.2,
    callbacks: [early, plateau],
    verbose: 0,
  });
  const epochs = history.epoch.length;
  assert(epochs >= 2 && epochs <= 40);
  assertEquals(history.history.val_loss.length, epochs);
  assert(history.history.val_loss.every(Number.isFinite));
  assert(early.bestEpoch >= 0);
  const result = await model.evaluate(x, y, { batchSize: 64 });
  assertEquals(result.count, 300);
  assert(result.accuracy > 0.9, `accuracy ${result.accuracy}`);

  const dir = await Deno.makeTempDir();
  await model.saveWeights(`${dir}/model.weights.safetensors`);
  const fresh = build();
  assertEquals(fresh.weights().map((w) => w.name), model.weights().map((w) => w.name));
  assertEquals(fresh.weights().map((w) => w.name).slice(0, 3), [
    "dense.weight",
    "dense.bias",
    "dense_1.weight",
  ]);
  await fresh.loadWeights(`${dir}/model.weights.safetensors`);
  const [a, b] = [await model.predict(x), await fresh.predict(x)];
  assertEquals(a.shape, [300, 3]);
  assertEquals(b.logits, a.logits);
  model.dispose();
  fresh.dispose();
  await Deno.remove(dir, { recursive: true });
});

/** A fake run context for driving callbacks with scripted logs. */
function fakeContext(model: Sequential, optimizer: SGD): FitContext {
  return {
    model,
    optimizer,
    epochs: 10,
    initialEpoch: 0,
    stepsPerEpoch: 1,
    batchSize: 1,
    stopTraining: false,
    history: null!,
    saveCheckpoint: () => Promise.resolve(),
  };
}

Deno.test("EarlyStopping: patience, minDelta, restores the best epoch's weights", async () => {
  const model = build();
  // Trained once, so the weights are views into the packed parameter arena.
  model.compile({ optimizer: "sgd", loss: "sparse_categorical_crossentropy" });
  await model.fit([[0, 1], [1, 0]], [0, 1], { verbose: 0 });
  const ctx = fakeContext(model, new SGD({ learningRate: 0.1 }));
  const es = new EarlyStopping({ monitor: "val_loss", patience: 2, restoreBestWeights: true });
  es.onTrainBegin();
  const w = model.weights()[0].value;
  const losses = [1, 0.8, 0.85, 0.9, 0.1];
  let best: number[] = [];
  for (let e = 0; e < losses.length && !ctx.stopTraining; e++) {
    if (e === 1) best = Array.from(await w.data()); // the weights of the best epoch
    await es.onEpochEnd(e, { val_loss: losses[e], loss: 1 }, ctx);
    // "training" moves the weights after every epoch
    writeTensor(w, (await w.data() as Float32Array).map((t) => t + 1));
  }
  assertEquals([ctx.stopTraining, es.stoppedEpoch, es.bestEpoch, es.best], [true, 3, 1, 0.8]);
  // restored when stopping (after epoch 3), then moved once more by the loop above
  assertEquals(Array.from(await w.data()), best.map((t) => Math.fround(t + 1)));
  await assertRejects(
    () => Promise.resolve(es.onEpochEnd(0, { loss: 1 }, ctx)),
    Error,
    "'val_loss' is not logged (logged: loss)",
  );
  const acc = new EarlyStopping({ monitor: "val_accuracy", minDelta: 0.05 });
  acc.onTrainBegin();
  const ctx2 = fakeContext(model, new SGD());
  await acc.onEpochEnd(0, { val_accuracy: 0.5 }, ctx2);
  await acc.onEpochEnd(1, { val_accuracy: 0.52 }, ctx2); // not by minDelta: stops (patience 0)
  assertEquals([ctx2.stopTraining, acc.best], [true, 0.5]);
  model.dispose();
});

Deno.test("ReduceLROnPlateau: factor after patience, cooldown, minLr (scales the schedule)", () => {
  const model = build();
  const opt = new SGD({ learningRate: 0.1 });
  const ctx = fakeContext(model, opt);
  const cb = new ReduceLROnPlateau({ factor: 0.5, patience: 2, cooldown: 2, minLr: 0.02 });
  cb.onTrainBegin();
  const lrs: number[] = [];
  const losses = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1];
  losses.forEach((l, e) => {
    const lr = opt.schedule.lr(e, 0) * opt.lrScale;
    lrs.push(lr);
    cb.onEpochEnd(e, { val_loss: l, lr }, ctx);
  });
  // Epochs 1, 2 do not improve on epoch 0: x0.5 after epoch 2; 2 epochs of cooldown (Keras counts
  // the second one into the next patience), x0.5 after epoch 5 and after epoch 8 (held at minLr).
  const want = [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.02];
  lrs.forEach((v, i) => assertAlmostEquals(v, want[i], 1e-12, `epoch ${i}`));
  assertEquals(cb.reductions, 3);
  model.dispose();
});

/** A few fixed batches of 4-D images for the tiny conv net (8x8x3, 4 classes). */
function imageBatches(n: number, seed: number, batch = 8, poison?: number): Batch[] {
  const rng = new Rng(seed);
  const out: Batch[] = [];
  for (let s = 0; s < n; s += batch) {
    const b = Math.min(batch, n - s);
    const images = Float32Array.from({ length: b * 8 * 8 * 3 }, () => rng.normal());
    const labels = Int32Array.from({ length: b }, (_, i) => (s + i) % 4);
    for (let i = 0; i < b; i++) images[i * 192 + labels[i]] += 3;
    if (poison !== undefined && out.length === poison) images[0] = NaN;
    out.push({ images, labels, shape: [b, 8, 8, 3] });
  }
  return out;
}

function convNet(seed = 1): Sequential {
  return new Sequential([
    new Conv2D(8, 3, { padding: "same", activation: "relu" }),
    new GlobalAveragePooling2D(),
    new Dense(4),
  ], { inputShape: [8, 8, 3], seed });
}

Deno.test("LearningRateScheduler, ModelCheckpoint (best only / every epoch, weights only / full), top-k val metrics", async () => {
  const train = imageBatches(32, 2), val = imageBatches(16, 3);
  const model = convNet();
  const opt = new SGD({ learningRate: 0.3, momentum: 0.9 });
  model.compile({ optimizer: opt, loss: "sparse_categorical_crossentropy", metrics: ["top2"] });
  const dir = await Deno.makeTempDir();
  const best = new ModelCheckpoint(`${dir}/best-{epoch:02d}.safetensors`, {
    monitor: "val_loss",
    saveBestOnly: true,
    saveWeightsOnly: true,
  });
  const every = new ModelCheckpoint(`${dir}/all/e{epoch}-{val_loss:.3f}.safetensors`);
  const sched = new LearningRateScheduler((epoch) => (epoch < 2 ? 0.05 : 0));
  const h = await model.fit(train, {
    epochs: 4,
    validationData: val,
    callbacks: [sched, best, every],
    verbose: 0,
  });
  assertEquals(h.history.lr, [0.05, 0.05, 0, 0]);
  assertEquals(opt.schedule.lr(0, 0), 0.3, "the optimizer's schedule is put back");
  assertEquals(h.history.val_top2_accuracy.length, 4);
  h.history.val_top2_accuracy.forEach((v, i) => assert(v >= h.history.val_accuracy[i]));
  // lr 0 in epochs 2, 3 (no BN statistics either): the weights stand still.
  assertEquals(h.history.val_loss[2], h.history.val_loss[3]);
  assert(best.saved.length >= 1 && best.saved.length <= 2, best.saved.join());
  assertEquals(every.saved.length, 4);
  assertEquals(
    every.saved[3],
    `${dir}/all/e4-${h.history.val_loss[3].toFixed(3)}.safetensors`,
  );
  const r = await model.evaluate(val);
  assertAlmostEquals(r.metrics.top2_accuracy, h.history.val_top2_accuracy[3], 1e-6);
  assert(r.metrics.top2_accuracy >= r.accuracy);
  // Weights-only files load with loadWeights; full checkpoints resume with the optimizer state.
  const copy = convNet(9);
  await copy.loadWeights(best.saved[best.saved.length - 1]);
  const full = convNet(9);
  const info = await loadCheckpoint(every.saved[3], full, {
    optimizer: new SGD({ learningRate: 0.3, momentum: 0.9 }),
  });
  assertEquals(info.epoch, 4);
  assertEquals(
    (await full.predict(val)).logits,
    (await model.predict(val)).logits,
  );
  assertEquals(formatCheckpointPath("m{epoch:03d}_{loss:.2f}", 6, { loss: 0.5 }), "m007_0.50");
  for (const m of [model, copy, full]) m.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("TerminateOnNaN: a NaN loss ends fit cleanly with the history so far", async () => {
  const model = new Sequential([new Flatten(), new Dense(4)], { inputShape: [8, 8, 3] });
  model.compile({ optimizer: new SGD({ learningRate: 0.01 }), loss: "cross_entropy" });
  const bad = imageBatches(32, 4, 8, 2); // batch 3 of every epoch holds a NaN
  const good = imageBatches(32, 4);
  await model.fit(good, { epochs: 1, verbose: 0 });
  await assertRejects(
    () => model.fit(bad, { epochs: 3, verbose: 0, progressEvery: 1 }),
    NonFiniteLossError,
  );
  const stop = new TerminateOnNaN();
  const h = await model.fit(bad, { epochs: 3, verbose: 0, progressEvery: 1, callbacks: [stop] });
  assert(stop.terminatedBy instanceof NonFiniteLossError);
  assertEquals(h.epoch, []);
  model.dispose();
});

Deno.test("in-memory data: Batch[], nested arrays, flat typed arrays, tensors, [x, y] validation", async () => {
  const batches = imageBatches(24, 5);
  const flatX = new Float32Array(24 * 192), ys = new Int32Array(24);
  batches.forEach((b, i) => {
    flatX.set(b.images, i * 8 * 192);
    ys.set(b.labels, i * 8);
  });
  const model = convNet();
  model.compile({ optimizer: new SGD({ learningRate: 0 }), loss: new CrossEntropyLoss() });
  // The same examples in every form give the same evaluation.
  const fromBatches = await model.evaluate(batches);
  const fromFlat = await model.evaluate(flatX, ys, { batchSize: 5 });
  const fromTensor = await model.evaluate(tensor(flatX, [24, 8, 8, 3]), tensor(ys, [24], "i32"));
  const fromShape = await model.evaluate({ data: flatX, shape: [24, 8, 8, 3] }, Array.from(ys));
  for (const r of [fromFlat, fromTensor, fromShape]) {
    assertEquals(r.count, 24);
    assertAlmostEquals(r.loss, fromBatches.loss, 1e-5);
    assertEquals(r.correct, fromBatches.correct);
  }
  const p = await model.predict(flatX, { batchSize: 7 });
  assertEquals(p.shape, [24, 4]);
  assertEquals(p.logits, (await model.predict(batches)).logits);
  // fit on arrays with [x, y] validation; lr 0 keeps the weights, so val_loss equals evaluate's.
  const h = await model.fit(flatX, ys, {
    epochs: 2,
    batchSize: 8,
    validationData: [flatX, ys],
    verbose: 0,
  });
  assertAlmostEquals(h.history.val_loss[1], fromBatches.loss, 1e-5);
  // Class weights: uniform weights of 2 double the (unchanging) training loss; validation stays
  // unweighted; "balanced" comes from the training counts.
  const w1 = await model.fit(flatX, ys, { epochs: 1, batchSize: 8, shuffle: false, verbose: 0 });
  const w2 = await model.fit(flatX, ys, {
    epochs: 1,
    batchSize: 8,
    shuffle: false,
    classWeight: [2, 2, 2, 2],
    validationData: batches,
    verbose: 0,
  });
  assertAlmostEquals(w2.history.loss[0], 2 * w1.history.loss[0], 1e-5);
  assertAlmostEquals(w2.history.val_loss[0], fromBatches.loss, 1e-5);
  const wb = await model.fit(flatX, ys, { epochs: 1, classWeight: "balanced", verbose: 0 });
  assert(Number.isFinite(wb.history.loss[0]));
  await assertRejects(
    () => model.fit(batches, { epochs: 1, classWeight: "balanced", verbose: 0 }),
    Error,
    '"balanced" needs the training class counts',
  );
  model.dispose();
});

Deno.test("stable layer names: per model (Keras), explicit names kept, Functional too", async () => {
  const make = () =>
    new Sequential([
      new Conv2D(4, 3, { padding: 1 }),
      new BatchNormalization(),
      new ReLU(),
      new Conv2D(4, 3, { padding: 1, name: "conv2d_1" }), // given: the auto one must avoid it
      new Conv2D(4, 3, { padding: 1 }),
      new GlobalAveragePooling2D(),
      new Dense(2),
    ], { inputShape: [6, 6, 3] });
  const a = make(), b = make();
  const names = a.layers.map((l) => l.name);
  assertEquals(names, [
    "conv2d",
    "batch_normalization",
    "re_lu",
    "conv2d_1",
    "conv2d_2",
    "global_average_pooling2d",
    "dense",
  ]);
  assertEquals(b.layers.map((l) => l.name), names);
  assertEquals(b.weights().map((w) => w.name), a.weights().map((w) => w.name));
  const fn = () => {
    const x = input([6, 6, 3]);
    const y = new Conv2D(4, 3, { padding: 1 }).apply(x);
    const z = new Conv2D(4, 3, { padding: 1 }).apply(y);
    return new Functional({
      inputs: x,
      outputs: new Dense(2).apply(new GlobalAveragePooling2D().apply(z)),
    });
  };
  const f1 = fn(), f2 = fn();
  assertEquals(f1.layers.map((l) => l.name), [
    "conv2d",
    "conv2d_1",
    "global_average_pooling2d",
    "dense",
  ]);
  assertEquals(f2.weights().map((w) => w.name), f1.weights().map((w) => w.name));
  // A model of another architecture does not take the weights, and says why.
  const dir = await Deno.makeTempDir();
  await a.saveWeights(`${dir}/a.safetensors`);
  const other = new Sequential([new Dense(2)], { inputShape: [6, 6, 3] });
  await assertRejects(
    () => other.loadWeights(`${dir}/a.safetensors`),
    Error,
    "does not match the model: unexpected in the file: batch_normalization.bias",
  );
  // ... and an unbuilt identical model builds itself from the stored input shape.
  const lazy = new Sequential([
    new Conv2D(4, 3, { padding: 1 }),
    new BatchNormalization(),
    new ReLU(),
    new Conv2D(4, 3, { padding: 1, name: "conv2d_1" }),
    new Conv2D(4, 3, { padding: 1 }),
    new GlobalAveragePooling2D(),
    new Dense(2),
  ]);
  await lazy.loadWeights(`${dir}/a.safetensors`);
  const [wa, wl] = await readAll([a.weights()[0].value, lazy.weights()[0].value]);
  assertEquals(wl, wa);
  for (const m of [a, b, f1, f2, other, lazy]) m.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("compile by name: Keras defaults", () => {
  const m = build();
  m.compile({ optimizer: "sgd", loss: "dot_regression" });
  const c = m.compiled as { optimizer: SGD; loss: unknown };
  assert(c.optimizer instanceof SGD && c.optimizer.schedule.lr(0, 0) === 0.01);
  assert(c.loss instanceof DotRegressionLoss);
  m.compile({ optimizer: "adam", loss: "sparse_categorical_crossentropy" });
  const d = m.compiled as { optimizer: AdamW; loss: unknown };
  assert(d.optimizer instanceof AdamW && d.optimizer.weightDecay === 0);
  assert(d.loss instanceof CrossEntropyLoss);
  m.dispose();
});
