// `--backbone densenet` in every CIFAR-style recipe (cifar10_lt, cifar100_lt, svhn_lt, stl10_lt
// with its 96x96 images) end to end on official-format fixtures: config.json, metrics.jsonl,
// report.md and the checkpoints name and hold a DenseNet-BC. The runs use --densenet-depth 16 (2
// layers per dense block) to fit the test budget on a CPU adapter; the default depth is the paper's
// 150, checked here by building it (bench/densenet_step.ts trains it).
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { initDevice } from "../gpu/device.ts";
import { loadCheckpoint, readCheckpointInfo } from "../nn/checkpoint.ts";
import { parseRecipeFlags } from "../recipes/lib/flags.ts";
import {
  backboneFlagErrors,
  DENSENET_BC150,
  recipeBackbone,
  type RecipeName,
  RECIPES,
} from "../recipes/lib/recipe_specs.ts";
import { runRecipe } from "../recipes/lib/run_recipe.ts";
import { readMetrics } from "../recipes/lib/run_dir.ts";
import type { EpochRecord } from "../recipes/lib/run_outputs.ts";
import { buildClassifier, describeBackbone } from "../recipes/lib/training_setup.ts";
import { writeCifar100Fixture, writeCifar10Fixture } from "./fixtures/cifar_fixture.ts";
import { writeSvhnFixture } from "./fixtures/mat5_writer.ts";
import { writeStl10Fixture } from "./fixtures/stl10_fixture.ts";
import { useFastCompile } from "./fast_compile.ts";

useFastCompile();

await initDevice();

const TMP = await Deno.makeTempDir({ prefix: "collapse_recipes_densenet_" });
const opts = { sanitizeOps: false, sanitizeResources: false };
const CIFAR_STYLE: RecipeName[] = ["cifar10_lt", "cifar100_lt", "svhn_lt", "stl10_lt"];

Deno.test("--backbone densenet selects DenseNet-BC-150 (1,509,780 backbone parameters, d = 510) in every CIFAR-style recipe; bad values exit 2", () => {
  for (const name of CIFAR_STYLE) {
    const spec = RECIPES[name];
    const parse = (args: string[]) =>
      parseRecipeFlags(args, spec.defaults, name, { extra: spec.extra });
    const r = parse(["--backbone", "densenet"]);
    assert(r.ok);
    assertEquals(recipeBackbone(spec, r.flags.extra), DENSENET_BC150);
    const plain = parse([]);
    assert(plain.ok);
    assertEquals(recipeBackbone(spec, plain.flags.extra), spec.backbone);
    assertEquals(backboneFlagErrors(r.flags.extra), []); // the default depth, 150
    const shallow = parse(["--backbone", "densenet", "--densenet-depth", "9"]);
    assert(shallow.ok);
    assertStringIncludes(backboneFlagErrors(shallow.flags.extra)[0], "integer >= 10");
    const bad = parse(["--backbone", "densenet121"]);
    assert(!bad.ok && bad.exitCode === 2);
    assertStringIncludes(bad.message, "--backbone must be one of resnet32, densenet");
  }
  assertEquals(describeBackbone(DENSENET_BC150), "DenseNet-BC-150 (growth 12, reduction 0.5)");
  const m = buildClassifier({
    backbone: DENSENET_BC150,
    numClasses: 100,
    classifier: "etf",
    normalizeFeatures: true,
    seed: 0,
  });
  m.build([-1, 32, 32, 3]);
  assertEquals(m.head!.inFeatures, 510);
  assertEquals(m.countParams("trainable") - m.head!.countParams("trainable"), 1_509_780);
  m.dispose();
});

const svhnFixture = (dir: string) => writeSvhnFixture(dir, 5);

interface Case {
  recipe: RecipeName;
  data: (dir: string) => Promise<unknown>;
  args: string[];
  numClasses: number;
  inputShape: number[];
}

