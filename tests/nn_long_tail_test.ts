// The long-tail baselines: balanced softmax / logit adjustment, LDAM with deferred re-weighting,
// class weights ("balanced" too) and the top-k metric, each against a host f64 reference (value,
// per-example values and the gradient by finite differences); and on a long-tailed synthetic set,
// balanced softmax's tail accuracy beats plain cross-entropy's at the same epochs, with the losses
// as the recipes' `--loss` builds them.
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { backward } from "../gpu/autograd.ts";
import { initDevice } from "../gpu/device.ts";
import { TUNING } from "../gpu/kernels/tuning.ts";
import "../gpu/ops/mod.ts";
import { tidyAsync } from "../gpu/scope.ts";
import { readAll, tensor } from "../gpu/tensor.ts";
import { syntheticDataset } from "../data/synthetic.ts";
import {
  balancedClassWeights,
  BalancedSoftmaxLoss,
  ClassWeightedLoss,
  CrossEntropyLoss,
  effectiveNumberWeights,
  LDAMLoss,
  ldamMargins,
  LogitAdjustedLoss,
  type Loss,
  resolveClassWeight,
} from "../nn/losses/mod.ts";
import { topKHits } from "../nn/metrics/top_k.ts";
import { BatchNormalization } from "../nn/layers/batch_normalization.ts";
import { Conv2D } from "../nn/layers/conv2d.ts";
import { Dense } from "../nn/layers/dense.ts";
import { ReLU } from "../nn/layers/activation.ts";
import { GlobalAveragePooling2D } from "../nn/layers/pooling.ts";
import { Sequential } from "../nn/model/sequential.ts";
import { SGD } from "../nn/optimizers/sgd.ts";
import { parseRecipeFlags, type RecipeDefaults } from "../recipes/lib/flags.ts";
import { makeLoss } from "../recipes/lib/training_setup.ts";
import { checkGradients, randArray } from "./nn_reference.ts";

await initDevice();

const B = 7, K = 4;
const COUNTS = [50, 20, 6, 1];
const Y = [0, 1, 2, 3, 0, 2, 3];

function logSoftmaxRow(z: number[]): number[] {
  const mx = Math.max(...z);
  const lse = mx + Math.log(z.reduce((s, v) => s + Math.exp(v - mx), 0));
  return z.map((v) => v - lse);
}

/** Per-example CE of rows of `z` (f64) with an additive offset per class. */
function ceRows(z: Float64Array, y: number[], offset: (i: number, c: number) => number): number[] {
  return y.map((label, i) => {
    const row = Array.from({ length: K }, (_, c) => z[i * K + c] + offset(i, c));
    return -logSoftmaxRow(row)[label];
  });
}

const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
const n = COUNTS.reduce((a, b) => a + b, 0);
const margins = COUNTS.map((c) => c ** -0.25).map((v, _, a) => (0.5 * v) / Math.max(...a));
const drw = (() => {
  const raw = COUNTS.map((c) => (1 - 0.9999) / (1 - 0.9999 ** c));
  const s = raw.reduce((a, b) => a + b, 0);
  return raw.map((w) => (w * K) / s);
})();
const cw = [0.5, 1, 2, 3];

interface Case {
  name: string;
  loss: () => Loss;
  /** Host per-example values (their mean is the loss) of logits z. */
  rows: (z: Float64Array) => number[];
  prepare?: (l: Loss) => void;
}

