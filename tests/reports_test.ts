// The run outputs of recipes/lib (no GPU): the record convention (0-based epochs and fractions in
// metrics.jsonl, as History and CsvLogger; epochs from 1 and percentages in text), integer epoch
// ticks, series told apart by dash and marker, collision-free class labels in per_class.svg, one
// neural-collapse panel per metric with its ETF target, the calibration plot, and report.md
// saying "not comparable" whenever a run departs from the paper's protocol.
import { assert, assertEquals, assertFalse, assertStringIncludes } from "@std/assert";
import { parseRecipeFlags } from "../recipes/lib/flags.ts";
import { differingFlags, protocolDifferences } from "../recipes/lib/paper_results.ts";
import { RECIPES } from "../recipes/lib/recipe_specs.ts";
import { runState } from "../recipes/lib/paper_grid.ts";
import { appendMetrics, writeConfig } from "../recipes/lib/run_dir.ts";
import {
  addEvaluation,
  type EpochRecord,
  epochsInReport,
  type OutputContext,
  renderPlots,
  renderRunReport,
  summaryLine,
  trainingRecord,
} from "../recipes/lib/run_outputs.ts";
import {
  boxesOverlap,
  lineChart,
  niceTicks,
  placeLabels,
  scatterChart,
  textWidth,
} from "../recipes/lib/svg_plot.ts";
import type { EvaluationResult } from "../nn/training/evaluate.ts";
import { CIFAR10_CLASSES, CIFAR10_LT_COUNTS } from "./fixtures/cifar10_lt.ts";

const CIFAR10 = [...CIFAR10_CLASSES];
const COUNTS = [...CIFAR10_LT_COUNTS];

function evaluation(top1: number, ece: number): EvaluationResult {
  const perClass = CIFAR10.map((_, k) => top1 + (k < 3 ? 0.1 : k > 6 ? -0.1 : 0));
  const bins = Array.from({ length: 15 }, (_, b) => ({
    lower: b / 15,
    upper: (b + 1) / 15,
    count: b === 3 ? 100 : 0,
    confidence: b === 3 ? 0.25 : 0,
    accuracy: b === 3 ? 0.25 - ece : 0,
  }));
  return {
    loss: 0.5,
    accuracy: top1,
    ece,
    calibration: { ece, mce: ece, meanConfidence: 0.25, bins },
    report: {
      top1,
      perClass,
      head: top1 + 0.1,
      medium: top1,
      tail: top1 - 0.1,
      groups: { head: [0, 1, 2], medium: [3, 4, 5, 6], tail: [7, 8, 9] },
    },
    correct: [],
    total: [],
    count: 100,
    metrics: {},
    neuralCollapse: {
      nc1: 1.5,
      normalizedDistance: 0.8,
      meanCosH: -0.05,
      stdCosH: 0.1,
      meanCosW: -1 / 9,
      stdCosW: 0,
      meanCosHW: -0.1,
      stdCosHW: 0.1,
      meanDiagCosHW: 0.7,
      diagCosHW: [],
    },
  };
}

function records(epochs: number): EpochRecord[] {
  return Array.from({ length: epochs }, (_, e) =>
    addEvaluation(
      trainingRecord(e, { loss: 1 / (e + 1), accuracy: 0.3, lr: 0.1, images_per_sec: 20 }, 2),
      evaluation(0.4 + 0.05 * e, 0.1 - 0.01 * e),
    ));
}

const CTX: OutputContext = {
  recipe: "cifar10_lt",
  title: "CIFAR-10-LT",
  ratio: 0.01,
  classNames: CIFAR10,
  trainCounts: COUNTS,
  adapter: "test adapter",
  config: {},
  notes: [],
  backbone: "resnet32",
};

Deno.test("records: 0-based epochs and fractions; text counts from 1 in percent", () => {
  const [r0, r1] = records(2);
  assertEquals([r0.epoch, r1.epoch], [0, 1]);
  assertEquals([r0.top1, r0.train_accuracy, r0.ece], [0.4, 0.3, 0.1]);
  assertEquals(r0.per_class![0], 0.5);
  assertEquals(r0.calibration!.count[3], 100);
  assertStringIncludes(summaryLine(r0, 2), "epoch 1/2 | loss 1.0000 | train accuracy 30.00%");
  assertStringIncludes(summaryLine(r1, 2), "test top-1 45.00% (head 55.00 / medium 45.00");
  assertStringIncludes(summaryLine(r1, 2), "ECE 9.00%");
  const md = renderRunReport([r0, r1], CTX);
  assertStringIncludes(md, "| best | 2 | 45.00 | 55.00 | 45.00 | 35.00 | 9.00 |");
  assertStringIncludes(md, "| last | 2 | 45.00 |");
  assertStringIncludes(md, "- epochs run: 2; evaluated: 2");
  assertStringIncludes(md, "| 0 | airplane | 5000 | 55.00 |");
});

