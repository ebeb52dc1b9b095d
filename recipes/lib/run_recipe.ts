/**
 * The shared recipe runner behind every `recipes/*.ts`: flags -> the WebGPU device -> data
 * preparation (official files found in or downloaded into `--data-dir`, the long-tailed train split,
 * cached shards) -> the model (backbone + ETF or learnable head) -> training with the paper's
 * schedule, a progress bar and one summary line per epoch -> evaluation every `--eval-every` epochs
 * with per-class accuracy and neural-collapse metrics -> the run folder.
 *
 * The run folder (`--out`): `config.json` (every setting, the adapter, versions), `metrics.jsonl`
 * (one fsynced line per epoch), `last.safetensors` and `best.safetensors` (atomic), `report.md`
 * and the SVG plots (rewritten atomically after each epoch). After an epoch the order is: metrics
 * line, best checkpoint, last checkpoint, report; `--resume` loads `last.safetensors`, drops
 * metrics lines after its epoch and continues exactly as the uninterrupted run, so a run killed at
 * any moment loses at most the epoch in progress.
 *
 * Exit codes: 0 success (and `--help`), 1 failure (no data, no adapter, training error), 2 usage
 * error (nothing written).
 *
 * @module
 */

import denoJson from "../../deno.json" with { type: "json" };
import { gpu, initDevice } from "../../gpu/device.ts";
import "../../gpu/ops/mod.ts"; // plugs the ops autograd's backward needs
import { dataDir as defaultDataDir } from "../../data/download.ts";
import { Loader } from "../../data/loader.ts";
import { InstanceSampler } from "../../data/samplers.ts";
import { pathExists } from "../../data/path_exists.ts";
import { loadCheckpoint, readCheckpointInfo } from "../../nn/checkpoint.ts";
import type { ClassifierModel } from "../../nn/model/classifier.ts";
import type { Callback, FitContext } from "../../nn/training/callbacks.ts";
import { evaluate } from "../../nn/training/evaluate.ts";
import { fit } from "../../nn/training/fit.ts";
import type { Logs } from "../../nn/training/history.ts";
import { compile, type DataSource } from "../../nn/training/state.ts";
import { DATASETS, DataUnavailableError, prepareDataset, type PreparedData } from "./datasets.ts";
import { parseRecipeFlags, type RecipeFlags, recipeUsage, samplerKind } from "./flags.ts";
import { paperTop1 } from "./paper_results.ts";
import {
  backboneFlagErrors,
  effectiveLr,
  recipeBackbone,
  type RecipeSpec,
  scheduleParams,
} from "./recipe_specs.ts";
import {
  appendMetrics,
  CONFIG_FILE,
  readConfig,
  readMetrics,
  truncateMetricsAfterEpoch,
  writeConfig,
} from "./run_dir.ts";
import {
  bestRecord,
  type EpochRecord,
  type NcRecord,
  type OutputContext,
  summaryLine,
  writeRunOutputs,
} from "./run_outputs.ts";
import {
  buildClassifier,
  describeBackbone,
  loadPretrained,
  makeLoss,
  makeOptimizer,
  makeSchedule,
} from "./training_setup.ts";

/** File names of the checkpoints in the run folder. */
export const LAST_CHECKPOINT = "last.safetensors";
export const BEST_CHECKPOINT = "best.safetensors";

/** Where a run prints (tests capture it). */
export interface RecipeIO {
  out(line: string): void;
  err(line: string): void;
}

const CONSOLE_IO: RecipeIO = {
  out: (l) => console.log(l),
  err: (l) => console.error(l),
};

/** Settings that must not change when a run is resumed. */
const IDENTITY_KEYS = [
  "ratio",
  "batchSize",
  "lr",
  "weightDecay",
  "classifier",
  "loss",
  "mixup",
  "sampler",
  "seed",
  "limit",
] as const;

class UsageError extends Error {}

function extraNumber(flags: RecipeFlags, name: string): number | undefined {
  const v = flags.extra[name];
  return typeof v === "number" ? v : undefined;
}

function extraString(flags: RecipeFlags, name: string): string | undefined {
  const v = flags.extra[name];
  return typeof v === "string" ? v : undefined;
}