const CASES: Case[] = [
  {
    name: "balanced softmax: CE of z + log(n_c)",
    loss: () => new BalancedSoftmaxLoss({ classCounts: COUNTS }),
    rows: (z) => ceRows(z, Y, (_, c) => Math.log(COUNTS[c] / n)),
  },
  {
    name: "logit adjustment, tau 0.7: CE of z + tau log(pi_c)",
    loss: () => new LogitAdjustedLoss({ classCounts: COUNTS, tau: 0.7 }),
    rows: (z) => ceRows(z, Y, (_, c) => 0.7 * Math.log(COUNTS[c] / n)),
  },
  {
    name: "LDAM before re-weighting: CE of s (z - m_y)",
    loss: () => new LDAMLoss({ classCounts: COUNTS, scale: 3, drwEpoch: 5 }),
    prepare: (l) => l.onEpochBegin!(4, 10),
    rows: (z) => ceRows(z.map((v) => 3 * v), Y, (i, c) => (c === Y[i] ? -3 * margins[c] : 0)),
  },
  {
    name: "LDAM with DRW: effective-number weighted mean",
    loss: () => new LDAMLoss({ classCounts: COUNTS, scale: 3, drwEpoch: 5 }),
    prepare: (l) => l.onEpochBegin!(5, 10),
    rows: (z) => {
      const l = ceRows(z.map((v) => 3 * v), Y, (i, c) => (c === Y[i] ? -3 * margins[c] : 0));
      const w = Y.map((c) => drw[c]);
      const sw = w.reduce((a, b) => a + b, 0);
      return l.map((v, i) => (v * w[i] * B) / sw);
    },
  },
  {
    name: "class weights on CE: mean of w_y l_i (Keras)",
    loss: () => new ClassWeightedLoss(new CrossEntropyLoss(), cw),
    rows: (z) => ceRows(z, Y, () => 0).map((v, i) => v * cw[Y[i]]),
  },
];

for (const c of CASES) {
  Deno.test(`${c.name}: value, per-example values and gradient match the host`, async () => {
    await tidyAsync(async () => {
      const zh = Float64Array.from(randArray(B * K, 3), (v) => 2 * v);
      const z = tensor(Float32Array.from(zh), [B, K]);
      z.requiresGrad = true;
      const labels = tensor(Y, [B], "i32");
      const loss = c.loss();
      c.prepare?.(loss);
      const value = loss.compute({ logits: z }, labels);
      const rows = loss.perExample!({ logits: z }, labels);
      const g = backward(value, [z]).get(z)!;
      const [v, r, gv] = await readAll([value, rows, g]);
      const want = c.rows(zh);
      assertAlmostEquals(v[0], mean(want), 1e-5);
      assertEquals(r.length, B);
      want.forEach((w, i) => assertAlmostEquals(r[i], w, 1e-5, `row ${i}`));
      checkGradients([{ name: "logits", host: zh, grad: gv }], () => mean(c.rows(zh)), {
        perParam: 8,
      });
      (loss as { dispose?(): void }).dispose?.();
    });
  });
}

Deno.test("LDAM margins, DRW weights, balanced class weights and their errors", () => {
  assertEquals(Array.from(ldamMargins(COUNTS, 0.5)), margins.map(Math.fround));
  assertEquals(Array.from(effectiveNumberWeights(COUNTS, 0.9999)), drw.map(Math.fround));
  assertEquals(balancedClassWeights([300, 100]), [2 / 3, 2]);
  assertEquals(resolveClassWeight("balanced", 3, [10, 5, 0]), [0.5, 1, 0]);
  assertEquals(resolveClassWeight({ 2: 4 }, 3), [1, 1, 4]);
  assertThrows(() => resolveClassWeight([1, 2], 3), Error, "2 weights for 3 classes");
  assertThrows(() => resolveClassWeight({ 5: 1 }, 3), Error, "class 5 is outside [0, 3)");
  assertThrows(() => resolveClassWeight({ 1: -1 }, 3), Error, "must be >= 0");
  assertThrows(() => resolveClassWeight("balanced", 3), Error, "needs the training class counts");
  assertThrows(() => new BalancedSoftmaxLoss({ classCounts: [3] }), Error, "classCounts");
  assertThrows(
    () => new ClassWeightedLoss({ name: "x", compute: () => null!, getConfig: () => ({}) }, [1]),
    Error,
    "per-example values",
  );
});

