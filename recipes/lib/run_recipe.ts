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
 * any moment loses at most the epoch in progress. `--resume PATH` continues from another checkpoint
 * or folder (./resume.ts); `--eval-only CHECKPOINT` evaluates without training (./eval_only.ts);
 * `--print-config` prints the resolved settings.
 *
 * One writer per folder: a run holds the folder's lock (./run_lock.ts) while it writes, and
 * removes the temporary files that killed runs left there when it starts.
 *
 * Exit codes: 0 success (and `--help`), 1 failure (no data, no adapter, training error), 2 usage
 * error (nothing written).
 *
 * @module
 */

import denoJson from "../../deno.json" with { type: "json" };
import { gpu, initDevice } from "../../gpu/device.ts";
import { kernelMode, TUNING } from "../../gpu/kernels/tuning.ts";
import "../../gpu/ops/mod.ts"; // plugs the ops autograd's backward needs
import { dataDir as defaultDataDir } from "../../data/download.ts";
import {
  type DatasetInfo,
  DatasetOptionsError,
  DATASETS,
  DataUnavailableError,
  loadDataset,
  type LoadDatasetOptions,
  type LoadedDataset,
  prepareDataset,
} from "../../data/datasets/mod.ts";
import { Loader } from "../../data/loader.ts";
import { InstanceSampler } from "../../data/samplers.ts";
import { pathExists } from "../../data/path_exists.ts";
import { type CheckpointInfo, loadCheckpoint, readCheckpointInfo } from "../../nn/checkpoint.ts";
import { removeStaleTempFiles } from "../../nn/io/atomic_file.ts";
import type { ClassifierModel } from "../../nn/model/classifier.ts";
import type { Callback, FitContext } from "../../nn/training/callbacks.ts";
import { evaluate } from "../../nn/training/evaluate.ts";
import { fit } from "../../nn/training/fit.ts";
import type { Logs } from "../../nn/training/history.ts";
import { compile, type DataSource } from "../../nn/training/state.ts";
import { datasetOptions } from "./dataset_flags.ts";
// deno-lint-ignore no-import-prefix -- library code uses full specifiers (importable by URL)
import { dirname } from "jsr:@std/path@^1/dirname";
// deno-lint-ignore no-import-prefix -- library code uses full specifiers (importable by URL)
import { join } from "jsr:@std/path@^1/join";
import { type EvalOnlyContext, runEvalOnly } from "./eval_only.ts";
import { UsageError } from "./errors.ts";
import {
  parseRecipeFlags,
  type RecipeFlags,
  recipeUsage,
  samplerKind,
  settingsOf,
} from "./flags.ts";
import { differingFlags, paperTop1, protocolDifferences, runBackbone } from "./paper_results.ts";
import {
  backboneFlagErrors,
  type BackboneSpec,
  describeSchedule,
  effectiveLr,
  recipeBackbone,
  type RecipeSpec,
  scheduleHelp,
  type ScheduleParams,
  scheduleParams,
  scheduleProblems,
} from "./recipe_specs.ts";
import { epochsChange, LAST_CHECKPOINT, resolveRunTarget, settingsDiff } from "./resume.ts";
import {
  appendMetrics,
  CONFIG_FILE,
  readConfig,
  readMetrics,
  truncateMetricsAfterEpoch,
  writeConfig,
  writeMetrics,
} from "./run_dir.ts";
import { acquireRunLock, type RunLock, RunLockedError } from "./run_lock.ts";
import {
  bestRecord,
  type EpochRecord,
  evaluationFields,
  type OutputContext,
  summaryLine,
  trainingRecord,
  writeRunOutputs,
} from "./run_outputs.ts";
import {
  buildClassifier,
  describeBackbone,
  loadPretrained,
  makeLoss,
  makeOptimizer,
  scheduleFromParams,
} from "./training_setup.ts";

export { LAST_CHECKPOINT };
/** File name of the best checkpoint (highest test top-1) in the run folder. */
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
  errors.push(...scheduleProblems(spec, flags.epochs, flags));
  return errors;
}

function cliOptions(spec: RecipeSpec) {
  return { description: spec.description, extra: spec.extra, notes: [scheduleHelp(spec)] };
}

function usageError(spec: RecipeSpec, defaults: RecipeFlags, errors: string[]): string {
  return `${errors.map((e) => `error: ${e}`).join("\n")}\n\n${
    recipeUsage(spec.name, defaults, cliOptions(spec))
  }`;
}