/** Recipe-specific checks that the generic parser cannot make; returns the problems. */
function validate(spec: RecipeSpec, flags: RecipeFlags): string[] {
  const errors: string[] = [];
  const size = extraNumber(flags, "image-size");
  if (size !== undefined && !(Number.isInteger(size) && size >= 16 && size <= 1024)) {
    errors.push(`--image-size must be an integer in [16, 1024], got ${size}`);
  }
  const planes = extraNumber(flags, "layer4-planes");
  if (planes !== undefined && !(Number.isInteger(planes) && planes >= 1)) {
    errors.push(`--layer4-planes must be a positive integer, got ${planes}`);
  }
  errors.push(...backboneFlagErrors(flags.extra));
  if (spec.fixedSplit && flags.ratio !== 1) {
    errors.push(`--ratio: ${spec.title}'s split is fixed; leave --ratio at 1`);
  }
  return errors;
}

function usageError(spec: RecipeSpec, defaults: RecipeFlags, errors: string[]): string {
  return `${errors.map((e) => `error: ${e}`).join("\n")}\n\n${
    recipeUsage(spec.name, defaults, { description: spec.description, extra: spec.extra })
  }`;
}

function identity(flags: RecipeFlags): Record<string, unknown> {
  const id: Record<string, unknown> = {};
  for (const k of IDENTITY_KEYS) id[k] = flags[k] ?? null;
  for (const [k, v] of Object.entries(flags.extra)) id[`extra.${k}`] = v ?? null;
  return id;
}

function adapterText(): string {
  const a = gpu().adapter;
  const parts = [a.description || a.device, a.vendor, a.architecture].filter(Boolean);
  return parts.join(", ") + (a.isFallbackAdapter ? " (software adapter)" : "") +
    (a.backend ? ` [backend ${a.backend}]` : "");
}

function adapterInfo(): Record<string, unknown> {
  const a = gpu().adapter;
  return {
    description: a.description,
    vendor: a.vendor,
    architecture: a.architecture,
    device: a.device,
    isFallbackAdapter: a.isFallbackAdapter,
    backend: a.backend,
    features: a.features,
    limits: a.limits,
  };
}

function versions(): Record<string, string> {
  return {
    collapse: String((denoJson as { version?: string }).version ?? "unknown"),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    os: `${Deno.build.os}-${Deno.build.arch}`,
  };
}

function ncRecord(nc: NcRecord | undefined): NcRecord | undefined {
  if (!nc) return undefined;
  return {
    nc1: nc.nc1,
    normalizedDistance: nc.normalizedDistance,
    meanCosH: nc.meanCosH,
    stdCosH: nc.stdCosH,
    meanCosW: nc.meanCosW,
    stdCosW: nc.stdCosW,
    meanCosHW: nc.meanCosHW,
    stdCosHW: nc.stdCosHW,
    meanDiagCosHW: nc.meanDiagCosHW,
  };
}

/**
 * Whether the neural-collapse metrics are affordable at every evaluation: their host finaliser
 * (nn/metrics/neural_collapse.ts) costs about K d^2 multiply-adds for K classes present in the test
 * split and feature dimension d, plus an O(K^3) eigendecomposition (fine for CIFAR/CUB, hours for
 * ImageNet-LT's 1000 x 4096).
 */
export function ncAffordable(testCounts: readonly number[], featureDim: number): boolean {
  const k = testCounts.filter((c) => c > 0).length;
  return featureDim > 0 && k <= 300 && k * featureDim * featureDim <= 2e9;
}

/** A data source over a loader with a known number of full batches per epoch. */
async function sourceOf(loader: Loader, dropLast: boolean): Promise<DataSource> {
  const { sampler } = await loader.ready();
  const bs = loader.options.batchSize;
  const n = dropLast ? Math.floor(sampler.length / bs) : Math.ceil(sampler.length / bs);
  return { batches: (e) => loader.batches(e), batchesPerEpoch: () => n };
}

/** Evaluates, logs, checkpoints and reports after every epoch. */
class RecipeCallback implements Callback {
  #t0 = 0;
  constructor(
    readonly o: {
      model: ClassifierModel;
      test: DataSource;
      data: PreparedData;
      flags: RecipeFlags;
      records: EpochRecord[];
      outputs: OutputContext;
      io: RecipeIO;
      /** Compute the neural-collapse metrics at each evaluation. */
      neuralCollapse: boolean;
    },
  ) {}

  onEpochBegin(): void {
    this.#t0 = performance.now();
  }

