import { assert, assertEquals, assertNotEquals, assertThrows } from "@std/assert";
import {
  classCounts,
  exponentialCounts,
  longTailCounts,
  longTailIndices,
  makeLongTailed,
  stepCounts,
} from "../data/long_tail.ts";
import { syntheticDataset } from "../data/synthetic.ts";

const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);

Deno.test("exponential profile reproduces the CIFAR-LT totals", () => {
  const c10 = exponentialCounts(5000, 10, 0.01);
  assertEquals(c10, [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]);
  assertEquals(sum(c10), 12406);
  assertEquals(sum(exponentialCounts(500, 100, 0.01)), 10847);
  // Other ratios, as computed (they match the published CIFAR-LT sizes).
  assertEquals(sum(exponentialCounts(5000, 10, 0.005)), 11203);
  assertEquals(sum(exponentialCounts(5000, 10, 0.02)), 13996);
  assertEquals(sum(exponentialCounts(500, 100, 0.005)), 9502);
  assertEquals(sum(exponentialCounts(500, 100, 0.02)), 12608);
  const c100 = exponentialCounts(500, 100, 0.01);
  assertEquals([c100[0], c100[99]], [500, 5]);
});

Deno.test("step profile: half n_max, half n_max * r", () => {
  assertEquals(stepCounts(5000, 10, 0.01), [5000, 5000, 5000, 5000, 5000, 50, 50, 50, 50, 50]);
  assertEquals(sum(stepCounts(500, 100, 0.01)), 25250);
  assertEquals(longTailCounts("step", 10, 3, 0.5), [10, 5, 5]);
  assertThrows(() => longTailCounts("exp", 10, 3, 0));
});

Deno.test("longTailIndices: file order by default, seeded shuffle otherwise", () => {
  const labels = new Int32Array(300);
  for (let i = 0; i < 300; i++) labels[i] = i % 3;
  const counts = [100, 10, 1];
  const first = longTailIndices(labels, counts);
  assertEquals(first.length, 111);
  assertEquals(classCounts(Array.from(first, (i) => labels[i]), 3), counts);
  // First images of each class in file order.
  assertEquals(Array.from(first.filter((i) => labels[i] === 1)), [
    1,
    4,
    7,
    10,
    13,
    16,
    19,
    22,
    25,
    28,
  ]);
  assertEquals(Array.from(first.filter((i) => labels[i] === 2)), [2]);
  const a = longTailIndices(labels, counts, 7), b = longTailIndices(labels, counts, 7);
  const c = longTailIndices(labels, counts, 8);
  assertEquals(a, b);
  assertNotEquals(a, c);
  assertEquals(classCounts(Array.from(a, (i) => labels[i]), 3), counts);
  for (let i = 1; i < a.length; i++) assert(a[i] > a[i - 1], "ascending");
  assertThrows(() => longTailIndices(labels, [101, 0, 0]), Error, "class 0 has 100");
});

Deno.test("makeLongTailed on a balanced split", () => {
  const { test } = syntheticDataset({ testPerClass: 50, size: 8 });
  const lt = makeLongTailed(test, { ratio: 0.1 });
  assertEquals(classCounts(lt.labels, 10), exponentialCounts(50, 10, 0.1));
  assertEquals(lt.images.length, lt.labels.length * 8 * 8 * 3);
});
