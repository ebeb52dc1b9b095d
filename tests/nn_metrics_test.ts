import { assertAlmostEquals, assertEquals } from "@std/assert";
import { Rng } from "../gpu/rng.ts";
import { mat, matmul, symmetricPinv } from "../nn/metrics/linalg.ts";
import { neuralCollapseMetrics } from "../nn/metrics/neural_collapse.ts";
import { accuracyReport } from "../nn/metrics/classification.ts";
import { ConstantSchedule, CosineSchedule, WarmupMultiStepSchedule } from "../nn/schedules.ts";

Deno.test("NC1 from sufficient statistics equals the direct definition", () => {
  const rng = new Rng(3);
  const K = 4, d = 6, N = 60;
  const h: number[][] = [], y: number[] = [];
  for (let i = 0; i < N; i++) {
    const c = i % K;
    y.push(c);
    h.push(Array.from({ length: d }, (_, k) => (k === c ? 3 : 0) + rng.normal()));
  }
  const classSums = new Float64Array(K * d),
    counts = new Float64Array(K),
    gram = new Float64Array(d * d);
  h.forEach((v, i) => {
    counts[y[i]]++;
    for (let a = 0; a < d; a++) {
      classSums[y[i] * d + a] += v[a];
      for (let b = 0; b < d; b++) gram[a * d + b] += v[a] * v[b];
    }
  });
  const W = new Float64Array(K * d).map(() => rng.normal());
  const m = neuralCollapseMetrics({ classSums, counts, gram, numClasses: K, dim: d }, W);
  // direct: S_W, S_B with d x d pinv
  const mu = Array.from(
    { length: K },
    (_, c) => Array.from({ length: d }, (_, a) => classSums[c * d + a] / counts[c]),
  );
  const muG = Array.from(
    { length: d },
    (_, a) => mu.reduce((s, r, c) => s + r[a] * counts[c], 0) / N,
  );
  const SW = mat(d, d), SB = mat(d, d);
  h.forEach((v, i) => {
    for (let a = 0; a < d; a++) {
      for (let b = 0; b < d; b++) {
        SW.data[a * d + b] += (v[a] - mu[y[i]][a]) * (v[b] - mu[y[i]][b]) / N;
      }
    }
  });
  for (let c = 0; c < K; c++) {
    for (let a = 0; a < d; a++) {
      for (let b = 0; b < d; b++) {
        SB.data[a * d + b] += (mu[c][a] - muG[a]) * (mu[c][b] - muG[b]) / K;
      }
    }
  }
  const P = matmul(SW, symmetricPinv(SB));
  let tr = 0;
  for (let a = 0; a < d; a++) tr += P.data[a * d + a];
  assertAlmostEquals(m.nc1, tr / K, 1e-8);
  // W = H gives zero distance and diag cos 1
  const H = new Float64Array(K * d);
  for (let c = 0; c < K; c++) for (let a = 0; a < d; a++) H[c * d + a] = mu[c][a] - muG[a];
  const m2 = neuralCollapseMetrics({ classSums, counts, gram, numClasses: K, dim: d }, H);
  assertAlmostEquals(m2.normalizedDistance, 0, 1e-12);
  assertAlmostEquals(m2.meanDiagCosHW, 1, 1e-12);
});

Deno.test("accuracy report groups CIFAR-10 classes 0-2/3-6/7-9", () => {
  const correct = [10, 10, 10, 5, 5, 5, 5, 0, 1, 2];
  const total = [10, 10, 10, 10, 10, 10, 10, 10, 10, 10];
  const r = accuracyReport(correct, total);
  assertAlmostEquals(r.top1, 53 / 100);
  assertEquals(r.head, 1);
  assertEquals(r.medium, 0.5);
  assertAlmostEquals(r.tail, 0.1);
});

Deno.test("schedules: paper warmup + multistep, cosine, constant", () => {
  const s = new WarmupMultiStepSchedule({ base: 0.1 });
  assertAlmostEquals(s.lr(0, 0.5), 0.02);
  assertAlmostEquals(s.lr(4, 0), 0.1);
  assertAlmostEquals(s.lr(159, 0.9), 0.1);
  assertAlmostEquals(s.lr(160, 0), 0.01);
  assertAlmostEquals(s.lr(180, 0), 0.001);
  const c = new CosineSchedule(1, 10);
  assertAlmostEquals(c.lr(0, 0), 1);
  assertAlmostEquals(c.lr(5, 0), 0.5);
  assertAlmostEquals(c.lr(10, 0), 0, 1e-12);
  assertEquals(new ConstantSchedule(0.3).lr(), 0.3);
});
