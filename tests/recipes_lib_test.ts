// Tests for recipes/lib: flag parsing, the learning-rate schedule of every run length, run folder
// (config, metrics log with torn and damaged lines, resume truncation), resume checks, the
// run-folder lock, SVG charts (well-formed, no NaN), the markdown report and the paper's numbers.
import { assert, assertEquals, assertFalse, assertStringIncludes } from "@std/assert";
import { parseRecipeFlags, type RecipeDefaults, samplerKind } from "../recipes/lib/flags.ts";
import {
  describeSchedule,
  RECIPES,
  scheduleParams,
  scheduleProblems,
} from "../recipes/lib/recipe_specs.ts";
import { epochsChange, settingsDiff } from "../recipes/lib/resume.ts";
import { acquireRunLock, LOCK_FILE, RunLockedError } from "../recipes/lib/run_lock.ts";
import { scheduleFromParams } from "../recipes/lib/training_setup.ts";
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

Deno.test("flags: negative numbers follow their flag and are judged as values", () => {
  const r = parseRecipeFlags(["--seed", "-1", "--lr", "0.05"], DEFAULTS, "cifar10_lt");
  assert(r.ok, r.ok ? "" : r.message);
  assertEquals(r.flags.seed, -1);
  for (
    const [args, msg] of [
      [["--epochs", "-3"], "--epochs must be >= 1, got -3"],
      [["--epochs=-3"], "--epochs must be >= 1, got -3"],
      [["--lr", "-0.1"], "--lr must be > 0, got -0.1"],
      [["--limit", "-.5"], '--limit must be an integer, got "-.5"'],
    ] as const
  ) {
    const b = parseRecipeFlags([...args], DEFAULTS, "cifar10_lt");
    assertFalse(b.ok);
    assertEquals(b.exitCode, 2);
    assertStringIncludes(b.message, msg);
    assertFalse(b.message.includes("unknown flag"), b.message);
  }
  const typo = parseRecipeFlags(["--batchsize", "8"], DEFAULTS, "cifar10_lt");
  assertFalse(typo.ok);
  assertStringIncludes(typo.message, "unknown flag --batchsize (did you mean --batch-size?)");
});

Deno.test("flags: --resume [PATH], --eval-only, --extend, schedule overrides", () => {
  const parse = (args: string[]) => {
    const r = parseRecipeFlags(args, DEFAULTS, "cifar10_lt");
    assert(r.ok, r.ok ? "" : r.message);
    return r;
  };
  const bare = parse(["--resume", "--epochs", "3"]);
  assertEquals([bare.flags.resume, bare.flags.resumeFrom, bare.flags.epochs], [true, undefined, 3]);
  assertEquals(parse(["--resume"]).flags.resumeFrom, undefined);
  assertEquals(parse(["--resume", "runs/a"]).flags.resumeFrom, "runs/a");
  assertEquals(
    parse(["--resume=runs/a/best.safetensors"]).flags.resumeFrom,
    "runs/a/best.safetensors",
  );
  assertEquals(parse(["--resume", "runs/a", "--no-resume"]).flags.resume, false);
  const ex = parse(["--resume", "--extend"]);
  assertEquals(ex.flags.extend, true);
  assertEquals(
    parse(["--eval-only", "runs/a/best.safetensors"]).flags.evalOnly,
    "runs/a/best.safetensors",
  );
  const s = parse(["--warmup-epochs", "0", "--milestones", "60, 80"]);
  assertEquals([s.flags.warmupEpochs, s.flags.milestones], [0, [60, 80]]);
  assertEquals(s.given.sort(), ["milestones", "warmupEpochs"]);
  assertEquals(parse(["--milestones", "none"]).flags.milestones, []);
  for (
    const [args, msg] of [
      [["--warmup-epochs", "1.5"], "--warmup-epochs must be an integer"],
      [["--milestones", "3,3"], "--milestones must be strictly increasing"],
      [["--milestones", "0"], "--milestones must be a comma list of integers >= 1"],
      [["--milestones"], "--milestones needs a value"],
      [["--eval-only"], "--eval-only needs a value"],
      [["--eval-only", "x", "--resume"], "--eval-only and --resume exclude each other"],
      [["--print-config=yes"], "--print-config takes no value"],
    ] as const
  ) {
    const b = parseRecipeFlags([...args], DEFAULTS, "cifar10_lt");
    assertFalse(b.ok, args.join(" "));
    assertEquals(b.exitCode, 2);
    assertStringIncludes(b.message, msg);
  }
});

