// Calibration (nn/metrics/calibration.ts, evaluate's GPU bins): the ECE of a hand-computed example
// with a confidence exactly on a bin edge; the float32 thresholds bin as numpy's float64 edges do;
// evaluate's GPU-accumulated bins equal the host definition over the same logits (a partial last
// batch included), for an ETF head (logits h M) and a learnable head.
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { initDevice } from "../gpu/device.ts";
import "../gpu/ops/mod.ts";
import { Rng } from "../gpu/rng.ts";
import type { Batch } from "../data/types.ts";
import { DenseClassifier } from "../nn/heads/dense_classifier.ts";
import { ETFClassifier } from "../nn/heads/etf_classifier.ts";
import { Dense } from "../nn/layers/dense.ts";
import { Flatten } from "../nn/layers/flatten.ts";
import {
  calibrationEdges,
  calibrationFromBins,
  expectedCalibrationError,
} from "../nn/metrics/calibration.ts";
import { Classifier } from "../nn/model/classifier.ts";
import { Sequential } from "../nn/model/sequential.ts";
import { type DataSource, evaluate, predict } from "../nn/training/mod.ts";

Deno.test("ECE: a hand computation (15 bins, a confidence on an edge)", () => {
  // bin 15 = (14/15, 1]: 0.95 right, 0.94 wrong -> acc 0.5, conf 0.945, gap 0.445
  // bin 8 = (7/15, 8/15]: 0.50 and 0.48 right -> acc 1, conf 0.49, gap 0.51
  // bin 3 = (2/15, 3/15]: 0.2 = 3/15 exactly (right-closed) wrong -> acc 0, conf 0.2, gap 0.2
  // ECE = (2 * 0.445 + 2 * 0.51 + 0.2) / 5 = 0.422; MCE = 0.51.
  const conf = [0.95, 0.94, 0.5, 0.48, 0.2];
  const pred = [3, 1, 2, 0, 4];
  const label = [3, 0, 2, 0, 1];
  const c = expectedCalibrationError(conf, pred, label);
  assertAlmostEquals(c.ece, 0.422, 1e-12);
  assertAlmostEquals(c.mce, 0.51, 1e-12);
  assertAlmostEquals(c.meanConfidence, (0.95 + 0.94 + 0.5 + 0.48 + 0.2) / 5, 1e-12);
  assertEquals(c.bins.length, 15);
  assertEquals(c.bins.map((b) => b.count), [0, 0, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 2]);
  assertAlmostEquals(c.bins[2].upper, 0.2, 1e-15);
  assertEquals(c.bins[14].upper, 1);
  // Perfectly calibrated: every example at confidence 1 and right.
  assertEquals(expectedCalibrationError([1, 1], [0, 1], [0, 1]).ece, 0);
  // Confidence 0 falls in no bin (as numpy's digitize(right=True) puts it in bin 0).
  assertEquals(expectedCalibrationError([0, 0.5], [0, 1], [0, 1]).bins[7].count, 1);
  assertEquals(calibrationFromBins([0, 0], [0, 0], [0, 0]).ece, NaN);
  assertThrows(() => expectedCalibrationError([0.5], [0], [0, 1]), Error, "1 confidences");
});

Deno.test("ECE: float32 thresholds bin exactly as numpy's float64 edges", () => {
  const B = 15;
  const t = calibrationEdges(B);
  assertEquals(t.length, B + 1);
  assertEquals([t[0], t[B]], [0, 1]);
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  for (let b = 1; b < B; b++) {
    const edge = b * (1 / B);
    // The float32 values around the edge: one of them lies on each side.
    f[0] = Math.fround(edge);
    const around: number[] = [];
    for (let d = -2; d <= 2; d++) {
      const g = new Float32Array([f[0]]), v = new Uint32Array(g.buffer);
      v[0] = u[0] + d;
      around.push(g[0]);
    }
    assert(around.some((c) => c > edge) && around.some((c) => c <= edge));
    for (const c of around) assertEquals(c > t[b], c > edge, `edge ${b}, c = ${c}`);
  }
});

await initDevice();

const K = 5, D = 12, PIX = 2 * 2 * 3;

function data(n: number, seed: number): { images: Float32Array; labels: Int32Array } {
  const rng = new Rng(seed);
  return {
    images: Float32Array.from({ length: n * PIX }, () => 2 * rng.normal()),
    labels: Int32Array.from({ length: n }, () => rng.int(K)),
  };
}

function source(d: { images: Float32Array; labels: Int32Array }, B: number): DataSource {
  const n = d.labels.length;
  return {
    batches(): Batch[] {
      const out: Batch[] = [];
      for (let i = 0; i < n; i += B) {
        const m = Math.min(B, n - i);
        out.push({
          images: d.images.slice(i * PIX, (i + m) * PIX),
          labels: d.labels.slice(i, i + m),
          shape: [m, 2, 2, 3],
        });
      }
      return out;
    },
  };
}

/** The official definition on the host: confidence = max softmax of the logits. */
function hostCalibration(logits: Float32Array, labels: Int32Array) {
  const n = labels.length;
  const conf: number[] = [], pred: number[] = [];
  for (let i = 0; i < n; i++) {
    const row = logits.subarray(i * K, (i + 1) * K);
    let m = -Infinity, arg = 0, s = 0;
    row.forEach((v, k) => {
      if (v > m) [m, arg] = [v, k];
    });
    for (const v of row) s += Math.exp(v - m);
    conf.push(1 / s);
    pred.push(arg);
  }
  return expectedCalibrationError(conf, pred, labels);
}

for (const head of ["etf", "learnable"] as const) {
  Deno.test(`evaluate: ECE from GPU bins equals the host definition (${head} head)`, async () => {
    const model = new Classifier(
      new Sequential([new Flatten(), new Dense(D, { activation: "relu" })]),
      head === "etf" ? new ETFClassifier(K) : new DenseClassifier(K),
      { seed: 3 },
    );
    model.build([-1, 2, 2, 3]);
    const d = data(45, 7);
    const src = source(d, 16); // 16 + 16 + 13: captured full batches and an eager partial one
    const r = await evaluate(model, src);
    const { logits } = await predict(model, src);
    const host = hostCalibration(logits, d.labels);
    assertEquals(r.calibration.bins.map((b) => b.count), host.bins.map((b) => b.count));
    assertEquals(r.calibration.bins.reduce((s, b) => s + b.count, 0), 45);
    for (let b = 0; b < 15; b++) {
      assertAlmostEquals(r.calibration.bins[b].confidence, host.bins[b].confidence, 1e-5);
      assertAlmostEquals(r.calibration.bins[b].accuracy, host.bins[b].accuracy, 1e-6);
    }
    assertAlmostEquals(r.ece, host.ece, 1e-5);
    assert(r.ece > 0 && r.ece < 1);
    if (head === "etf") {
      // h M with unit h and unit ETF columns: cosines in [-1, 1], so confidences stay near 1/K.
      assert(r.calibration.meanConfidence <= Math.E ** 2 / (Math.E ** 2 + K - 1) + 1e-6);
    }
    // A second call reuses the captured step and zeroes the bins first.
    const again = await evaluate(model, src);
    assertEquals(again.calibration.bins.map((b) => b.count), host.bins.map((b) => b.count));
  });
}
