// Tests for recipes/lib: flag parsing, run folder (config, metrics log with torn lines, resume
// truncation), SVG charts (well-formed, no NaN), the markdown report and the paper's numbers.
import { assert, assertEquals, assertFalse, assertStringIncludes } from "@std/assert";
import { parseRecipeFlags, type RecipeDefaults, samplerKind } from "../recipes/lib/flags.ts";
import {
  appendMetrics,
  METRICS_FILE,
  readConfig,
  readMetrics,
  truncateMetricsAfterEpoch,
  writeConfig,
} from "../recipes/lib/run_dir.ts";
import {
  formatNumber,
  lineChart,
  logTicks,
  niceTicks,
  scatterChart,
} from "../recipes/lib/svg_plot.ts";
import { renderReport, type ReportInput } from "../recipes/lib/report_md.ts";
import { paperResult, paperTop1 } from "../recipes/lib/paper_results.ts";

const DEFAULTS: RecipeDefaults = {
  dataDir: "data",
  out: "runs/cifar10_lt",
  ratio: 0.01,
  epochs: 200,
  batchSize: 128,
  lr: 0.1,
  weightDecay: 2e-4,
  classifier: "etf",
  loss: "dr",
  mixup: 1,
  sampler: "instance",
  seed: 0,
  resume: false,
  evalEvery: 1,
  workers: 1,
};

// ------------------------------------------------------------------ flags

Deno.test("flags: defaults when no flag is given", () => {
  const r = parseRecipeFlags([], DEFAULTS, "cifar10_lt");
  assert(r.ok);
  assertEquals(r.flags, { ...DEFAULTS, extra: {} });
});

Deno.test("flags: every flag parses", () => {
  const r = parseRecipeFlags(
    [
      "--data-dir",
      "/d",
      "--out=/o",
      "--ratio",
      "0.005",
      "--epochs",
      "3",
      "--batch-size",
      "64",
      "--lr",
      "0.05",
      "--weight-decay",
      "0",
      "--classifier",
      "learnable",
      "--loss",
      "ce",
      "--mixup",
      "0",
      "--sampler",
      "class-balanced",
      "--seed=-7",
      "--resume",
      "--eval-every",
      "5",
      "--limit",
      "100",
      "--workers",
      "0",
    ],
    DEFAULTS,
    "cifar10_lt",
  );
  assert(r.ok, r.ok ? "" : r.message);
  assertEquals(r.flags, {
    dataDir: "/d",
    out: "/o",
    ratio: 0.005,
    epochs: 3,
    batchSize: 64,
    lr: 0.05,
    weightDecay: 0,
    classifier: "learnable",
    loss: "ce",
    mixup: 0,
    sampler: "class-balanced",
    seed: -7,
    resume: true,
    evalEvery: 5,
    limit: 100,
    workers: 0,
    extra: {},
  });
  assertEquals(samplerKind(r.flags.sampler), "class");
  assertEquals(samplerKind("sqrt"), "sqrt");
});

Deno.test("flags: --help and -h give the usage with every default, exit 0", () => {
  for (const h of ["--help", "-h"]) {
    const r = parseRecipeFlags([h, "--bogus"], DEFAULTS, "cifar10_lt");
    assertFalse(r.ok);
    assertEquals(r.exitCode, 0);
    assertStringIncludes(r.message, "Usage: deno run -A recipes/cifar10_lt.ts");
    for (
      const f of [
        "--data-dir",
        "--out",
        "--ratio",
        "--epochs",
        "--batch-size",
        "--lr",
        "--weight-decay",
        "--classifier",
        "--loss",
        "--mixup",
        "--sampler",
        "--seed",
        "--resume",
        "--eval-every",
        "--limit",
        "--workers",
        "--help",
      ]
    ) assertStringIncludes(r.message, f);
    assertStringIncludes(r.message, "(default: 0.0002)");
    assertStringIncludes(r.message, "(default: runs/cifar10_lt)");
    assertStringIncludes(r.message, "(default: none)"); // --limit
  }
});