  async onEpochEnd(epoch: number, logs: Logs, ctx: FitContext): Promise<void> {
    const { flags, records, io } = this.o;
    const e1 = epoch + 1;
    const rec: EpochRecord = {
      epoch: e1,
      lr: logs.lr,
      train_loss: logs.loss,
      train_accuracy: logs.accuracy * 100,
      images_per_sec: logs.images_per_sec,
      epoch_seconds: (performance.now() - this.#t0) / 1000,
    };
    if (e1 % flags.evalEvery === 0 || e1 === ctx.epochs) {
      const r = await evaluate(this.o.model, this.o.test, {
        neuralCollapse: this.o.neuralCollapse,
        groups: this.o.data.groups,
      });
      rec.test_loss = r.loss;
      rec.top1 = r.report.top1 * 100;
      rec.head = r.report.head * 100;
      rec.medium = r.report.medium * 100;
      rec.tail = r.report.tail * 100;
      rec.per_class = r.report.perClass.map((a) => a * 100);
      rec.nc = ncRecord(r.neuralCollapse);
    }
    await appendMetrics(flags.out, rec);
    records.push(rec);
    const best = bestRecord(records);
    if (rec.top1 !== undefined && best === rec) {
      await ctx.saveCheckpoint(`${flags.out}/${BEST_CHECKPOINT}`, e1, {
        top1: rec.top1,
        bestEpoch: e1,
      });
    }
    await ctx.saveCheckpoint(`${flags.out}/${LAST_CHECKPOINT}`, e1, {
      top1: rec.top1 ?? null,
      bestEpoch: best?.epoch ?? null,
    });
    io.out(summaryLine(rec, ctx.epochs));
    await writeRunOutputs(flags.out, records, this.o.outputs);
  }
}

/**
 * Runs a recipe with command-line `args`; returns the exit code (the recipe file exits with it).
 *
 * @example
 * ```ts ignore
 * import { RECIPES } from "./recipe_specs.ts";
 * Deno.exit(await runRecipe(RECIPES.cifar10_lt, ["--epochs", "1", "--limit", "256"]));
 * ```
 */
export async function runRecipe(
  spec: RecipeSpec,
  args: readonly string[],
  io: RecipeIO = CONSOLE_IO,
): Promise<number> {
  const defaults = { ...spec.defaults, dataDir: spec.defaults.dataDir || defaultDataDir() };
  const parsed = parseRecipeFlags(args, defaults, spec.name, {
    description: spec.description,
    extra: spec.extra,
  });
  if (!parsed.ok) {
    (parsed.exitCode === 0 ? io.out : io.err)(parsed.message);
    return parsed.exitCode;
  }
  const flags = parsed.flags;
  const problems = validate(spec, flags);
  if (problems.length) {
    io.err(usageError(spec, { ...defaults, extra: {} }, problems));
    return 2;
  }
  try {
    return await run(spec, flags, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`error: ${e.message}`);
      return 2;
    }
    if (e instanceof DataUnavailableError) {
      io.err(`collapse: ${e.message}`);
      return 1;
    }
    io.err(`collapse: ${spec.name} failed: ${(e as Error)?.message ?? String(e)}`);
    if (Deno.env.get("COLLAPSE_DEBUG")) io.err(String((e as Error)?.stack ?? ""));
    return 1;
  }
}

