import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertNotEquals,
  assertThrows,
} from "@std/assert";
import { initDevice } from "../gpu/device.ts";
import "../gpu/ops/mod.ts";
import { ETFClassifier } from "../nn/heads/etf_classifier.ts";
import { reducedQrQ, simplexEtf } from "../nn/heads/etf.ts";
import { input } from "../nn/layers/layer.ts";

await initDevice();

function col(m: Float32Array, d: number, k: number, j: number): number[] {
  return Array.from({ length: d }, (_, i) => m[i * k + j]);
}

function dot(a: number[], b: number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

for (const [d, k] of [[64, 10], [10, 10], [17, 3], [128, 100], [5, 2]]) {
  Deno.test(`simplexEtf(${d}, ${k}): unit columns, cosines -1/(K-1), M 1 = 0`, () => {
    const m = simplexEtf(d, k, 7);
    assertEquals(m.length, d * k);
    const cols = Array.from({ length: k }, (_, j) => col(m, d, k, j));
    for (let i = 0; i < k; i++) {
      assertAlmostEquals(Math.sqrt(dot(cols[i], cols[i])), 1, 1e-5);
      for (let j = i + 1; j < k; j++) {
        const cos = dot(cols[i], cols[j]) /
          Math.sqrt(dot(cols[i], cols[i]) * dot(cols[j], cols[j]));
        assertAlmostEquals(cos, -1 / (k - 1), 1e-5);
      }
    }
    for (let i = 0; i < d; i++) {
      let s = 0;
      for (let j = 0; j < k; j++) s += m[i * k + j];
      assertAlmostEquals(s, 0, 1e-5);
    }
  });
}

Deno.test("simplexEtf: same seed same M, another seed another M", () => {
  assertEquals(simplexEtf(32, 8, 3), simplexEtf(32, 8, 3));
  assertNotEquals(simplexEtf(32, 8, 3), simplexEtf(32, 8, 4));
});

Deno.test("simplexEtf: clear errors for K > d and K < 2", () => {
  assertThrows(() => simplexEtf(8, 10, 0), Error, "d=8 must be >= the number of classes K=10");
  assertThrows(() => simplexEtf(8, 1, 0), Error, "at least 2 classes");
  assertThrows(() => simplexEtf(0, 3, 0), Error, "positive integers");
});

Deno.test("reducedQrQ: orthonormal columns spanning A", () => {
  const d = 7, k = 4;
  const a = new Float64Array(d * k).map((_, i) => Math.sin(i * 1.7) + (i % 3));
  const q = reducedQrQ(a, d, k);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let r = 0; r < d; r++) s += q[r * k + i] * q[r * k + j];
      assertAlmostEquals(s, i === j ? 1 : 0, 1e-12);
    }
  }
  // A = Q (Q^T A): A's columns lie in span(Q).
  for (let c = 0; c < k; c++) {
    const proj = new Float64Array(d);
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let r = 0; r < d; r++) s += q[r * k + j] * a[r * k + c];
      for (let r = 0; r < d; r++) proj[r] += s * q[r * k + j];
    }
    for (let r = 0; r < d; r++) assertAlmostEquals(proj[r], a[r * k + c], 1e-12);
  }
  assertThrows(() => reducedQrQ(new Float64Array(6), 2, 3), Error, "rows >= columns");
  assertThrows(() => reducedQrQ(new Float64Array(6), 3, 2), Error, "rank deficient");
});

Deno.test("ETFClassifier: M is a fixed, non-decayed weight equal to simplexEtf(d, K, seed)", async () => {
  const head = new ETFClassifier(5, { seed: 11 });
  head.apply(input([12]));
  const names = head.weights().map((w) => w.name);
  assertEquals(names, ["etf", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"]);
  const m = head.getWeight("etf");
  assertEquals(m.trainable, false);
  assertEquals(m.decay, false);
  assertEquals(m.value.requiresGrad, false);
  assertEquals(m.value.shape, [12, 5]);
  assertEquals(await m.value.data(), simplexEtf(12, 5, 11));
  assertEquals(head.getConfig().seed, 11);
  assertEquals(head.countParams("trainable"), 24);
  assert(head.classifierMatrix() === m.value);
  assertThrows(
    () => new ETFClassifier(20).apply(input([12])),
    Error,
    "d=12 must be >= the number of classes K=20",
  );
  head.dispose();
});