Deno.test("flags: --config reads settings (config.json's flags), the command line wins", () => {
  const files: Record<string, string> = {
    "/c/config.json": JSON.stringify({
      recipe: "cifar10_lt",
      flags: { epochs: 7, lr: 0.05, resume: true, resumeFrom: "x", limit: null, extra: {} },
      identity: {},
    }),
  };
  const readFile = (p: string) => {
    if (!(p in files)) throw new Deno.errors.NotFound(`no ${p}`);
    return files[p];
  };
  const r = parseRecipeFlags(
    ["--config", "/c/config.json", "--lr", "0.2"],
    DEFAULTS,
    "cifar10_lt",
    {
      readFile,
    },
  );
  assert(r.ok, r.ok ? "" : r.message);
  assertEquals([r.flags.epochs, r.flags.lr, r.flags.resume, r.flags.limit], [
    7,
    0.2,
    false,
    undefined,
  ]);
  assert(r.given.includes("config") && r.given.includes("epochs"));
});

Deno.test("schedule: the 200-epoch default is the paper's, stepped as the official code", () => {
  const spec = RECIPES.cifar10_lt;
  const p = scheduleParams(spec, 200);
  assertEquals(p, {
    kind: "multistep",
    warmupEpochs: 5,
    warmupBy: "epoch",
    milestones: [160, 180],
  });
  const s = scheduleFromParams(p, 0.1);
  // NeuralCollapseApplications/ImbalancedLearning train.py adjust_learning_rate, once per epoch.
  const official = (epoch: number) => {
    const e = epoch + 1;
    return e <= 5 ? 0.1 * e / 5 : e > 180 ? 0.1 * 0.01 : e > 160 ? 0.1 * 0.1 : 0.1;
  };
  for (let e = 0; e < 200; e++) {
    for (const progress of [0, 0.5, 0.999]) {
      const got = s.lr(e, progress), want = official(e);
      assert(Math.abs(got - want) <= 1e-12 * want, `epoch ${e}: ${got} vs ${want}`);
    }
  }
  assertEquals(
    describeSchedule(p, 0.1),
    "peak lr 0.1; linear warmup over 5 epochs (stepped per epoch, as the official code: " +
      "lr x (e + 1) / 5 in epoch e); x0.1 after epochs 160 and 180",
  );
});

Deno.test("schedule: short runs keep a per-step warmup; overrides; invalid values", () => {
  const spec = RECIPES.cifar10_lt;
  const p10 = scheduleParams(spec, 10);
  assertEquals(p10, { kind: "multistep", warmupEpochs: 1, warmupBy: "step", milestones: [8, 9] });
  const s = scheduleFromParams(p10, 0.1);
  const steps = 97;
  const first = Array.from({ length: steps }, (_, i) => s.lr(0, i / steps));
  assert(first[0] < 0.1 && first[0] <= 0.001, `first step lr ${first[0]}`);
  for (let i = 1; i < steps; i++) assert(first[i] > first[i - 1], "rises every step");
  assert(Math.abs(first[steps - 1] - 0.1 * (steps - 1) / steps) < 1e-12);
  assertEquals([s.lr(1, 0), s.lr(8, 0), s.lr(9, 0.5)], [0.1, 0.1 * 0.1, 0.1 * 0.1 * 0.1]);
  for (const epochs of [1, 2, 3, 5, 20, 40, 100, 199]) {
    const p = scheduleParams(spec, epochs);
    assert(p.kind === "multistep" && p.warmupEpochs >= 1, `${epochs}: a warmup`);
    assert(p.warmupBy === "step" || p.warmupEpochs >= 5);
    assert(p.milestones.every((m) => m < epochs && m >= p.warmupEpochs), `${epochs}: milestones`);
    const sched = scheduleFromParams(p, 0.1);
    assert(sched.lr(0, 0) < 0.1, `${epochs} epochs: first step below the peak`);
  }
  assertEquals(scheduleParams(spec, 100), {
    kind: "multistep",
    warmupEpochs: 3,
    warmupBy: "step",
    milestones: [80, 90],
  });
  const over = scheduleParams(spec, 10, { warmupEpochs: 0, milestones: [5] });
  assertEquals(over, { kind: "multistep", warmupEpochs: 0, warmupBy: "step", milestones: [5] });
  assertEquals(scheduleFromParams(over, 0.1).lr(0, 0), 0.1);
  assertEquals(scheduleParams(spec, 50, { warmupEpochs: 5 }), {
    kind: "multistep",
    warmupEpochs: 5,
    warmupBy: "epoch",
    milestones: [40, 45],
  });
  assertEquals(scheduleParams(RECIPES.cub, 100), { kind: "cosine", epochs: 100, warmupEpochs: 0 });
  assertEquals(scheduleProblems(spec, 10, { warmupEpochs: 2, milestones: [4, 8] }), []);
  assertEquals(scheduleProblems(spec, 10, { warmupEpochs: 11 }).length, 1);
  assertEquals(scheduleProblems(spec, 10, { milestones: [10] }).length, 1);
  assertEquals(scheduleProblems(RECIPES.imagenet_lt, 90, { milestones: [30] }).length, 1);
});