async function run(spec: RecipeSpec, flags: RecipeFlags, io: RecipeIO): Promise<number> {
  const out = flags.out;
  const hasConfig = await pathExists(`${out}/${CONFIG_FILE}`);
  const lastPath = `${out}/${LAST_CHECKPOINT}`;
  const hasLast = await pathExists(lastPath);
  if (!flags.resume && (hasConfig || hasLast)) {
    throw new UsageError(
      `${out} already holds a run; pass --resume to continue it, or choose another --out`,
    );
  }
  let initialEpoch = 0;
  let savedConfig: Record<string, unknown> | undefined;
  if (flags.resume && hasConfig) {
    savedConfig = (await readConfig(out)) as Record<string, unknown>;
    const before = (savedConfig?.identity ?? {}) as Record<string, unknown>;
    const now = identity(flags);
    const diff = Object.keys({ ...before, ...now }).filter((k) =>
      JSON.stringify(before[k] ?? null) !== JSON.stringify(now[k] ?? null)
    );
    if (savedConfig?.recipe !== spec.name) {
      throw new UsageError(`${out} holds a ${String(savedConfig?.recipe)} run, not ${spec.name}`);
    }
    if (diff.length) {
      throw new UsageError(
        `--resume: settings differ from the run in ${out}: ` +
          diff.map((k) => `${k} was ${JSON.stringify(before[k])}, now ${JSON.stringify(now[k])}`)
            .join("; "),
      );
    }
  }
  if (flags.resume && hasLast) {
    initialEpoch = (await readCheckpointInfo(lastPath)).epoch;
  }

  try {
    await initDevice();
  } catch (e) {
    io.err(`collapse: ${(e as Error).message}`);
    return 1;
  }

  const dsSpec = DATASETS[spec.dataset];
  const imageSize = extraNumber(flags, "image-size");
  const data = await prepareDataset(spec.dataset, {
    dataDir: flags.dataDir,
    ratio: flags.ratio,
    seed: flags.seed,
    limit: flags.limit,
    imageSize,
    svhnExtra: flags.extra.extra === true,
    imagenetDir: extraString(flags, "imagenet-dir"),
    recipe: spec.name,
    log: io.err,
  });
  const trainSize = data.trainCounts.reduce((a, b) => a + b, 0);
  const testSize = data.testCounts.reduce((a, b) => a + b, 0);
  if (flags.batchSize > trainSize) {
    throw new UsageError(
      `--batch-size ${flags.batchSize} is larger than the training split (${trainSize} images` +
        `${flags.limit ? ` with --limit ${flags.limit}` : ""}); lower it`,
    );
  }

  const planes = extraNumber(flags, "layer4-planes");
  const backbone = spec.backbone.kind === "resnet50" && planes !== undefined
    ? { ...spec.backbone, layer4Planes: planes }
    : recipeBackbone(spec, flags.extra);
  const model = buildClassifier({
    backbone,
    numClasses: data.numClasses,
    classifier: flags.classifier,
    normalizeFeatures: spec.normalizeFeatures,
    seed: flags.seed,
  });
  model.build([-1, ...data.inputShape]);
  const lr = effectiveLr(spec, flags.lr, flags.batchSize);
  const sp = scheduleParams(spec, flags.epochs);
  const schedule = makeSchedule(
    sp.kind === "multistep"
      ? { kind: "multistep", base: lr, warmupEpochs: sp.warmupEpochs, milestones: sp.milestones }
      : { kind: "cosine", base: lr, epochs: sp.epochs },
  );
  const optimizer = makeOptimizer(schedule, flags.weightDecay);
  const loss = makeLoss(flags.loss, spec.drNormRegularizer, {
    trainCounts: data.trainCounts,
    epochs: flags.epochs,
    classifier: flags.classifier,
  });
  const notes = [...spec.notes];
  const pretrained = extraString(flags, "pretrained");
  if (initialEpoch > 0) {
    await loadCheckpoint(lastPath, model, { optimizer });
  } else if (pretrained) {
    const r = await loadPretrained(model, pretrained);
    notes.push(
      `fine-tuned from ${pretrained} (${r.loaded.length} tensors loaded; not in the file: ` +
        `${r.missing.length ? r.missing.join(", ") : "none"})`,
    );
  } else if (spec.extra.some((e) => e.name === "pretrained")) {
    notes.push("trained from scratch (no --pretrained weights)");
  }
  if (flags.limit !== undefined) {
    notes.push(`quick run: at most ${flags.limit} images per split (--limit)`);
  }
  if (imageSize !== undefined && imageSize !== dsSpec.imageSize) {
    notes.push(`images at ${imageSize}x${imageSize} instead of ${dsSpec.imageSize} (--image-size)`);
  }
  compile(model, { optimizer, loss });
  const featureDim = model.head?.inFeatures ?? 0;
  const neuralCollapse = ncAffordable(data.testCounts, featureDim);
  if (!neuralCollapse) {
    notes.push(
      `neural-collapse metrics skipped: finalising them on the host costs about K d^2 = ` +
        `${
          data.testCounts.filter((c) => c > 0).length
        } x ${featureDim}^2 operations per evaluation`,
    );
  }

  const paramCount = model.weights().filter((w) => w.trainable)
    .reduce((s, w) => s + w.value.shape.reduce((a, b) => a * b, 1), 0);
  const config: Record<string, unknown> = {
    recipe: spec.name,
    dataset: spec.title,
    flags: { ...flags },
    identity: identity(flags),
    effective: {
      lr,
      lrReference: spec.lrReferenceBatch
        ? `--lr ${flags.lr} for batch ${spec.lrReferenceBatch}, scaled linearly`
        : null,
      schedule: schedule.getConfig(),
      optimizer: optimizer.getConfig(),
      loss: loss.getConfig(),
      backbone: describeBackbone(backbone),
      backboneSpec: backbone,
      head: flags.classifier === "etf"
        ? `fixed simplex ETF${spec.normalizeFeatures ? " (BN + L2-normalised features)" : " (BN)"}`
        : "learnable Dense",
      trainableParameters: paramCount,
      featureDim,
      neuralCollapse,
      paperTop1: paperTop1(spec.name, flags.ratio) ?? null,
    },
    data: {
      key: data.key,
      dir: data.dir,
      numClasses: data.numClasses,
      trainImages: trainSize,
      testImages: testSize,
      trainCounts: data.trainCounts,
      testCounts: data.testCounts,
      inputShape: data.inputShape,
      trainAugment: data.trainAugment,
      testAugment: data.testAugment,
      groups: data.groups,
      sources: data.sources,
    },
    adapter: adapterInfo(),
    versions: versions(),
    notes,
    createdAt: (savedConfig?.createdAt as string | undefined) ?? new Date().toISOString(),
    resumes: [
      ...((savedConfig?.resumes as unknown[] | undefined) ?? []),
      ...(flags.resume ? [{ at: new Date().toISOString(), fromEpoch: initialEpoch }] : []),
    ],
  };
  const kept = await truncateMetricsAfterEpoch(out, initialEpoch);
  await writeConfig(out, config);
  const records = (await readMetrics(out)) as EpochRecord[];
  if (flags.resume) {
    io.err(
      initialEpoch > 0
        ? `collapse: resuming ${out} after epoch ${initialEpoch} (${kept} metrics lines kept)`
        : `collapse: nothing to resume in ${out}; starting from epoch 1`,
    );
  }

  const trainLoader = new Loader({
    source: data.trainDir,
    sampler: samplerKind(flags.sampler),
    batchSize: flags.batchSize,
    dropLast: true,
    augment: data.trainAugment,
    seed: flags.seed,
    workers: flags.workers,
    totalEpochs: flags.epochs,
  });
  const testLoader = new Loader({
    source: data.testDir,
    sampler: new InstanceSampler(testSize, { shuffle: false }),
    batchSize: flags.batchSize,
    augment: data.testAugment,
    seed: flags.seed,
    workers: flags.workers,
  });
  const outputs: OutputContext = {
    recipe: spec.name,
    title: spec.title,
    ratio: flags.ratio,
    classNames: data.classNames,
    trainCounts: data.trainCounts,
    adapter: adapterText(),
    config: { ...config, adapter: adapterText() },
    notes,
  };
  try {
    const train = await sourceOf(trainLoader, true);
    const test = await sourceOf(testLoader, false);
    io.err(
      `collapse: ${spec.name}: ${describeBackbone(backbone)}, ${flags.classifier} head, ` +
        `${flags.loss} loss; ${trainSize} train / ${testSize} test images, ${data.numClasses} ` +
        `classes; ${train.batchesPerEpoch!(0)} steps per epoch on ${adapterText()}`,
    );
    if (initialEpoch < flags.epochs) {
      await fit(model, train, {
        epochs: flags.epochs,
        initialEpoch,
        seed: flags.seed,
        mixupAlpha: flags.mixup,
        config: { recipe: spec.name, identity: identity(flags) },
        verbose: Deno.stderr.isTerminal() ? 1 : 0,
        callbacks: [
          new RecipeCallback({ model, test, data, flags, records, outputs, io, neuralCollapse }),
        ],
      });
    }
  } finally {
    trainLoader.close();
    testLoader.close();
  }
  await writeRunOutputs(out, records, outputs);
  const best = bestRecord(records);
  const paper = paperTop1(spec.name, flags.ratio);
  io.out(
    `done: best top-1 ${best?.top1?.toFixed(2) ?? "n/a"}% (epoch ${best?.epoch ?? "-"})` +
      (paper !== undefined ? `, paper ${paper}%` : "") + `; report: ${out}/report.md`,
  );
  return 0;
}

/** Entry point of a recipe file: runs it with `Deno.args` and exits with its code. */
export async function main(spec: RecipeSpec): Promise<never> {
  const code = await runRecipe(spec, Deno.args);
  Deno.exit(code);
}
