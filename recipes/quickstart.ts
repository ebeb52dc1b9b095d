/**
 * The one-minute demonstration, with no download: a small procedurally generated long-tailed image
 * dataset (`data/synthetic.ts`: class-specific oriented gratings, 10 classes, 16x16, imbalance
 * ratio 0.05), on which a small CIFAR-style ResNet (ResNet-8 at half width, d = 32) is trained
 * twice, side by side: with the paper's fixed simplex-ETF classifier and DR loss, and with the usual
 * learnable classifier and cross-entropy. Prints both models' overall and head/medium/tail test
 * accuracy.
 *
 *     deno run -A recipes/quickstart.ts [--epochs N] [--seed N]
 *
 * @module
 */

// deno-lint-ignore no-import-prefix -- library code uses full specifiers (importable by URL)
import { parseArgs } from "jsr:@std/cli@^1.0.32/parse-args";
import { initDevice } from "../gpu/device.ts";
import "../gpu/ops/mod.ts";
import { Loader } from "../data/loader.ts";
import { classCounts } from "../data/long_tail.ts";
import { DATASET_STATS } from "../data/normalize.ts";
import { InstanceSampler } from "../data/samplers.ts";
import { syntheticDataset } from "../data/synthetic.ts";
import type { ImageArray } from "../data/types.ts";
import { defaultGroups } from "../nn/metrics/classification.ts";
import { evaluate } from "../nn/training/evaluate.ts";
import { fit } from "../nn/training/fit.ts";
import { compile, type DataSource } from "../nn/training/state.ts";
import type { ClassifierFlag, LossFlag } from "./lib/flags.ts";
import { buildClassifier, makeLoss, makeOptimizer, makeSchedule } from "./lib/training_setup.ts";

/** Options of {@linkcode runQuickstart}. */
export interface QuickstartOptions {
  /** Training epochs per model (default 8). */
  epochs?: number;
  /** Seed of the data, the weights and the batch order (default 0). */
  seed?: number;
  /** Train images of the largest class (default 300). */
  nMax?: number;
  /** Test images per class (default 50). */
  testPerClass?: number;
  /** Image side (default 16). */
  size?: number;
  /** Batch size (default 64). */
  batchSize?: number;
  /** Where progress lines go (default: stderr). */
  log?: (line: string) => void;
}

/** One model's test accuracy (fractions in [0, 1]). */
export interface QuickstartResult {
  name: string;
  classifier: ClassifierFlag;
  loss: LossFlag;
  top1: number;
  head: number;
  medium: number;
  tail: number;
  seconds: number;
}

const STATS = DATASET_STATS.synthetic;

function source(loader: Loader, length: number, dropLast: boolean): DataSource {
  const bs = loader.options.batchSize;
  const n = dropLast ? Math.floor(length / bs) : Math.ceil(length / bs);
  return { batches: (e) => loader.batches(e), batchesPerEpoch: () => n };
}