Deno.test("report: a smoke run is 'not comparable', the paper's protocol is compared", () => {
  const spec = RECIPES.cifar10_lt;
  const parse = (args: string[]) => {
    const r = parseRecipeFlags(args, spec.defaults, spec.name);
    assert(r.ok);
    return r.flags;
  };
  assertEquals(protocolDifferences(spec, parse(["--seed", "3", "--eval-every", "5"])), []);
  const smoke = protocolDifferences(spec, parse(["--limit", "256", "--epochs", "2"]));
  assertEquals(smoke, ["--limit 256 (the paper: every image)", "--epochs 2 (the paper: 200)"]);
  assertEquals(differingFlags(smoke), "--limit / --epochs");
  const changed = protocolDifferences(
    spec,
    parse(["--batch-size", "64", "--lr", "0.05", "--classifier", "learnable", "--loss", "ce"]),
  );
  assertEquals(changed, [
    "--batch-size 64 (the paper: 128)",
    "--lr 0.05 (the paper: 0.1)",
    "--classifier learnable --loss ce (the published number is for etf+dr)",
  ]);

  const md = renderRunReport(records(2), { ...CTX, protocolDifferences: smoke });
  assertStringIncludes(
    md,
    "| paper (Yang et al., NeurIPS 2022 (published top-1), ResNet-32, etf+dr)",
  );
  assertStringIncludes(
    md,
    "Not comparable (--limit / --epochs differ from the paper): --limit 256 (the paper: every " +
      "image); --epochs 2 (the paper: 200).",
  );
  assertFalse(md.includes(" points"), "no difference to the published number");
  const same = renderRunReport(records(2), CTX);
  assertStringIncludes(same, "Same protocol as the paper. Best top-1 minus the paper's: −33.50");
  // A ratio, or a backbone, without a published number.
  const r02 = renderRunReport(records(2), { ...CTX, ratio: 0.02, protocolDifferences: smoke });
  assertStringIncludes(
    r02,
    "The paper publishes no top-1 for this setting (CIFAR-10-LT, ratio 0.02, resnet32)",
  );
  assertStringIncludes(r02, "This run also departs from the paper's protocol: --limit 256");
  const dense = renderRunReport(records(2), { ...CTX, backbone: "densenet" });
  assertStringIncludes(dense, "publishes no top-1 for this setting");
});

Deno.test("plots: integer epoch ticks on every per-epoch plot", () => {
  assertEquals(niceTicks(1, 2, 5, true), [1, 2]);
  assertEquals(niceTicks(1, 1, 5, true), [0, 1, 2]);
  assertEquals(niceTicks(1, 10, 5, true), [0, 2, 4, 6, 8, 10]);
  assertEquals(niceTicks(1, 3, 5), [1, 1.5, 2, 2.5, 3]); // what a plain axis would show
  for (const n of [1, 2, 3, 7]) {
    const plots = renderPlots(records(n), CTX);
    for (const file of ["accuracy.svg", "loss.svg", "nc.svg", "calibration.svg"] as const) {
      const svg = plots[file];
      // x tick labels: the text elements centred under the frame, one per tick.
      const ticks = [...svg.matchAll(/<text x="[\d.]+" y="[\d.]+" text-anchor="middle">([^<]*)</g)]
        .map((m) => m[1]);
      const epochTicks = file === "calibration.svg" ? ticks.slice(0, ticks.length / 2) : ticks;
      assert(epochTicks.length >= 2, `${file}: ${ticks}`);
      for (const t of epochTicks) assert(/^\d+$/.test(t), `${file} with ${n} epochs: tick ${t}`);
    }
  }
});

Deno.test("plots: every series has its own dash pattern and marker shape", () => {
  const svg = renderPlots(records(3), CTX)["accuracy.svg"];
  const groups = [
    ...svg.matchAll(/<g stroke="(#\w+)" fill="#\w+">\n<title>([^<]+)<\/title>\n([^]*?)<\/g>/g),
  ];
  assertEquals(groups.map((g) => g[2]), [
    "test top-1",
    "head",
    "medium",
    "tail",
    "train (mixup-weighted)",
  ]);
  const dashes = groups.map((g) => g[3].match(/stroke-dasharray="([^"]*)"/)?.[1] ?? "solid");
  const markers = groups.map((g) => g[3].match(/class="marker-(\w+)"/)?.[1]);
  assertEquals(new Set(dashes).size, 5, `dashes ${dashes}`);
  assertEquals(new Set(markers).size, 5, `markers ${markers}`);
  // Medium and tail at the same values stay visible: different dash, marker and width.
  const widths = groups.map((g) => g[3].match(/stroke-width="([\d.]+)"/)![1]);
  assert(Number(widths[2]) > Number(widths[3]), `medium drawn wider than tail: ${widths}`);
});