Deno.test("resume: changed settings and a changed --epochs, in words", () => {
  assertEquals(settingsDiff({ lr: 0.1, seed: 0 }, { lr: 0.05, seed: 0, limit: 3, epochs: 9 }), [
    "lr was 0.1, now 0.05",
  ]);
  const spec = RECIPES.cifar10_lt;
  const before = { epochs: 10, schedule: scheduleParams(spec, 10) };
  const now = { epochs: 20, schedule: scheduleParams(spec, 20) };
  assertEquals(epochsChange({ before, now: before, extend: false, done: 4, lr: 0.1 }), {});
  const refused = epochsChange({ before, now, extend: false, done: 4, lr: 0.1 });
  assertStringIncludes(refused.error!, "--epochs was 10, now 20");
  assertStringIncludes(refused.error!, "x0.1 after epochs 8 and 9");
  assertStringIncludes(refused.error!, "x0.1 after epochs 16 and 18");
  assertStringIncludes(refused.error!, "Pass --extend");
  const ok = epochsChange({ before, now, extend: true, done: 4, lr: 0.1 });
  assertStringIncludes(ok.note!, "epochs 1-4 ran under the old schedule, epochs 5-20 run under");
  const shorter = epochsChange({ before: now, now: before, extend: true, done: 4, lr: 0.1 });
  assertStringIncludes(shorter.error!, "--extend lengthens a run");
  const over = epochsChange({ before, now, extend: true, done: 20, lr: 0.1 });
  assertStringIncludes(over.error!, "already completed 20 epochs");
});

Deno.test("run lock: one holder; a second is refused naming the folder and pid", async () => {
  const root = await Deno.makeTempDir();
  try {
    const dir = `${root}/run`;
    const a = await acquireRunLock(dir, "test run");
    assert(a.createdDir);
    const holder = JSON.parse(await Deno.readTextFile(`${dir}/${LOCK_FILE}`));
    assertEquals(holder.pid, Deno.pid);
    const err = await acquireRunLock(dir).then(() => null, (e) => e);
    assert(err instanceof RunLockedError);
    assertStringIncludes(err.message, `${dir} is in use by another run (pid ${Deno.pid}, test run`);
    await a.release();
    assertFalse(await Deno.stat(`${dir}/${LOCK_FILE}`).then(() => true, () => false));
    // A lock file left by a process that is gone is taken over.
    const dead = new Deno.Command(Deno.execPath(), { args: ["eval", "0"] }).spawn();
    await dead.status;
    await Deno.writeTextFile(`${dir}/${LOCK_FILE}`, JSON.stringify({ pid: dead.pid }));
    const b = await acquireRunLock(dir);
    assertEquals(b.tookOverFrom?.pid, dead.pid);
    assertFalse(b.createdDir);
    await b.release({ removeDirIfEmpty: true });
    assert(await Deno.stat(dir).then(() => true), "a folder it did not create stays");
    // A run that created the folder and wrote nothing leaves none behind.
    const c = await acquireRunLock(`${root}/fresh`);
    await c.release({ removeDirIfEmpty: true });
    assertFalse(await Deno.stat(`${root}/fresh`).then(() => true, () => false));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
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

    // A kill mid-append leaves a torn last line: skipped on read with a warning naming the file
    // and the line, repaired on the next append.
    const path = `${out}/${METRICS_FILE}`;
    await Deno.writeTextFile(path, '{"epoch":5,"lo', { append: true });
    const warnings: string[] = [];
    assertEquals((await readMetrics(out, { onWarning: (m) => warnings.push(m) })).length, 4);
    assertEquals(warnings.length, 1);
    assertStringIncludes(warnings[0], `${path} line 5 is damaged`);
    assertStringIncludes(warnings[0], "cut short");
    await appendMetrics(out, { epoch: 5, loss: 0.2 });
    const text = await Deno.readTextFile(path);
    assertFalse(text.includes('"lo{'));
    assertEquals(text.trimEnd().split("\n").length, 5);
    assertEquals((await readMetrics(out)).map((r) => r.epoch), [1, 2, 3, 4, 5]);

    // A damaged line in the middle (a bit flip, an editor) is skipped with a warning too.
    const lines = (await Deno.readTextFile(path)).split("\n");
    lines[1] = lines[1].replace("{", "#");
    await Deno.writeTextFile(path, lines.join("\n"));
    warnings.length = 0;
    assertEquals(
      (await readMetrics(out, { onWarning: (m) => warnings.push(m) })).map((r) => r.epoch),
      [1, 3, 4, 5],
    );
    assertEquals(warnings.length, 1);
    assertStringIncludes(warnings[0], `${path} line 2 is damaged and was skipped: #"epoch":2`);
    lines[1] = lines[1].replace("#", "{");
    await Deno.writeTextFile(path, lines.join("\n"));

    // Resume from epoch 2: later lines go, records without an epoch stay.
    await appendMetrics(out, { event: "note" });
    await Deno.writeTextFile(path, '{"epoch":6', { append: true });
    assertEquals(await truncateMetricsAfterEpoch(out, 2, { onWarning: () => {} }), 3);
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