Deno.test("top-k hits: fewer than k classes score strictly higher than the label (ties count)", async () => {
  await tidyAsync(async () => {
    const z = [
      [3, 2, 1, 0],
      [0, 1, 2, 3],
      [1, 1, 1, 1],
      [5, 4, 4, 0],
    ];
    const y = [2, 0, 3, 2];
    const logits = tensor(Float32Array.from(z.flat()), [4, 4]);
    const labels = tensor(y, [4], "i32");
    const [h2, h3, h1] = await readAll([
      topKHits(logits, labels, 2),
      topKHits(logits, labels, 3),
      topKHits(logits, labels, 1),
    ]);
    // ranks (classes strictly above the label): 2, 3, 0, 1
    assertEquals(Array.from(h1), [0, 0, 1, 0]);
    assertEquals(Array.from(h2), [0, 0, 1, 1]);
    assertEquals(Array.from(h3), [1, 0, 1, 1]);
  });
});

Deno.test("long tail: balanced softmax (and the other --loss baselines) beat CE's tail accuracy", async () => {
  const tuning = TUNING.fastCompile;
  TUNING.fastCompile = true; // small conv net, cold lavapipe compiles
  try {
    const size = 16, epochs = 8;
    const { train, test } = syntheticDataset({
      numClasses: 10,
      size,
      nMax: 200,
      ratio: 0.02,
      testPerClass: 40,
      seed: 3,
    });
    const norm = (a: Uint8Array) => Float32Array.from(a, (v) => (v / 255 - 0.5) / 0.25);
    const [xTrain, xTest] = [norm(train.images), norm(test.images)];
    const trainCounts = new Array(10).fill(0);
    for (const l of train.labels) trainCounts[l]++;
    assertEquals(trainCounts, [200, 129, 83, 54, 35, 22, 14, 9, 6, 4]);
    const defaults = {
      dataDir: "d",
      out: "o",
      ratio: 0.02,
      epochs,
      batchSize: 64,
      lr: 0.05,
      weightDecay: 5e-4,
      classifier: "learnable",
      loss: "ce",
      mixup: 0,
      sampler: "instance",
      seed: 0,
      resume: false,
      evalEvery: 1,
      workers: 0,
    } as RecipeDefaults;
    const tail: Record<string, number> = {};
    for (const flag of ["ce", "balanced-softmax", "ce-weighted", "ldam-drw"]) {
      const parsed = parseRecipeFlags(["--loss", flag], defaults, "test");
      assert(parsed.ok, `--loss ${flag}`);
      const loss = makeLoss(parsed.flags.loss, 0, { trainCounts, epochs, classifier: "learnable" });
      const model = new Sequential([
        new Conv2D(16, 3, { padding: 1, strides: 2 }),
        new BatchNormalization(),
        new ReLU(),
        new Conv2D(32, 3, { padding: 1, strides: 2 }),
        new BatchNormalization(),
        new ReLU(),
        new GlobalAveragePooling2D(),
        new Dense(10),
      ], { inputShape: [size, size, 3], seed: 1 });
      model.compile({
        optimizer: new SGD({ learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4 }),
        loss,
      });
      const h = await model.fit(xTrain, train.labels, {
        epochs,
        batchSize: 64,
        verbose: 0,
        seed: 1,
      });
      assert(h.history.loss.every(Number.isFinite), `${flag}: finite losses`);
      const r = await model.evaluate(xTest, test.labels, { batchSize: 200 });
      tail[flag] = r.report.tail;
      console.log(
        `--loss ${flag}: top-1 ${r.accuracy.toFixed(3)}, head ${r.report.head.toFixed(3)}, ` +
          `medium ${r.report.medium.toFixed(3)}, tail ${r.report.tail.toFixed(3)}`,
      );
      model.dispose();
    }
    assert(tail["balanced-softmax"] >= tail.ce + 0.1, JSON.stringify(tail));
    assert(tail["ce-weighted"] > tail.ce, JSON.stringify(tail));
    assert(tail["ldam-drw"] > tail.ce, JSON.stringify(tail));
  } finally {
    TUNING.fastCompile = tuning;
  }
});