const CASES: Case[] = [
  {
    recipe: "cifar10_lt",
    data: (d) => writeCifar10Fixture(`${d}/cifar-10-binary.tar.gz`, 20, 20, 3),
    args: ["--ratio", "0.1", "--limit", "24", "--batch-size", "8"],
    numClasses: 10,
    inputShape: [32, 32, 3],
  },
  {
    // d = 48 at depth 16 is below K = 100, which the ETF needs: the learnable head + CE here.
    recipe: "cifar100_lt",
    data: (d) => writeCifar100Fixture(`${d}/cifar-100-binary.tar.gz`, 40, 12, 5),
    args: ["--ratio", "1", "--limit", "24", "--batch-size", "8", "--classifier", "learnable"],
    numClasses: 100,
    inputShape: [32, 32, 3],
  },
  {
    recipe: "svhn_lt",
    data: svhnFixture,
    args: ["--ratio", "0.1", "--limit", "16", "--batch-size", "8"],
    numClasses: 10,
    inputShape: [32, 32, 3],
  },
  {
    recipe: "stl10_lt",
    data: (d) => writeStl10Fixture(`${d}/stl10_binary.tar.gz`, 20, 10, 4),
    args: ["--ratio", "1", "--limit", "8", "--batch-size", "4"],
    numClasses: 10,
    inputShape: [96, 96, 3],
  },
];

for (const c of CASES) {
  Deno.test(`recipes: ${c.recipe} --backbone densenet end to end`, opts, async () => {
    const dir = `${TMP}/${c.recipe}_data`, out = `${TMP}/${c.recipe}`;
    await Deno.mkdir(dir, { recursive: true });
    await c.data(dir);
    const lines: string[] = [];
    const args = [
      ...c.args,
      "--data-dir",
      dir,
      "--out",
      out,
      "--epochs",
      "1",
      "--workers",
      "0",
      "--no-verify", // the fixtures are in the official formats, not the official releases
      "--backbone",
      "densenet",
      "--densenet-depth",
      "16",
    ];
    const code = await runRecipe(RECIPES[c.recipe], args, {
      out: (l) => lines.push(l),
      err: (l) => lines.push(l),
    });
    assertEquals(code, 0, lines.join("\n"));
    const name = "DenseNet-BC-16 (growth 12, reduction 0.5)";
    assertStringIncludes(lines.join("\n"), `${c.recipe}: ${name}`);
    const config = JSON.parse(await Deno.readTextFile(`${out}/config.json`));
    assertEquals(config.effective.backbone, name);
    assertEquals(config.effective.backboneSpec, { ...DENSENET_BC150, depth: 16 });
    assertEquals(config.flags.extra.backbone, "densenet");
    assertEquals(config.identity["extra.backbone"], "densenet");
    assertEquals(config.effective.featureDim, 48); // 24 -> 48 -> 24 -> 48 -> 24 -> 48
    assertEquals(config.data.inputShape, c.inputShape);
    const model = buildClassifier({
      backbone: config.effective.backboneSpec,
      numClasses: c.numClasses,
      classifier: config.flags.classifier,
      normalizeFeatures: RECIPES[c.recipe].normalizeFeatures,
      seed: 9,
    });
    model.build([-1, ...c.inputShape]);
    assertEquals(config.effective.trainableParameters, model.countParams("trainable"));
    await loadCheckpoint(`${out}/best.safetensors`, model);
    model.dispose();
    assertEquals((await readCheckpointInfo(`${out}/last.safetensors`)).epoch, 1);
    const records = (await readMetrics(out)) as EpochRecord[];
    assertEquals(records.length, 1);
    const r = records[0]; // metrics.jsonl: 0-based epochs, accuracies as fractions
    assert(Number.isFinite(r.train_loss) && r.top1! >= 0 && r.top1! <= 1);
    assertEquals(r.per_class!.length, c.numClasses);
    const report = await Deno.readTextFile(`${out}/report.md`);
    assertStringIncludes(report, `| last | ${r.epoch + 1} | ${(r.top1! * 100).toFixed(2)} |`);
    assertStringIncludes(report, name);
  });
}
