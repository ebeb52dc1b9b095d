// The quickstart (recipes/quickstart.ts) at tiny settings: both models train on the synthetic
// long-tailed dataset and report overall and head/medium/tail accuracy; the table shows both.
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { initDevice } from "../gpu/device.ts";
import { resultsTable, runQuickstart } from "../recipes/quickstart.ts";
import { useFastCompile } from "./fast_compile.ts";

useFastCompile();

await initDevice();

Deno.test({
  name: "quickstart: ETF + DR and learnable + CE side by side, with head/medium/tail",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const lines: string[] = [];
    const { results, trainCounts, testImages } = await runQuickstart({
      epochs: 1,
      nMax: 40,
      testPerClass: 4,
      batchSize: 16,
      log: (l) => lines.push(l),
    });
    assertEquals(results.map((r) => [r.classifier, r.loss]), [["etf", "dr"], [
      "learnable",
      "ce",
    ]]);
    assertEquals(testImages, 40);
    assertEquals(trainCounts.length, 10);
    assert(trainCounts[0] === 40 && trainCounts[9] === 2, `long-tailed: ${trainCounts}`);
    for (const r of results) {
      for (const v of [r.top1, r.head, r.medium, r.tail]) assert(v >= 0 && v <= 1, `${r.name}`);
      // The overall accuracy is the count-weighted mean of the balanced groups (3/4/3 classes).
      const mean = (3 * r.head + 4 * r.medium + 3 * r.tail) / 10;
      assert(Math.abs(mean - r.top1) < 1e-6, `${r.name}: ${mean} vs ${r.top1}`);
    }
    assertEquals(lines.filter((l) => l.includes("epoch 1/1")).length, 2);
    const table = resultsTable(results);
    assertStringIncludes(table, "ETF + DR");
    assertStringIncludes(table, "learnable + CE");
    assertStringIncludes(table, "head  medium    tail");
    assertEquals(table.split("\n").length, 3);
  },
});