Deno.test("flags: unknown flags and bad values -> exit 2 naming what was wrong", () => {
  const cases: [string[], string][] = [
    [["--bogus"], "unknown flag --bogus"],
    [["stray"], 'unexpected argument "stray"'],
    [["--", "x"], 'unexpected argument "x"'],
    [["--ratio", "0"], "--ratio must be in (0, 1]"],
    [["--ratio", "1.5"], "--ratio must be in (0, 1]"],
    [["--ratio", "abc"], '--ratio must be a number, got "abc"'],
    [["--epochs", "0"], "--epochs must be >= 1"],
    [["--epochs", "2.5"], "--epochs must be an integer"],
    [["--batch-size", "x"], "--batch-size must be a number"],
    [["--lr", "0"], "--lr must be > 0"],
    [["--weight-decay=-1"], "--weight-decay must be >= 0"],
    [["--classifier", "mlp"], "--classifier must be one of etf, learnable"],
    [["--loss", "focal"], "--loss must be one of dr, ce"],
    [["--mixup=-0.5"], "--mixup must be >= 0"],
    [["--sampler", "balanced"], "--sampler must be one of"],
    [["--seed", "1.5"], "--seed must be an integer"],
    [["--eval-every", "0"], "--eval-every must be >= 1"],
    [["--limit", "0"], "--limit must be >= 1"],
    [["--workers", "2"], "--workers must be one of 0, 1"],
    [["--epochs"], "--epochs needs a value"],
    [["--out", "--epochs", "3"], "--out needs a value"],
  ];
  for (const [args, msg] of cases) {
    const r = parseRecipeFlags(args, DEFAULTS, "cifar10_lt");
    assertFalse(r.ok, args.join(" "));
    assertEquals(r.exitCode, 2, args.join(" "));
    assertStringIncludes(r.message, msg);
    assertStringIncludes(r.message, "Usage:");
  }
  // Several errors are all reported.
  const r = parseRecipeFlags(["--lr", "-", "--epochs", "0", "--nope"], DEFAULTS, "x");
  assertFalse(r.ok);
  assertStringIncludes(r.message, "--nope");
  assertStringIncludes(r.message, "--epochs must be >= 1");
});

Deno.test("flags: --no-resume and recipe-specific extra flags", () => {
  const extra = [
    { name: "pretrained", type: "string" as const, help: "torchvision ResNet-50 safetensors" },
    { name: "freeze-bn", type: "boolean" as const, help: "freeze BN", default: false },
    { name: "crop", type: "number" as const, help: "crop size", default: 224 },
  ];
  const r = parseRecipeFlags(
    ["--no-resume", "--pretrained", "r50.safetensors", "--freeze-bn"],
    { ...DEFAULTS, resume: true },
    "cub",
    { extra, description: "CUB-200-2011 fine-tuning." },
  );
  assert(r.ok, r.ok ? "" : r.message);
  assertEquals(r.flags.resume, false);
  assertEquals(r.flags.extra, { pretrained: "r50.safetensors", "freeze-bn": true, crop: 224 });
  const h = parseRecipeFlags(["-h"], DEFAULTS, "cub", { extra });
  assertFalse(h.ok);
  assertStringIncludes(h.message, "--pretrained VALUE");
  assertStringIncludes(h.message, "(default: 224)");
  const bad = parseRecipeFlags(["--crop", "big"], DEFAULTS, "cub", { extra });
  assertFalse(bad.ok);
  assertEquals(bad.exitCode, 2);
});

// ------------------------------------------------------------------ run folder