/** The learning-rate schedule of a run with these flags. */
function runSchedule(spec: RecipeSpec, flags: RecipeFlags): ScheduleParams {
  return scheduleParams(spec, flags.epochs, flags);
}

/**
 * The settings a resumed run must share with the checkpoint it continues (saved in config.json
 * and in every checkpoint): the identity keys, the extras, the epochs and the schedule.
 */
function identity(flags: RecipeFlags, schedule: ScheduleParams): Record<string, unknown> {
  const id: Record<string, unknown> = {};
  for (const k of IDENTITY_KEYS) id[k] = flags[k] ?? null;
  for (const [k, v] of Object.entries(flags.extra)) id[`extra.${k}`] = v ?? null;
  id.epochs = flags.epochs;
  id.schedule = schedule;
  return id;
}

function adapterText(): string {
  const a = gpu().adapter;
  const parts = [a.description || a.device, a.vendor, a.architecture].filter(Boolean);
  return parts.join(", ") + (a.isFallbackAdapter ? " (software adapter)" : "") +
    (a.backend ? ` [backend ${a.backend}]` : "") +
    (TUNING.halfActivations ? "; f16 activations (COLLAPSE_ACTIVATIONS=f16)" : "");
}

/** The kernel family and the storage of activations the run trained with (config.json). */
function kernelInfo(): { mode: string; activations: "f16" | "f32" } {
  return { mode: kernelMode(), activations: TUNING.halfActivations ? "f16" : "f32" };
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

/**
 * The test-split fields of a metrics record (fractions, ECE and its bins, the evaluation's
 * images/s; see `evaluationFields`).
 */
async function testRecord(
  model: ClassifierModel,
  test: DataSource,
  data: DatasetInfo,
  neuralCollapse: boolean,
): Promise<Partial<EpochRecord>> {
  const t = performance.now();
  const r = await evaluate(model, test, {
    neuralCollapse,
    groups: data.groups,
    extraGroups: data.groupings.slice(1),
  });
  return evaluationFields(r, (performance.now() - t) / 1000);
}

/** Evaluates, logs, checkpoints and reports after every epoch. */
class RecipeCallback implements Callback {
  #t0 = 0;
  constructor(
    readonly o: {
      model: ClassifierModel;
      test: DataSource;
      data: DatasetInfo;
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
    const e1 = epoch + 1; // epochs completed
    const rec = trainingRecord(epoch, logs, (performance.now() - this.#t0) / 1000);
    if (e1 % flags.evalEvery === 0 || e1 === ctx.epochs) {
      Object.assign(
        rec,
        await testRecord(this.o.model, this.o.test, this.o.data, this.o.neuralCollapse),
      );
    }
    await appendMetrics(flags.out, rec);
    records.push(rec);
    const best = bestRecord(records);
    if (rec.top1 !== undefined && best === rec) {
      await ctx.saveCheckpoint(`${flags.out}/${BEST_CHECKPOINT}`, e1, {
        top1: rec.top1,
        bestEpoch: epoch,
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
 * ```ts
 * import { RECIPES } from "./recipe_specs.ts";
 * Deno.exit(await runRecipe(RECIPES.cifar10_lt, ["--epochs", "1", "--limit", "256"]));
 * ```
 */
export async function runRecipe(
  spec: RecipeSpec,
  args: readonly string[],
  io: RecipeIO = CONSOLE_IO,
): Promise<number> {
  let resolved;
  try {
    resolved = await resolveFlags(spec, args, io);
  } catch (e) {
    return failure(spec, e, io);
  }
  if (typeof resolved === "number") return resolved;
  const { flags, given } = resolved;
  if (flags.printConfig) {
    io.out(printedConfig(spec, flags));
    return 0;
  }
  try {
    return flags.evalOnly !== undefined
      ? await runEvalOnly(evalOnlyContext(spec, flags, given, io))
      : await run(spec, flags, given, io);
  } catch (e) {
    return failure(spec, e, io);
  }
}

/**
 * Parses and validates the command line; a resumed or evaluated run then takes the settings it
 * was trained with (its folder's config.json) as the base that the command line overrides, so a
 * changed identity setting is one given explicitly. Returns the flags, or an exit code after
 * printing the usage or the problems.
 */
async function resolveFlags(
  spec: RecipeSpec,
  args: readonly string[],
  io: RecipeIO,
): Promise<{ flags: RecipeFlags; given: string[] } | number> {
  const defaults = { ...spec.defaults, dataDir: spec.defaults.dataDir || defaultDataDir() };
  const parse = (a: readonly string[]) => {
    const parsed = parseRecipeFlags(a, defaults, spec.name, cliOptions(spec));
    if (!parsed.ok) {
      (parsed.exitCode === 0 ? io.out : io.err)(parsed.message);
      return parsed.exitCode;
    }
    const problems = validate(spec, parsed.flags);
    if (problems.length) {
      io.err(usageError(spec, { ...defaults, extra: {} }, problems));
      return 2;
    }
    return parsed;
  };
  const first = parse(args);
  if (typeof first === "number") return first;
  const saved = await savedRunConfig(first.flags, first.given);
  if (!saved) return { flags: first.flags, given: first.given };
  const again = parse(["--config", saved, ...args]);
  if (typeof again === "number") return again;
  // The folder is where this invocation points, not where the saved run once was.
  return { flags: { ...again.flags, out: first.flags.out }, given: first.given };
}

/** What `--print-config` prints: the settings (as `--config` reads them) and the schedule. */
function printedConfig(spec: RecipeSpec, flags: RecipeFlags): string {
  const sp = runSchedule(spec, flags);
  const lr = effectiveLr(spec, flags.lr, flags.batchSize);
  return JSON.stringify(
    {
      recipe: spec.name,
      flags: settingsOf(flags),
      schedule: { ...sp, lr, description: describeSchedule(sp, lr) },
    },
    null,
    2,
  );
}

/** Prints a failure and returns its exit code: 2 for a usage problem, 1 otherwise. */
function failure(spec: RecipeSpec, e: unknown, io: RecipeIO): number {
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

/** The recipe runner's parts that `--eval-only` uses. */
function evalOnlyContext(
  spec: RecipeSpec,
  flags: RecipeFlags,
  given: readonly string[],
  io: RecipeIO,
): EvalOnlyContext {
  return {
    spec,
    flags,
    given,
    io,
    lockFolder: (dir) => lockFolder(dir, `${spec.name} evaluation`, io),
    initDevice,
    prepareData: (f) => prepareRunData(spec, f, io),
    buildModel: (f, data) => buildRunModel(spec, f, data).model,
    testSource: async (f, data) => {
      const loader = testLoaderFor(f, data);
      return { source: await sourceOf(loader, false), close: () => loader.close() };
    },
    neuralCollapse: (data, model) => ncAffordable(data.testCounts, model.head?.inFeatures ?? 0),
    evaluateRecord: testRecord,
    outputContext: (f, data, config, notes) =>
      outputContext(spec, f, data, { ...config, adapter: adapterText() }, notes),
    runInfo: () => ({ adapter: adapterInfo(), versions: versions() }),
  };
}

/**
 * The config.json of the run that `--resume` continues or whose checkpoint `--eval-only`
 * evaluates (the checkpoint's folder), unless `--config` names settings explicitly.
 */
async function savedRunConfig(
  flags: RecipeFlags,
  given: readonly string[],
): Promise<string | undefined> {
  if (given.includes("config")) return undefined;
  let folder: string | undefined;
  if (flags.evalOnly !== undefined) {
    const stat = await Deno.stat(flags.evalOnly).catch(() => null);
    if (stat) folder = stat.isDirectory ? flags.evalOnly : dirname(flags.evalOnly);
  } else if (flags.resume) {
    const target = await resolveRunTarget(flags, given);
    folder = target.fork ? dirname(target.checkpoint!) : target.out;
  }
  if (folder === undefined) return undefined;
  const path = join(folder, CONFIG_FILE);
  const config = await readConfig(folder).catch(() => undefined) as
    | Record<string, unknown>
    | undefined;
  return config && config.evalOnly === undefined && typeof config.flags === "object"
    ? path
    : undefined;
}

/**
 * Takes the run folder's lock (a live holder is a usage error naming it), says when a killed
 * run's lock is taken over, and removes the temporary files killed runs left there.
 */
async function lockFolder(dir: string, purpose: string, io: RecipeIO): Promise<RunLock> {
  let lock: RunLock;
  try {
    lock = await acquireRunLock(dir, purpose);
  } catch (e) {
    if (e instanceof RunLockedError) throw new UsageError(e.message);
    throw e;
  }
  try {
    if (lock.tookOverFrom) {
      io.err(
        `collapse: ${dir}: taking over the lock of pid ${lock.tookOverFrom.pid}, which no ` +
          `longer runs`,
      );
    }
    const removed = await removeStaleTempFiles(dir, { olderThan: lock.since });
    if (removed.length) {
      io.err(
        `collapse: ${dir}: removed ${removed.length} temporary file(s) that killed runs left ` +
          `(${removed.slice(0, 3).join(", ")}${removed.length > 3 ? ", ..." : ""})`,
      );
    }
  } catch (e) {
    await lock.release({ removeDirIfEmpty: true });
    throw e;
  }
  return lock;
}

async function run(
  spec: RecipeSpec,
  cliFlags: RecipeFlags,
  given: readonly string[],
  io: RecipeIO,
): Promise<number> {
  const target = await resolveRunTarget(cliFlags, given);
  const flags: RecipeFlags = { ...cliFlags, out: target.out };
  const lock = await lockFolder(target.out, `${spec.name} training`, io);
  try {
    return await train(spec, flags, target, io);
  } finally {
    await lock.release({ removeDirIfEmpty: true });
  }
}

/** `loadDataset`'s options for this recipe and these flags. */
function datasetLoadOptions(
  spec: RecipeSpec,
  flags: RecipeFlags,
  io: RecipeIO,
): LoadDatasetOptions {
  return {
    dataDir: flags.dataDir,
    ratio: flags.ratio,
    seed: flags.seed,
    limit: flags.limit,
    imageSize: extraNumber(flags, "image-size"),
    imagenetDir: extraString(flags, "imagenet-dir"),
    ...datasetOptions(spec.dataset, flags),
    context: spec.name,
    log: io.err,
  };
}

/** The recipe's data, prepared (found or downloaded, verified, long-tailed, sharded). */
async function prepareRunData(
  spec: RecipeSpec,
  flags: RecipeFlags,
  io: RecipeIO,
): Promise<DatasetInfo> {
  return await prepareDataset(spec.dataset, datasetLoadOptions(spec, flags, io));
}

/**
 * The recipe's data with its training and test loaders. A batch larger than the training split
 * is a usage error, found from the counts before any shard is written.
 */
async function loadRunData(
  spec: RecipeSpec,
  flags: RecipeFlags,
  io: RecipeIO,
): Promise<LoadedDataset> {
  try {
    return await loadDataset(spec.dataset, {
      ...datasetLoadOptions(spec, flags, io),
      batchSize: flags.batchSize,
      sampler: samplerKind(flags.sampler),
      workers: flags.workers,
      totalEpochs: flags.epochs,
    });
  } catch (e) {
    if (e instanceof DatasetOptionsError && e.option === "batchSize") {
      throw new UsageError(
        `${
          e.message.replace(/^loadDataset: batchSize/, "--batch-size")
            .replace("with limit", "with --limit")
        }; lower it`,
      );
    }
    throw e;
  }
}

/** The recipe's model for these flags and data, built for the data's input shape. */
function buildRunModel(
  spec: RecipeSpec,
  flags: RecipeFlags,
  data: DatasetInfo,
): { model: ClassifierModel; backbone: BackboneSpec } {
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
  return { model, backbone };
}

function outputContext(
  spec: RecipeSpec,
  flags: RecipeFlags,
  data: DatasetInfo,
  config: Record<string, unknown>,
  notes: string[],
): OutputContext {
  return {
    recipe: spec.name,
    title: spec.title,
    ratio: flags.ratio,
    classNames: data.classNames,
    trainCounts: data.trainCounts,
    adapter: adapterText(),
    config,
    notes,
    backbone: runBackbone(spec, flags),
    protocolDifferences: protocolDifferences(spec, flags),
  };
}

/** The loader of the test split, in order. */
function testLoaderFor(flags: RecipeFlags, data: DatasetInfo): Loader {
  return new Loader({
    source: data.testDir,
    sampler: new InstanceSampler(data.testSize, { shuffle: false }),
    batchSize: flags.batchSize,
    augment: data.testAugment,
    seed: flags.seed,
    workers: flags.workers,
  });
}

/** The saved settings a resume is checked against: the checkpoint's, else config.json's. */
function savedSettings(
  config: Record<string, unknown> | undefined,
  info: CheckpointInfo | undefined,
): { recipe?: string; identity: Record<string, unknown>; epochs?: number } | undefined {
  const fromCkpt = info?.config as { recipe?: string; identity?: Record<string, unknown> } | null;
  const identityOf = fromCkpt?.identity ?? (config?.identity as Record<string, unknown>);
  if (!identityOf && !config) return undefined;
  const id = identityOf ?? {};
  const epochs = typeof id.epochs === "number"
    ? id.epochs
    : (config?.flags as { epochs?: number } | undefined)?.epochs;
  return {
    recipe: fromCkpt?.recipe ?? (config?.recipe as string | undefined),
    identity: id,
    epochs,
  };
}

async function train(
  spec: RecipeSpec,
  flags: RecipeFlags,
  target: Awaited<ReturnType<typeof resolveRunTarget>>,
  io: RecipeIO,
): Promise<number> {
  const out = flags.out;
  const hasConfig = await pathExists(join(out, CONFIG_FILE));
  const hasLast = await pathExists(join(out, LAST_CHECKPOINT));
  if ((!flags.resume || target.fork) && (hasConfig || hasLast)) {
    throw new UsageError(
      target.fork
        ? `${out} already holds a run; to start a new run folder from ${target.checkpoint}, ` +
          `choose an empty --out`
        : `${out} already holds a run; pass --resume to continue it, or choose another --out`,
    );
  }
  let info: CheckpointInfo | undefined;
  if (target.checkpoint && await pathExists(target.checkpoint)) {
    try {
      info = await readCheckpointInfo(target.checkpoint); // verifies the data checksum
    } catch (e) {
      const other = join(dirname(target.checkpoint), BEST_CHECKPOINT);
      throw new Error(
        `${(e as Error).message}. Resume from another checkpoint` +
          (other !== target.checkpoint && await pathExists(other) ? ` (--resume ${other})` : "") +
          ", or start the run again in a new folder",
        { cause: e },
      );
    }
  } else if (target.explicit) {
    throw new UsageError(`--resume: no checkpoint at ${target.checkpoint}`);
  }
  const initialEpoch = info?.epoch ?? 0;
  const savedConfig = flags.resume && hasConfig && !target.fork
    ? (await readConfig(out)) as Record<string, unknown>
    : undefined;
  const sp = runSchedule(spec, flags);
  const lr = effectiveLr(spec, flags.lr, flags.batchSize);
  const scheduleNotes: string[] = [];
  const saved = flags.resume ? savedSettings(savedConfig, info) : undefined;
  if (saved) {
    const where = target.checkpoint && info ? target.checkpoint : out;
    if (saved.recipe !== undefined && saved.recipe !== spec.name) {
      throw new UsageError(`${where} holds a ${saved.recipe} run, not ${spec.name}`);
    }
    const diff = settingsDiff(saved.identity, identity(flags, sp));
    if (diff.length) {
      throw new UsageError(
        `--resume: settings differ from the run in ${where}: ${diff.join("; ")}`,
      );
    }
    if (initialEpoch > 0) {
      const change = epochsChange({
        before: {
          epochs: saved.epochs,
          schedule: saved.identity.schedule as ScheduleParams | undefined,
        },
        now: { epochs: flags.epochs, schedule: sp },
        extend: flags.extend === true,
        done: initialEpoch,
        lr,
      });
      if (change.error) throw new UsageError(change.error);
      if (change.note) {
        io.err(`collapse: ${change.note}`);
        scheduleNotes.push(change.note);
      }
    }
  }

  try {
    await initDevice();
  } catch (e) {
    io.err(`collapse: ${(e as Error).message}`);
    return 1;
  }

  const dsSpec = DATASETS[spec.dataset];
  const imageSize = extraNumber(flags, "image-size");
  const loaded = await loadRunData(spec, flags, io);
  const data = loaded.info;
  const trainSize = data.trainSize;
  const testSize = data.testSize;

  const { model, backbone } = buildRunModel(spec, flags, data);
  const schedule = scheduleFromParams(sp, lr);
  const optimizer = makeOptimizer(schedule, flags.weightDecay);
  const loss = makeLoss(flags.loss, spec.drNormRegularizer, {
    trainCounts: data.trainCounts,
    epochs: flags.epochs,
    classifier: flags.classifier,
  });
  const notes = [
    ...spec.notes,
    `lr schedule: ${describeSchedule(sp, lr)}`,
    ...scheduleNotes,
    ...data.notes,
  ];
  if (data.groupings.length > 1) {
    notes.push(
      data.groupings.map((g, i) =>
        `${i === 0 ? "head/medium/tail" : `by ${g.name}`}: ${g.description}`
      )
        .join("; "),
    );
  }
  const pretrained = extraString(flags, "pretrained");
  if (initialEpoch > 0) {
    await loadCheckpoint(target.checkpoint!, model, { optimizer });
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
  if (target.fork && initialEpoch > 0) {
    notes.push(`continued from ${target.checkpoint} (after epoch ${initialEpoch})`);
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
    identity: identity(flags, sp),
    effective: {
      lr,
      lrReference: spec.lrReferenceBatch
        ? `--lr ${flags.lr} for batch ${spec.lrReferenceBatch}, scaled linearly`
        : null,
      schedule: schedule.getConfig(),
      scheduleDescription: describeSchedule(sp, lr),
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
      paperTop1: paperTop1(spec.name, flags.ratio, { backbone: runBackbone(spec, flags) }) ?? null,
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
      groupings: data.groupings,
      stats: data.stats,
      sources: data.sources,
    },
    adapter: adapterInfo(),
    kernels: kernelInfo(),
    versions: versions(),
    notes,
    createdAt: (savedConfig?.createdAt as string | undefined) ?? new Date().toISOString(),
    resumes: [
      ...((savedConfig?.resumes as unknown[] | undefined) ?? []),
      ...(flags.resume
        ? [{
          at: new Date().toISOString(),
          fromEpoch: initialEpoch,
          ...(target.explicit ? { from: target.checkpoint } : {}),
        }]
        : []),
    ],
  };
  const warn = { onWarning: io.err };
  if (target.fork && initialEpoch > 0) {
    // A new folder continuing another run's checkpoint keeps that run's history up to it
    // (0-based epoch indices: the epochs before initialEpoch).
    const source = dirname(target.checkpoint!);
    const history = (await readMetrics(source, warn)).filter((r) =>
      typeof r.epoch === "number" && r.epoch < initialEpoch
    );
    await writeMetrics(out, history);
  }
  // metrics.jsonl holds 0-based epoch indices: keep epochs 0 .. initialEpoch - 1.
  const kept = await truncateMetricsAfterEpoch(out, initialEpoch - 1, warn);
  await writeConfig(out, config);
  const records = (await readMetrics(out, warn)) as EpochRecord[];
  if (flags.resume) {
    io.err(
      initialEpoch > 0
        ? `collapse: resuming ${out} after epoch ${initialEpoch}` +
          (target.explicit ? ` from ${target.checkpoint}` : "") + ` (${kept} metrics lines kept)`
        : `collapse: nothing to resume in ${out}; starting from epoch 1`,
    );
  }

  const outputs = outputContext(spec, flags, data, { ...config, adapter: adapterText() }, notes);
  try {
    // The training loader keeps the last partial batch (the official default).
    const { train, test } = loaded;
    io.err(
      `collapse: ${spec.name}: ${describeBackbone(backbone)}, ${flags.classifier} head, ` +
        `${flags.loss} loss; ${trainSize} train / ${testSize} test images, ${data.numClasses} ` +
        `classes; ${train.batchesPerEpoch()} steps per epoch on ${adapterText()}`,
    );
    if (initialEpoch < flags.epochs) {
      await fit(model, train, {
        epochs: flags.epochs,
        initialEpoch,
        seed: flags.seed,
        mixupAlpha: flags.mixup,
        config: { recipe: spec.name, identity: identity(flags, sp) },
        verbose: Deno.stderr.isTerminal() ? 1 : 0,
        callbacks: [
          new RecipeCallback({ model, test, data, flags, records, outputs, io, neuralCollapse }),
        ],
      });
    }
  } finally {
    loaded.close();
  }
  await writeRunOutputs(out, records, outputs);
  const best = bestRecord(records);
  const paper = paperTop1(spec.name, flags.ratio, { backbone: runBackbone(spec, flags) });
  io.out(
    `done: best top-1 ${best?.top1 !== undefined ? (best.top1 * 100).toFixed(2) : "n/a"}% ` +
      `(epoch ${best ? best.epoch + 1 : "-"})` +
      (paper !== undefined ? `, paper ${paper}%${comparability(outputs)}` : "") +
      `; report: ${out}/report.md`,
  );
  return 0;
}

function comparability(outputs: OutputContext): string {
  const d = outputs.protocolDifferences ?? [];
  return d.length ? ` (not comparable: ${differingFlags(d)} differ)` : "";
}

/** Entry point of a recipe file: runs it with `Deno.args` and exits with its code. */
export async function main(spec: RecipeSpec): Promise<never> {
  const code = await runRecipe(spec, Deno.args);
  Deno.exit(code);
}
