// Recipes end to end on small fixtures in each dataset's official format (CIFAR-10/100 binary
// tarballs, SVHN .mat, STL-10 tarball, CUB tgz, ImageNet-LT lists + JPEG folder): every output of
// the run folder checked by content; usage errors exit 2 and write nothing; no data and no network
// give a clear message and exit 1; a run killed mid-epoch and resumed ends exactly like an
// uninterrupted one. Runs in one process where possible (pipelines compile once), subprocesses for
// exit codes, the offline message and the kill.
import { assert, assertAlmostEquals, assertEquals, assertStringIncludes } from "@std/assert";
import { initDevice } from "../gpu/device.ts";
import { TUNING } from "../gpu/kernels/tuning.ts";
import { loadCheckpoint, readCheckpointInfo } from "../nn/checkpoint.ts";
import { readSafetensorsFile } from "../nn/io/safetensors.ts";
import { type RecipeName, RECIPES } from "../recipes/lib/recipe_specs.ts";
import { runRecipe } from "../recipes/lib/run_recipe.ts";
import { readMetrics } from "../recipes/lib/run_dir.ts";
import type { EpochRecord } from "../recipes/lib/run_outputs.ts";
import { buildClassifier } from "../recipes/lib/training_setup.ts";
import { capPerClass, longTailSelection } from "../data/datasets/mod.ts";
import { writeCifar100Fixture, writeCifar10Fixture } from "./fixtures/cifar_fixture.ts";
import { writeSvhnFixture } from "./fixtures/mat5_writer.ts";
import { writeStl10Fixture } from "./fixtures/stl10_fixture.ts";
import { writeCubFixture } from "./fixtures/cub_fixture.ts";
import { writeImageNetLtFixture } from "./fixtures/imagenet_lt_fixture.ts";
import { SUBPROCESS_ENV, useFastCompile } from "./fast_compile.ts";

useFastCompile();

await initDevice();

const ROOT = new URL("..", import.meta.url).pathname;
const TMP = await Deno.makeTempDir({ prefix: "collapse_recipes_" });
const opts = { sanitizeOps: false, sanitizeResources: false };

interface Outcome {
  code: number;
  out: string;
  err: string;
}

async function runIn(name: RecipeName, args: string[]): Promise<Outcome> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runRecipe(RECIPES[name], args, {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
  });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

function spawn(script: string, args: string[], denoFlags: string[] = ["-A"]) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...denoFlags, `${ROOT}recipes/${script}`, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: SUBPROCESS_ENV,
  });
}

async function spawnOutcome(script: string, args: string[], flags?: string[]): Promise<Outcome> {
  const r = await spawn(script, args, flags).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}