Deno.test("run_dir: config, metrics append/read, torn last line, resume truncation", async () => {
  const root = await Deno.makeTempDir();
  const out = `${root}/run/a`;
  try {
    assertEquals(await readMetrics(out), []);
    assertEquals(await readConfig(out), undefined);
    await writeConfig(out, { recipe: "cifar10_lt", lr: 0.1 });
    assertEquals(await readConfig(out), { recipe: "cifar10_lt", lr: 0.1 });
    for (let e = 1; e <= 4; e++) await appendMetrics(out, { epoch: e, loss: 1 / e, top1: NaN });
    const recs = await readMetrics(out);
    assertEquals(recs.length, 4);
    assertEquals(recs[3], { epoch: 4, loss: 0.25, top1: null });

    // A kill mid-append leaves a torn last line: dropped on read, repaired on the next append.
    const path = `${out}/${METRICS_FILE}`;
    await Deno.writeTextFile(path, '{"epoch":5,"lo', { append: true });
    assertEquals((await readMetrics(out)).length, 4);
    await appendMetrics(out, { epoch: 5, loss: 0.2 });
    const text = await Deno.readTextFile(path);
    assertFalse(text.includes('"lo{'));
    assertEquals(text.trimEnd().split("\n").length, 5);
    assertEquals((await readMetrics(out)).map((r) => r.epoch), [1, 2, 3, 4, 5]);

    // Resume from epoch 2: later lines go, records without an epoch stay.
    await appendMetrics(out, { event: "note" });
    await Deno.writeTextFile(path, '{"epoch":6', { append: true });
    assertEquals(await truncateMetricsAfterEpoch(out, 2), 3);
    assertEquals((await readMetrics(out)).map((r) => r.epoch ?? "none"), [1, 2, "none"]);
    assert((await Deno.readTextFile(path)).endsWith("\n"));
    const names = [...Deno.readDirSync(out)].map((e) => e.name).sort();
    assertEquals(names, ["config.json", "metrics.jsonl"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

// ------------------------------------------------------------------ SVG

/** A tiny well-formedness check: balanced tags, quoted attributes, escaped text. */
function assertWellFormed(svg: string): void {
  const stack: string[] = [];
  const re = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(svg)) !== null) {
    const between = svg.slice(last, m.index);
    assertFalse(between.includes("<"), `stray '<' before ${m[0]}`);
    assertFalse(/&(?!(amp|lt|gt|quot|apos);)/.test(between), `bare '&' in ${between}`);
    last = re.lastIndex;
    const [, close, name, , self] = m;
    if (close) assertEquals(stack.pop(), name, `mismatched </${name}>`);
    else if (!self) stack.push(name);
  }
  assertFalse(svg.slice(last).includes("<"), "unparsed tag");
  assertEquals(stack, [], "unclosed tags");
  assert(svg.startsWith("<svg "));
  assertFalse(svg.includes("NaN"));
  assertFalse(svg.includes("Infinity"));
  assertFalse(svg.includes("undefined"));
}

Deno.test("svg: nice ticks and number formatting", () => {
  assertEquals(niceTicks(0, 0.97, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assertEquals(niceTicks(1, 200, 5), [0, 50, 100, 150, 200]);
  assertEquals(niceTicks(3, 3), [2.7, 2.8, 2.9, 3, 3.1, 3.2, 3.3]);
  assertEquals(niceTicks(NaN, 1), []);
  assertEquals(logTicks(50, 5000), [10, 100, 1000, 10000]);
  assertEquals(logTicks(0.5, 2), [0.1, 0.2, 0.5, 1, 2, 5, 10]);
  assertEquals(formatNumber(0.1 + 0.2), "0.3");
  assertEquals(formatNumber(NaN), "");
});

Deno.test("svg: line chart with several series, gaps and a log axis is well-formed", () => {
  const svg = lineChart({
    title: "Loss & accuracy <test>",
    xLabel: "epoch",
    yLabel: "value",
    series: [
      { name: "train loss", points: [[1, 2.3], [2, NaN], [3, 1.1], [4, 0.8]] },
      { name: "test 'loss'", points: [[1, 2.5], [2, 1.9], [3, Infinity], [4, 1.0]] },
    ],
    yLog: true,
  });
  assertWellFormed(svg);
  assertStringIncludes(svg, "Loss &amp; accuracy &lt;test&gt;");
  assertStringIncludes(svg, "<polyline");
  assertStringIncludes(svg, "train loss");
  assertStringIncludes(svg, "test &apos;loss&apos;");
  const acc = lineChart({
    title: "acc",
    xLabel: "epoch",
    yLabel: "%",
    yRange: [0, 100],
    series: [{ name: "top-1", points: Array.from({ length: 200 }, (_, i) => [i + 1, i / 2]) }],
  });
  assertWellFormed(acc);
  const markers = acc.match(/<circle/g)?.length ?? 0;
  assert(markers > 5 && markers < 30, `a few markers along a long series: ${markers}`);
});

Deno.test("svg: empty and all-NaN data produce a 'no data' chart, never NaN", () => {
  for (
    const series of [
      [],
      [{ name: "a", points: [] }],
      [{ name: "b", points: [[NaN, NaN], [1, NaN]] as [number, number][] }],
      [{ name: "c", points: [[1, -1], [2, 0]] as [number, number][] }],
    ]
  ) {
    const svg = lineChart({ title: "t", xLabel: "x", yLabel: "y", series, yLog: true });
    assertWellFormed(svg);
    assertStringIncludes(svg, "no data");
  }
  const one = lineChart({
    title: "t",
    xLabel: "x",
    yLabel: "y",
    series: [{ name: "s", points: [[1, 5]] }],
  });
  assertWellFormed(one);
  const sc = scatterChart({ title: "s", xLabel: "x", yLabel: "y", points: [], xLog: true });
  assertWellFormed(sc);
  assertStringIncludes(sc, "no data");
});

Deno.test("svg: scatter with log x and labels is well-formed", () => {
  const counts = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50];
  const svg = scatterChart({
    title: "Per-class accuracy vs training count",
    xLabel: "training images (log)",
    yLabel: "accuracy (%)",
    xLog: true,
    yRange: [0, 100],
    points: counts.map((n, i) => ({ x: n, y: 95 - i * 4, label: `class <${i}>` })),
  });
  assertWellFormed(svg);
  assertEquals(svg.match(/<circle/g)?.length, 10);
  assertStringIncludes(svg, "class &lt;9&gt;");
  assertStringIncludes(svg, ">10000<");
  const many = scatterChart({
    title: "100 classes",
    xLabel: "n",
    yLabel: "acc",
    xLog: true,
    points: Array.from({ length: 100 }, (_, i) => ({ x: 500 - 4 * i, y: i, label: `c${i}` })),
  });
  assertWellFormed(many);
  assertFalse(many.includes(">c5</text>"), "no text labels when crowded");
});

// ------------------------------------------------------------------ report and paper numbers

Deno.test("paper results: published ETF + DR numbers and gaps", () => {
  assertEquals(paperTop1("CIFAR-10-LT", 0.005), 72.9);
  assertEquals(paperTop1("cifar10_lt", 0.01), 78.5);
  assertEquals(paperTop1("cifar100", 0.005), 40.9);
  assertEquals(paperTop1("CIFAR-100-LT", 0.01), 45.3);
  assertEquals(paperTop1("cifar100_lt", 0.02), 50.4);
  assertEquals(paperTop1("ImageNet-LT"), 44.7);
  assertEquals(paperTop1("imagenet_lt", 0.5), 44.7);
  assertEquals(paperTop1("cifar10_lt", 0.02), undefined);
  assertEquals(paperTop1("cifar10_lt"), undefined);
  assertEquals(paperTop1("svhn_lt", 0.01), undefined);
  assertEquals(paperTop1("cub", 1), undefined);
  assertEquals(paperResult("cifar10", 0.01)?.top1, 78.5);
  assertEquals(paperResult("stl10", 0.01), undefined);
});

function reportInput(): ReportInput {
  return {
    recipe: "cifar10_lt",
    dataset: "CIFAR-10-LT",
    config: { ratio: 0.01, classifier: "etf", loss: "dr" },
    best: { epoch: 189, top1: 0.7812, head: 0.923, medium: 0.76, tail: 0.667, ece: 0.0512 },
    last: { epoch: 199, top1: 0.779, head: 0.92, medium: 0.758, tail: 0.665 },
    perClass: [
      { className: "airplane", trainCount: 5000, acc: 0.951 },
      { className: "a|b", trainCount: 50, acc: NaN },
    ],
    paper: paperResult("cifar10_lt", 0.01),
    nc: { "||H-W||": 0.123456, nc1: 1.2e-5, missing: undefined },
    imagesPerSec: 5432.6,
    adapter: "NVIDIA H100",
  };
}

Deno.test("report: best/last, head/medium/tail, paper beside ours, per-class table, plots", () => {
  const md = renderReport(reportInput());
  assertStringIncludes(md, "# cifar10_lt: CIFAR-10-LT");
  assertStringIncludes(md, "| best | 190 | 78.12 | 92.30 | 76.00 | 66.70 | 5.12 |");
  assertStringIncludes(md, "| last | 200 | 77.90 | 92.00 | 75.80 | 66.50 | n/a |");
  assertStringIncludes(md, "| 78.5 |");
  assertStringIncludes(
    md,
    "Same protocol as the paper. Best top-1 minus the paper's: −0.38 points",
  );
  assertStringIncludes(md, "| 0 | airplane | 5000 | 95.10 |");
  assertStringIncludes(md, "| 1 | a\\|b | 50 | n/a |");
  assertStringIncludes(md, "![Test accuracy per epoch](accuracy.svg)");
  assertStringIncludes(md, "![Per-class accuracy vs training count](per_class.svg)");
  assertStringIncludes(md, "| nc1 | 1.200e-5 |");
  assertStringIncludes(md, "| missing | n/a |");
  assertStringIncludes(md, "5,433 images/s");
  assertStringIncludes(md, "NVIDIA H100");
  assertStringIncludes(md, '"ratio": 0.01');
  assertFalse(md.includes("NaN"));
  assertFalse(md.includes("Not comparable"));
});

Deno.test("report: no published number, and a baseline run, are said so", () => {
  const none = renderReport({ ...reportInput(), paper: undefined, plots: [] });
  assertStringIncludes(none, "The paper publishes no top-1 for this setting");
  assertFalse(none.includes("## Plots"));
  const ce = renderReport({
    ...reportInput(),
    protocolDifferences: ["--classifier learnable --loss ce (the published number is for etf+dr)"],
    perClass: [],
  });
  assertStringIncludes(ce, "Not comparable (--classifier / --loss differ from the paper)");
  assertFalse(ce.includes("points"));
  assertStringIncludes(ce, "No per-class results.");
});