async function trainOne(
  name: string,
  classifier: ClassifierFlag,
  loss: LossFlag,
  train: ImageArray,
  test: ImageArray,
  o: Required<Omit<QuickstartOptions, "log">> & { log: (l: string) => void },
): Promise<QuickstartResult> {
  const t0 = performance.now();
  const model = buildClassifier({
    backbone: { kind: "resnet32", widthMultiplier: 0.5, blocksPerStage: 1 },
    numClasses: train.numClasses,
    classifier,
    normalizeFeatures: true,
    seed: o.seed,
  });
  const epochs = o.epochs;
  const schedule = makeSchedule({
    kind: "multistep",
    base: 0.1,
    warmupEpochs: Math.min(1, epochs - 1),
    milestones: [Math.round(epochs * 0.75)],
  });
  compile(model, { optimizer: makeOptimizer(schedule, 5e-4), loss: makeLoss(loss) });
  const trainLoader = new Loader({
    source: train,
    batchSize: o.batchSize,
    dropLast: true,
    augment: { kind: "crop_flip", pad: 2, flip: true, ...STATS },
    seed: o.seed,
    workers: 0,
  });
  const testLoader = new Loader({
    source: test,
    sampler: new InstanceSampler(test.labels.length, { shuffle: false }),
    batchSize: 100,
    augment: { kind: "normalize", ...STATS },
    workers: 0,
  });
  try {
    await fit(model, source(trainLoader, train.labels.length, true), {
      epochs,
      seed: o.seed,
      verbose: Deno.stderr.isTerminal() ? 1 : 0,
      callbacks: [{
        onEpochEnd: (epoch, logs) =>
          o.log(
            `  ${name}: epoch ${epoch + 1}/${epochs} loss ${logs.loss.toFixed(4)} train acc ` +
              `${(logs.accuracy * 100).toFixed(1)}% (${Math.round(logs.images_per_sec)} img/s)`,
          ),
      }],
    });
    const r = await evaluate(model, source(testLoader, test.labels.length, false), {
      groups: defaultGroups(train.numClasses),
    });
    return {
      name,
      classifier,
      loss,
      top1: r.report.top1,
      head: r.report.head,
      medium: r.report.medium,
      tail: r.report.tail,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    trainLoader.close();
    testLoader.close();
  }
}

/**
 * Trains the ETF + DR model and the learnable + CE baseline on the synthetic long-tailed dataset
 * and returns both models' test accuracy.
 */
export async function runQuickstart(options: QuickstartOptions = {}): Promise<{
  results: QuickstartResult[];
  trainCounts: number[];
  testImages: number;
}> {
  const o = {
    epochs: options.epochs ?? 8,
    seed: options.seed ?? 0,
    nMax: options.nMax ?? 300,
    testPerClass: options.testPerClass ?? 50,
    size: options.size ?? 16,
    batchSize: options.batchSize ?? 64,
    log: options.log ?? ((l: string) => console.error(l)),
  };
  await initDevice();
  const { train, test } = syntheticDataset({
    numClasses: 10,
    size: o.size,
    nMax: o.nMax,
    ratio: 0.05,
    testPerClass: o.testPerClass,
    seed: o.seed,
  });
  const trainCounts = classCounts(train.labels, train.numClasses);
  const results = [
    await trainOne("ETF + DR", "etf", "dr", train, test, o),
    await trainOne("learnable + CE", "learnable", "ce", train, test, o),
  ];
  return { results, trainCounts, testImages: test.labels.length };
}

/** The results as a small text table (accuracies in percent). */
export function resultsTable(results: readonly QuickstartResult[]): string {
  const pct = (v: number) => Number.isFinite(v) ? (v * 100).toFixed(1).padStart(6) : "   n/a";
  const lines = [
    `${"model".padEnd(16)}  top-1    head  medium    tail   time`,
    ...results.map((r) =>
      `${r.name.padEnd(16)} ${pct(r.top1)}  ${pct(r.head)}  ${pct(r.medium)}  ${pct(r.tail)}  ` +
      `${r.seconds.toFixed(0).padStart(4)} s`
    ),
  ];
  return lines.join("\n");
}

if (import.meta.main) {
  const args = parseArgs(Deno.args, {
    string: ["epochs", "seed"],
    boolean: ["help"],
    alias: { h: "help" },
    unknown: (a) => {
      console.error(
        `error: unknown argument ${a}\nUsage: deno run -A recipes/quickstart.ts ` +
          `[--epochs N] [--seed N]`,
      );
      Deno.exit(2);
    },
  });
  if (args.help) {
    console.log(
      "Usage: deno run -A recipes/quickstart.ts [--epochs N] [--seed N]\n\n" +
        "Trains the fixed-ETF + DR model and a learnable + cross-entropy baseline on a small " +
        "synthetic long-tailed dataset (no download) and prints their test accuracy.",
    );
    Deno.exit(0);
  }
  const int = (v: string | undefined, d: number, min: number) => {
    if (v === undefined) return d;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) {
      console.error(`error: expected an integer >= ${min}, got "${v}"`);
      Deno.exit(2);
    }
    return n;
  };
  const epochs = int(args.epochs, 8, 1);
  const seed = int(args.seed, 0, 0);
  console.log(
    "collapse quickstart: ETF classifier + DR loss vs learnable classifier + CE on a synthetic " +
      "long-tailed dataset (10 classes, 16x16, imbalance 0.05; classes 0-2 head, 3-6 medium, " +
      "7-9 tail)",
  );
  const { results, trainCounts, testImages } = await runQuickstart({ epochs, seed });
  console.log(`train images per class: ${trainCounts.join(", ")}; test: ${testImages} (balanced)`);
  console.log(`test accuracy (%) after ${epochs} epochs:`);
  console.log(resultsTable(results));
}