/** Minimal XML well-formedness: balanced, properly nested tags, one <svg> root. */
function checkSvg(text: string, file: string): void {
  assert(text.startsWith("<svg"), `${file}: starts with <svg`);
  assert(!/NaN|undefined|Infinity/.test(text), `${file}: no NaN/undefined/Infinity`);
  const stack: string[] = [];
  let roots = 0;
  for (const m of text.matchAll(/<(\/?)([a-zA-Z][\w:-]*)([^>]*?)(\/?)>/g)) {
    const [, close, name, attrs, self] = m;
    if (close) {
      assertEquals(stack.pop(), name, `${file}: </${name}> closes the open tag`);
    } else if (!self) {
      if (stack.length === 0) roots++;
      stack.push(name);
    }
    for (const a of attrs.matchAll(/\s([\w:-]+)=("[^"]*"|'[^']*')/g)) assert(a[2].length >= 2);
  }
  assertEquals(stack.length, 0, `${file}: every tag closed`);
  assertEquals(roots, 1, `${file}: one root element`);
  // Text between tags has no raw '<' or unescaped '&'.
  for (const t of text.split(/<[^>]*>/)) assert(!/&(?!amp;|lt;|gt;|quot;|apos;)/.test(t), file);
}

const TIMING = new Set(["images_per_sec", "epoch_seconds", "eval_images_per_sec"]);

interface RecipeExpect {
  recipe: RecipeName;
  epochs: number;
  /** Default 1. */
  evalEvery?: number;
  numClasses: number;
  limit: number;
  classNames?: string[];
  paper?: number;
  /** The activations' storage recorded in config.json (default f32). */
  activations?: "f16" | "f32";
}

/** Checks every output of a finished run by content. */
async function checkRun(out: string, e: RecipeExpect): Promise<EpochRecord[]> {
  const config = JSON.parse(await Deno.readTextFile(`${out}/config.json`));
  assertEquals(config.recipe, e.recipe);
  assertEquals(config.flags.epochs, e.epochs);
  assertEquals(config.flags.limit, e.limit);
  assertEquals(config.data.numClasses, e.numClasses);
  assert(config.data.trainImages > 0 && config.data.trainImages <= e.limit);
  assert(config.data.testImages > 0 && config.data.testImages <= e.limit);
  assert(typeof config.adapter.description === "string");
  assertEquals(config.kernels, { mode: "cpu", activations: e.activations ?? "f32" });
  assert(typeof config.versions.deno === "string" && typeof config.versions.collapse === "string");
  assert(config.effective.lr > 0 && config.effective.schedule.kind);
  assertEquals(config.effective.paperTop1, e.paper ?? null);
  assert(config.data.sources.length >= 1);

  const records = (await readMetrics(out)) as EpochRecord[];
  // metrics.jsonl: 0-based epoch indices, fractions (as History and CsvLogger).
  assertEquals(records.map((r) => r.epoch), Array.from({ length: e.epochs }, (_, i) => i));
  const every = e.evalEvery ?? 1;
  for (const r of records) {
    assert(Number.isFinite(r.train_loss) && r.train_loss >= 0, "train loss finite");
    assert(r.lr > 0 && r.images_per_sec > 0 && r.epoch_seconds > 0);
    assert(r.train_accuracy >= 0 && r.train_accuracy <= 1);
    const evaluated = (r.epoch + 1) % every === 0 || r.epoch + 1 === e.epochs;
    assertEquals(r.top1 !== undefined, evaluated, `epoch ${r.epoch} evaluated`);
    if (!evaluated) continue;
    assert(r.top1! >= 0 && r.top1! <= 1);
    assert(r.ece! >= 0 && r.ece! <= 1, `ECE ${r.ece}`);
    assertEquals(r.calibration!.count.reduce((a, b) => a + b, 0), config.data.testImages);
    assertEquals(r.per_class!.length, e.numClasses);
    assert(Number.isFinite(r.test_loss!));
    assert(Number.isFinite(r.nc!.normalizedDistance) && Number.isFinite(r.nc!.meanCosH));
    if (config.flags.classifier === "etf") {
      // The fixed ETF's class vectors: pairwise cosine -1/(K-1), no spread.
      assertAlmostEquals(r.nc!.meanCosW, -1 / (e.numClasses - 1), 1e-4);
      assert(r.nc!.stdCosW < 1e-4);
    }
  }

  const report = await Deno.readTextFile(`${out}/report.md`);
  assertStringIncludes(report, `# ${e.recipe}: ${RECIPES[e.recipe].title}`);
  const last = records[records.length - 1];
  // The report counts epochs from 1 and shows percentages.
  const pct = (v: number | undefined | null) =>
    typeof v === "number" ? (v * 100).toFixed(2) : "n/a";
  assertStringIncludes(
    report,
    `| last | ${last.epoch + 1} | ${pct(last.top1)} | ${pct(last.head)} | ${pct(last.medium)} | ` +
      `${pct(last.tail)} | ${pct(last.ece)} |`,
  );
  const best = records.filter((r) => r.top1 !== undefined).reduce((a, b) =>
    b.top1! > a.top1! ? b : a
  );
  assertStringIncludes(report, `| best | ${best.epoch + 1} | ${pct(best.top1)} |`);
  assertEquals((await readCheckpointInfo(`${out}/best.safetensors`)).epoch, best.epoch + 1);
  if (e.paper !== undefined) {
    assertStringIncludes(report, `| ${e.paper.toFixed(1)} |`);
    // Every fixture run uses --limit and a few epochs: never compared with the paper.
    assertStringIncludes(report, "Not comparable (--limit / --epochs");
    assert(!report.includes(" points"), "no difference to the published number");
  } else assertStringIncludes(report, "publishes no top-1");
  for (const name of e.classNames ?? []) assertStringIncludes(report, `| ${name} |`);
  assertStringIncludes(report, "![Test accuracy per epoch](accuracy.svg)");

  for (const f of ["accuracy.svg", "loss.svg", "per_class.svg", "nc.svg", "calibration.svg"]) {
    const svg = await Deno.readTextFile(`${out}/${f}`);
    checkSvg(svg, f);
    assert(/<polyline|<circle/.test(svg), `${f} draws data`);
  }

  for (const ck of ["last", "best"]) {
    const info = await readCheckpointInfo(`${out}/${ck}.safetensors`);
    assert(info.epoch >= 1 && info.epoch <= e.epochs);
    if (ck === "last") assertEquals(info.epoch, e.epochs);
  }
  // Loadable into a fresh model of the same shape.
  const spec = RECIPES[e.recipe];
  const model = buildClassifier({
    backbone: config.effective.backboneSpec,
    numClasses: e.numClasses,
    classifier: config.flags.classifier,
    normalizeFeatures: spec.normalizeFeatures,
    seed: 123,
  });
  model.build([-1, ...config.data.inputShape]);
  await loadCheckpoint(`${out}/best.safetensors`, model);
  return records;
}

// ---- fixtures ---------------------------------------------------------------------------------

const DATA = `${TMP}/data`;
await Deno.mkdir(DATA, { recursive: true });
const CIFAR10 = await writeCifar10Fixture(`${DATA}/cifar-10-binary.tar.gz`, 60, 40, 7);

const svhnFixture = (dir: string) => writeSvhnFixture(dir, 11);

async function imagenetLtFixture(dir: string): Promise<void> {
  await writeImageNetLtFixture(dir, [3, 3, 3], 1);
}

// ---- usage, offline -----------------------------------------------------------------------------

Deno.test("recipes: usage errors exit 2, print the usage and write nothing", opts, async () => {
  const out = `${TMP}/usage`;
  const cases: [RecipeName, string[], string][] = [
    ["cifar10_lt", ["--bogus"], "unknown flag --bogus"],
    ["cifar10_lt", ["--epochs", "0"], "--epochs must be >= 1"],
    ["cifar100_lt", ["--classifier", "cosine"], "--classifier must be one of etf, learnable"],
    ["cub", ["--image-size", "7.5"], "--image-size must be an integer"],
    ["imagenet_lt", ["--ratio", "0.5"], "split is fixed"],
    ["svhn_lt", ["--lr=0"], "--lr must be > 0"],
  ];
  for (const [name, args, msg] of cases) {
    const r = await runIn(name, [...args, "--out", out, "--data-dir", `${TMP}/nodata`]);
    assertEquals(r.code, 2, `${name} ${args.join(" ")}`);
    assertStringIncludes(r.err, msg);
    assertStringIncludes(r.err, `Usage: deno run -A recipes/${name}.ts`);
  }
  const help = await runIn("stl10_lt", ["--help"]);
  assertEquals(help.code, 0);
  assertStringIncludes(help.out, "--eval-every");
  assertStringIncludes(help.out, "--limit");
  assert(!(await exists(out)) && !(await exists(`${TMP}/nodata`)), "nothing written");
  // A batch larger than the training split: exit 2 before any shard is written.
  const bsData = `${TMP}/bs_data`;
  await Deno.mkdir(bsData, { recursive: true });
  await Deno.copyFile(`${DATA}/cifar-10-binary.tar.gz`, `${bsData}/cifar-10-binary.tar.gz`);
  const bs = await runIn("cifar10_lt", [
    ...["--data-dir", bsData, "--out", out, "--limit", "48", "--batch-size", "999", "--no-verify"],
  ]);
  assertEquals(bs.code, 2, bs.err);
  assertStringIncludes(
    bs.err,
    "--batch-size 999 is larger than the training split (48 images with --limit 48); lower it",
  );
  assert(!(await exists(`${bsData}/prepared/cifar10-r0.01-s0-l48/train`)), "no shard written");
  // The fixture is not the official release: refused, naming --no-verify; exit 1.
  const unverified = await runIn("cifar10_lt", ["--data-dir", bsData, "--out", out]);
  assertEquals(unverified.code, 1);
  assertStringIncludes(unverified.err, "is not the official cifar-10-binary.tar.gz");
  assertStringIncludes(unverified.err, "--no-verify");
  assert(!(await exists(out)), "no run folder");
  // The real process exit code.
  const p = await spawnOutcome("cifar10_lt.ts", ["--bogus", "--out", out]);
  assertEquals(p.code, 2);
  assertStringIncludes(p.err, "unknown flag --bogus");
  assert(!(await exists(out)));
});

Deno.test(
  "recipes: no data and no network -> what to download, where to put it; exit 1",
  opts,
  async () => {
    const empty = `${TMP}/empty_data`;
    const out = `${TMP}/offline_run`;
    const r = await spawnOutcome(
      "cifar10_lt.ts",
      ["--data-dir", empty, "--out", out],
      ["-A", "--deny-net"],
    );
    assertEquals(r.code, 1, r.err);
    assertStringIncludes(r.err, "cifar-10-binary.tar.gz");
    assertStringIncludes(r.err, "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz");
    assertStringIncludes(r.err, `put it at ${empty}/cifar-10-binary.tar.gz`);
    assert(!/^\s+at /m.test(r.err), `no stack trace:\n${r.err}`);
    assert(!(await exists(out)), "no run folder");
    // SVHN needs three files: all are named, each with its URL.
    const svhn = await spawnOutcome(
      "svhn_lt.ts",
      ["--data-dir", empty, "--out", out],
      ["-A", "--deny-net"],
    );
    assertEquals(svhn.code, 1, svhn.err);
    assertStringIncludes(svhn.err, "3 files are missing");
    for (const f of ["train_32x32.mat", "extra_32x32.mat", "test_32x32.mat"]) {
      assertStringIncludes(svhn.err, `http://ufldl.stanford.edu/housenumbers/${f}`);
      assertStringIncludes(svhn.err, `put it at ${empty}/${f}`);
    }
    assert(!(await exists(out)), "no run folder");
  },
);

// ---- kill and resume ---------------------------------------------------------------------------

function comparable(r: EpochRecord): Record<string, unknown> {
  return Object.fromEntries(Object.entries(r).filter(([k]) => !TIMING.has(k)));
}

Deno.test(
  "recipes: cifar10_lt end to end, killed mid-epoch, resumed == uninterrupted",
  opts,
  async () => {
    const args = (out: string) => [
      "--data-dir",
      DATA,
      "--out",
      out,
      "--limit",
      "48",
      "--batch-size",
      "16",
      "--epochs",
      "3",
      "--eval-every",
      "2",
      "--no-verify", // the fixture is not the official release
    ];
    const expect = {
      recipe: "cifar10_lt" as const,
      epochs: 3,
      evalEvery: 2,
      numClasses: 10,
      limit: 48,
      paper: 78.5,
    };
    // The uninterrupted run (in this process, data loaded by a worker: the default).
    const ref = `${TMP}/ref`;
    const r = await runIn("cifar10_lt", args(ref));
    assertEquals(r.code, 0, r.err);
    assertStringIncludes(r.out, "epoch 1/3 | loss");
    assertStringIncludes(r.out, "epoch 3/3 | loss");
    assertStringIncludes(r.out, "paper 78.5%");
    await checkRun(ref, { ...expect, classNames: CIFAR10.classNames });
    const config = JSON.parse(await Deno.readTextFile(`${ref}/config.json`));
    const counts: number[] = config.data.trainCounts;
    assert(counts[0] > counts[9], `long-tailed at r = 0.01: ${counts}`);
    // An existing run is not overwritten without --resume.
    const before = await Deno.readTextFile(`${ref}/metrics.jsonl`);
    const again = await runIn("cifar10_lt", args(ref));
    assertEquals(again.code, 2);
    assertStringIncludes(again.err, "--resume");
    assertEquals(await Deno.readTextFile(`${ref}/metrics.jsonl`), before);

    // The same run as a process, killed during its second epoch.
    const killed = `${TMP}/killed`;
    const child = spawn("cifar10_lt.ts", args(killed)).spawn();
    const t0 = Date.now();
    let epoch = 0;
    while (Date.now() - t0 < 240_000) {
      await new Promise((r) => setTimeout(r, 20));
      if (!(await exists(`${killed}/last.safetensors`))) continue;
      epoch = (await readCheckpointInfo(`${killed}/last.safetensors`)).epoch;
      if (epoch >= 1) break;
    }
    assertEquals(epoch, 1, "first epoch's checkpoint appeared");
    await new Promise((r) => setTimeout(r, 300)); // into epoch 2
    child.kill("SIGKILL");
    const status = await child.status;
    await child.stdout.cancel();
    await child.stderr.cancel();
    assertEquals(status.signal, "SIGKILL", "killed before it finished");
    const partial = await readMetrics(killed);
    assert(partial.length >= 1 && partial.length < 3, `killed mid-run: ${partial.length} epochs`);

    const resumed = await runIn("cifar10_lt", [...args(killed), "--resume"]);
    assertEquals(resumed.code, 0, resumed.err);
    assertStringIncludes(resumed.err, "resuming");

    const a = (await readMetrics(ref)) as EpochRecord[];
    const b = (await readMetrics(killed)) as EpochRecord[];
    assertEquals(b.map((r) => r.epoch), [0, 1, 2]);
    assertEquals(b.map(comparable), a.map(comparable));
    // The final weights, BN statistics and momenta are identical too.
    const wa = await readSafetensorsFile(`${ref}/last.safetensors`);
    const wb = await readSafetensorsFile(`${killed}/last.safetensors`);
    assertEquals(Object.keys(wb.tensors).sort(), Object.keys(wa.tensors).sort());
    for (const [k, t] of Object.entries(wa.tensors)) {
      assertEquals(
        Array.from(wb.tensors[k].data as Float32Array),
        Array.from(t.data as Float32Array),
        k,
      );
    }
    const cb = JSON.parse(await Deno.readTextFile(`${killed}/config.json`));
    assertEquals(cb.resumes.length, 1);
    await checkRun(killed, expect);
  },
);

// ---- end to end, one per recipe -----------------------------------------------------------------

// The fixtures are in the official formats but not the official releases: --no-verify.
const common = ["--epochs", "1", "--workers", "0", "--eval-every", "1", "--no-verify"];

Deno.test(
  "recipes: cifar100_lt end to end (ETF head with --loss ce, no mixup, r = 1)",
  opts,
  async () => {
    await writeCifar100Fixture(`${DATA}/cifar-100-binary.tar.gz`, 120, 30, 5);
    const out = `${TMP}/cifar100`;
    const r = await runIn("cifar100_lt", [
      ...common,
      "--data-dir",
      DATA,
      "--out",
      out,
      "--ratio",
      "1",
      "--limit",
      "16",
      "--batch-size",
      "8",
      "--classifier",
      "etf",
      "--loss",
      "ce",
      "--mixup",
      "0",
    ]);
    assertEquals(r.code, 0, r.err);
    const records = await checkRun(out, {
      recipe: "cifar100_lt",
      epochs: 1,
      numClasses: 100,
      limit: 16,
    });
    const config = JSON.parse(await Deno.readTextFile(`${out}/config.json`));
    assertEquals(config.effective.loss.name, "cross_entropy");
    assertEquals(config.effective.backbone, "ResNet-32 (width x2)");
    assertEquals(config.effective.featureDim, 128);
    assertEquals(records[0].per_class!.length, 100);
  },
);

/** svhn_lt for one epoch on 16 images of the SVHN fixture written to `data`, into `out`. */
async function runSvhn(data: string, out: string): Promise<Outcome> {
  await svhnFixture(data);
  return await runIn("svhn_lt", [
    ...common,
    "--data-dir",
    data,
    "--out",
    out,
    "--ratio",
    "0.1",
    "--limit",
    "16",
    "--batch-size",
    "8",
  ]);
}

Deno.test("recipes: svhn_lt end to end from .mat files", opts, async () => {
  const out = `${TMP}/svhn`;
  const r = await runSvhn(`${TMP}/svhn_data`, out);
  assertEquals(r.code, 0, r.err);
  await checkRun(out, { recipe: "svhn_lt", epochs: 1, numClasses: 10, limit: 16 });
  // train + extra by default (the official protocol); the report says how the official numbers
  // were made.
  const config = JSON.parse(await Deno.readTextFile(`${out}/config.json`));
  assertEquals(config.data.sources.map((f: { id: string }) => f.id), [
    "svhn-train",
    "svhn-extra",
    "svhn-test",
  ]);
  assertStringIncludes(
    await Deno.readTextFile(`${out}/report.md`),
    "the published SVHN numbers were made with that bug",
  );
});

Deno.test(
  "recipes: a run with half-precision activations trains and says so in config.json and report.md",
  opts,
  async () => {
    const out = `${TMP}/svhn_half`;
    TUNING.halfActivations = true; // as COLLAPSE_ACTIVATIONS=f16 sets it
    try {
      const r = await runSvhn(`${TMP}/svhn_half_data`, out);
      assertEquals(r.code, 0, r.err);
    } finally {
      TUNING.halfActivations = false;
    }
    await checkRun(out, {
      recipe: "svhn_lt",
      epochs: 1,
      numClasses: 10,
      limit: 16,
      activations: "f16",
    });
    assertStringIncludes(await Deno.readTextFile(`${out}/report.md`), "f16 activations");
  },
);

Deno.test("recipes: stl10_lt end to end from the STL-10 tarball (96x96)", opts, async () => {
  const dir = `${TMP}/stl_data`;
  await Deno.mkdir(dir, { recursive: true });
  const fx = await writeStl10Fixture(`${dir}/stl10_binary.tar.gz`, 20, 10, 4);
  const out = `${TMP}/stl10`;
  const r = await runIn("stl10_lt", [
    ...common,
    "--data-dir",
    dir,
    "--out",
    out,
    "--ratio",
    "1",
    "--limit",
    "8",
    "--batch-size",
    "4",
  ]);
  assertEquals(r.code, 0, r.err);
  const config = JSON.parse(await Deno.readTextFile(`${out}/config.json`));
  assertEquals(config.data.inputShape, [96, 96, 3]);
  await checkRun(out, {
    recipe: "stl10_lt",
    epochs: 1,
    numClasses: 10,
    limit: 8,
    classNames: fx.names.filter((_, k) => config.data.testCounts[k] > 0).slice(0, 1),
  });
});

Deno.test(
  "recipes: cub end to end from the CUB tgz (ResNet-50 at --image-size 32)",
  opts,
  async () => {
    const dir = `${TMP}/cub_data`;
    await Deno.mkdir(dir, { recursive: true });
    const fx = await writeCubFixture(`${dir}/CUB_200_2011.tgz`, false);
    const out = `${TMP}/cub`;
    const r = await runIn("cub", [
      ...common,
      "--data-dir",
      dir,
      "--out",
      out,
      "--image-size",
      "32",
      "--limit",
      "6",
      "--batch-size",
      "3",
    ]);
    assertEquals(r.code, 0, r.err);
    await checkRun(out, {
      recipe: "cub",
      epochs: 1,
      numClasses: 3,
      limit: 6,
      classNames: fx.classes,
    });
    const report = await Deno.readTextFile(`${out}/report.md`);
    assertStringIncludes(report, "trained from scratch (no --pretrained weights)");
  },
);

Deno.test("recipes: imagenet_lt end to end from split lists + JPEG folder", opts, async () => {
  const dir = `${TMP}/inet_data`;
  await imagenetLtFixture(dir);
  const out = `${TMP}/inet`;
  const r = await runIn("imagenet_lt", [
    ...common,
    "--data-dir",
    dir,
    "--out",
    out,
    "--image-size",
    "32",
    "--limit",
    "9",
    "--batch-size",
    "3",
    // torchvision's ResNet-50 width and a learnable head: the paper's 4096 x 1000 ETF needs a
    // 63M-parameter arena (over lavapipe's 128 MiB binding limit) and a slow host QR.
    "--layer4-planes",
    "512",
    "--classifier",
    "learnable",
    "--loss",
    "ce",
  ]);
  assertEquals(r.code, 0, r.err);
  const records = await checkRun(out, {
    recipe: "imagenet_lt",
    epochs: 1,
    numClasses: 1000,
    limit: 9,
    paper: 44.7,
  });
  const config = JSON.parse(await Deno.readTextFile(`${out}/config.json`));
  assertAlmostEquals(config.effective.lr, 0.1 * 3 / 1024, 1e-12);
  // The official many/medium/few index ranges over classes re-indexed by training count, and the
  // count thresholds beside them.
  assertEquals(config.data.groups, {
    kind: "ranges",
    head: [0, 389],
    medium: [390, 834],
    tail: [835, 999],
  });
  assertEquals(config.data.groupings[1].rule.kind, "train-count");
  assert(records[0].extra_groups![0].name === "train count");
  const report = await Deno.readTextFile(`${out}/report.md`);
  assertStringIncludes(report, "| last, by train count | 1 |");
  assertEquals(records[0].per_class!.filter((v) => v !== null).length, 3);
});

// ---- data helpers ------------------------------------------------------------------------------

Deno.test("recipes: --limit keeps every class in proportion; long tail at the ratio", () => {
  const labels = Int32Array.from([0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 0, 1]);
  const idx = capPerClass(labels, 3, 6);
  assertEquals(idx.length, 6);
  const counts = [0, 0, 0];
  for (const i of idx) counts[labels[i]]++;
  assertEquals(counts, [3, 2, 1]);
  assertEquals(Array.from(capPerClass(labels, 3, undefined)), [...labels.keys()]);
  const balanced = Int32Array.from({ length: 100 }, (_, i) => i % 10);
  const lt = longTailSelection(balanced, 10, 0.1, 0);
  const c = new Array(10).fill(0);
  for (const i of lt) c[balanced[i]]++;
  assertEquals(c, [10, 7, 5, 4, 3, 2, 2, 1, 1, 1]);
});

Deno.test({
  name: "recipes: cleanup",
  ...opts,
  fn: async () => {
    await Deno.remove(TMP, { recursive: true });
  },
});