Deno.test("plots: class labels in per_class.svg never overlap each other or the points", () => {
  // Real crowding: ship/truck and airplane/automobile at nearly equal count and accuracy.
  const cases = [
    [0.95, 0.96, 0.85, 0.72, 0.8, 0.7, 0.78, 0.74, 0.62, 0.6],
    [0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9],
    [0.12, 0.1, 0.11, 0.09, 0.1, 0.12, 0.1, 0.1, 0.11, 0.1],
  ];
  for (const acc of cases) {
    const svg = scatterChart({
      title: "per class",
      xLabel: "n",
      yLabel: "%",
      xLog: true,
      yRange: [0, 100],
      points: acc.map((a, k) => ({ x: COUNTS[k], y: a * 100, label: CIFAR10[k] })),
    });
    const labels = [...svg.matchAll(
      /<text x="([\d.-]+)" y="([\d.-]+)" text-anchor="(start|middle|end)">([a-z]+)<\/text>/g,
    )].map(([, x, y, anchor, text]) => {
      const w = textWidth(text, 10), px = Number(x);
      const bx = anchor === "start" ? px : anchor === "end" ? px - w : px - w / 2;
      return { text, box: { x: bx, y: Number(y) - 10, w, h: 12 } };
    });
    assertEquals(labels.map((l) => l.text).sort(), [...CIFAR10].sort());
    const dots = [...svg.matchAll(/<circle cx="([\d.]+)" cy="([\d.]+)" r="4">/g)]
      .map(([, x, y]) => ({ x: Number(x) - 4, y: Number(y) - 4, w: 8, h: 8 }));
    for (const [i, a] of labels.entries()) {
      for (const b of labels.slice(i + 1)) {
        assertFalse(boxesOverlap(a.box, b.box), `${a.text} overlaps ${b.text} (${acc})`);
      }
      for (const d of dots) assertFalse(boxesOverlap(a.box, d), `${a.text} covers a point`);
      assert(a.box.x >= 64 && a.box.x + a.box.w <= 720 - 24, `${a.text} inside the plot`);
    }
  }
  // placeLabels falls back to the least overlap when there is no room at all.
  const crowd = placeLabels(
    Array.from({ length: 12 }, (_, i) => ({ x: 50, y: 50, label: `c${i}` })),
    { x: 0, y: 0, w: 100, h: 100 },
  );
  assertEquals(crowd.length, 12);
});

Deno.test("plots: one neural-collapse panel per metric with its ETF target; calibration", () => {
  const plots = renderPlots(records(3), CTX);
  const nc = plots["nc.svg"];
  assertEquals(nc.match(/<g transform="translate\(/g)?.length, 6);
  for (
    const t of [
      "NC1 = Tr(Sw Sb+)/K",
      "||H/|H| - W/|W|||^2",
      "mean cos(h_k, w_k) (alignment)",
      "mean cos(h_k, h_k&apos;), k != k&apos;",
      "mean cos(w_k, w_k&apos;), k != k&apos;",
      "mean cos(h_k, w_k&apos;), k != k&apos;",
      "target 0",
      "target 1",
      "target -1/(K-1) = -0.111",
    ]
  ) assertStringIncludes(nc, t);
  // The target lines are drawn (dashed) in the panels that have one.
  assertEquals(nc.match(/<g stroke="#555555"><title>target/g)?.length, 5);
  const cal = plots["calibration.svg"];
  assertStringIncludes(cal, "ECE (%) per epoch");
  assertStringIncludes(cal, "reliability, epoch 3");
  assertStringIncludes(cal, "perfect calibration");
  // The one non-empty bin: mean confidence 25 %, accuracy 25 - 8 = 17 %.
  assert(/<title>bins<\/title>\n<polyline|<title>bins<\/title>\n<circle/.test(cal), cal);
  // A plain line chart still takes every option.
  const svg = lineChart({
    title: "t",
    xLabel: "x",
    yLabel: "y",
    series: [{ name: "a", points: [[1, 2]] }],
    references: [{ value: 3, label: "three" }],
  });
  assertStringIncludes(svg, "three");
});

Deno.test("paper grid: a run is finished only once its final report is written", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assertEquals((await runState(`${dir}/none`)).status, "missing");
    await writeConfig(dir, { flags: { epochs: 2 } });
    for (const r of records(2)) await appendMetrics(dir, r);
    // Killed between the last metrics line and the report: the report is the epoch-1 one.
    await Deno.writeTextFile(`${dir}/report.md`, renderRunReport(records(1), CTX));
    assertEquals(epochsInReport(await Deno.readTextFile(`${dir}/report.md`)), 1);
    assertEquals((await runState(dir)).status, "started");
    await Deno.writeTextFile(`${dir}/report.md`, renderRunReport(records(2), CTX));
    const st = await runState(dir);
    assertEquals([st.status, st.epochsDone, st.epochs], ["finished", 2, 2]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
