import { assert, assertAlmostEquals, assertEquals, assertNotEquals } from "@std/assert";
import {
  classBalancedSampler,
  InstanceSampler,
  makeSampler,
  mixSeed,
  progressiveSampler,
  sqrtSampler,
} from "../data/samplers.ts";
import { exponentialCounts } from "../data/long_tail.ts";

function ltLabels(): Int32Array {
  const counts = exponentialCounts(2000, 10, 0.01);
  const out: number[] = [];
  counts.forEach((n, c) => {
    for (let i = 0; i < n; i++) out.push(c);
  });
  return Int32Array.from(out);
}

function freqs(labels: Int32Array, idx: Int32Array, k: number): number[] {
  const f = new Array(k).fill(0);
  for (const i of idx) f[labels[i]]++;
  return f.map((x) => x / idx.length);
}

Deno.test("instance sampler: a permutation, seeded per epoch", () => {
  const s = new InstanceSampler(1000, { seed: 5 });
  const e0 = s.epochIndices(0);
  assertEquals(Array.from(e0).sort((a, b) => a - b), Array.from({ length: 1000 }, (_, i) => i));
  assertEquals(e0, new InstanceSampler(1000, { seed: 5 }).epochIndices(0));
  assertNotEquals(e0, s.epochIndices(1));
  assertNotEquals(e0, new InstanceSampler(1000, { seed: 6 }).epochIndices(0));
  const inOrder = new InstanceSampler(5, { shuffle: false, epochLength: 12 }).epochIndices(3);
  assertEquals(Array.from(inOrder), [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]);
});

Deno.test("class-balanced sampler: uniform class frequencies within 3% over 20k draws", () => {
  const labels = ltLabels();
  const s = classBalancedSampler(labels, 10, { seed: 1, epochLength: 20000 });
  const idx = s.epochIndices(0);
  assertEquals(idx.length, 20000);
  for (const f of freqs(labels, idx, 10)) assertAlmostEquals(f, 0.1, 0.003);
  assertEquals(
    idx,
    classBalancedSampler(labels, 10, { seed: 1, epochLength: 20000 }).epochIndices(0),
  );
  assertNotEquals(
    idx,
    classBalancedSampler(labels, 10, { seed: 2, epochLength: 20000 }).epochIndices(0),
  );
  assertNotEquals(idx, s.epochIndices(1));
  // Every tail image is drawn, each about equally often (shuffled cycles per class).
  const tail = Array.from(idx).filter((i) => labels[i] === 9);
  const seen = new Map<number, number>();
  for (const i of tail) seen.set(i, (seen.get(i) ?? 0) + 1);
  assertEquals(seen.size, 20);
  for (const n of seen.values()) assert(n === 100, `tail image drawn ${n} times`);
});

Deno.test("square-root sampler: class probability proportional to sqrt(n_c)", () => {
  const labels = ltLabels();
  const counts = exponentialCounts(2000, 10, 0.01);
  const s = sqrtSampler(labels, 10, { seed: 3, epochLength: 40000 });
  const z = counts.reduce((a, n) => a + Math.sqrt(n), 0);
  const p = s.classProbabilities(0);
  const f = freqs(labels, s.epochIndices(0), 10);
  for (let c = 0; c < 10; c++) {
    assertAlmostEquals(p[c], Math.sqrt(counts[c]) / z, 1e-12);
    assertAlmostEquals(f[c], p[c], 0.01);
  }
});

Deno.test("progressive sampler interpolates instance -> class-balanced", () => {
  const labels = ltLabels();
  const counts = exponentialCounts(2000, 10, 0.01);
  const n = labels.length;
  const s = progressiveSampler(labels, 10, 100, { seed: 4 });
  const p0 = s.classProbabilities(0),
    p50 = s.classProbabilities(50),
    p100 = s.classProbabilities(100);
  for (let c = 0; c < 10; c++) {
    assertAlmostEquals(p0[c], counts[c] / n, 1e-12);
    assertAlmostEquals(p50[c], 0.5 * counts[c] / n + 0.05, 1e-12);
    assertAlmostEquals(p100[c], 0.1, 1e-12);
  }
  assertEquals(
    s.epochIndices(7),
    makeSampler("progressive", labels, 10, { seed: 4, totalEpochs: 100 }).epochIndices(7),
  );
});

Deno.test("empty classes are never drawn; mixSeed separates streams", () => {
  const labels = Int32Array.from([0, 0, 2, 2, 2]);
  const idx = classBalancedSampler(labels, 4, { seed: 9, epochLength: 1000 }).epochIndices(0);
  const f = freqs(labels, idx, 4);
  assertEquals([f[1], f[3]], [0, 0]);
  assertAlmostEquals(f[0], 0.5, 0.06);
  assertNotEquals(mixSeed(1, 0), mixSeed(1, 1));
  assertNotEquals(mixSeed(1, 0, 1), mixSeed(1, 1, 0));
  assertEquals(mixSeed(3, 4, 5), mixSeed(3, 4, 5));
});
