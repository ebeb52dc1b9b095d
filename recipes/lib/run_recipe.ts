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
 * The parts: the data (./run_data.ts), the model, loss and optimizer (./training_setup.ts), what
 * a resume continues from (./resume.ts), config.json and the report's context (./run_config.ts),
 * and what happens after each epoch (./epoch_callback.ts).
 *
 * Exit codes: 0 success (and `--help`), 1 failure (no data, no adapter, training error), 2 usage
 * error (nothing written).
 *
 * @module
 */

import { initDevice } from "../../gpu/device.ts";
import "../../gpu/ops/mod.ts"; // plugs the ops autograd's backward needs
import { dataDir as defaultDataDir } from "../../data/download.ts";
import { type DatasetInfo, DATASETS, DataUnavailableError } from "../../data/datasets/mod.ts";
import { loadCheckpoint } from "../../nn/checkpoint.ts";
import { fit } from "../../nn/training/fit.ts";
import { compile } from "../../nn/training/state.ts";
// deno-lint-ignore no-import-prefix -- library code uses full specifiers (importable by URL)
import { dirname } from "jsr:@std/path@^1/dirname";
// deno-lint-ignore no-import-prefix -- library code uses full specifiers (importable by URL)
import { join } from "jsr:@std/path@^1/join";
import { EpochCallback, ncAffordable } from "./epoch_callback.ts";
import { runEvalOnly } from "./eval_only.ts";
import { UsageError } from "./errors.ts";
import {
  extraNumber,
  extraString,
  parseRecipeFlags,
  type RecipeFlags,
  recipeUsage,
  settingsOf,
} from "./flags.ts";
import { differingFlags, paperTop1, runBackbone } from "./paper_results.ts";
import {
  backboneFlagErrors,
  describeSchedule,
  effectiveLr,
  type RecipeSpec,
  scheduleHelp,
  type ScheduleParams,
  scheduleParams,
  scheduleProblems,
} from "./recipe_specs.ts";
import { resolveRunTarget, resumeState, runIdentity, type RunTarget } from "./resume.ts";
import { reportContext, runConfig } from "./run_config.ts";
import { loadRunData } from "./run_data.ts";
import {
  CONFIG_FILE,
  readConfig,
  readMetrics,
  truncateMetricsAfterEpoch,
  writeConfig,
  writeMetrics,
} from "./run_dir.ts";
import { adapterText } from "./run_environment.ts";
import { lockRunFolder } from "./run_lock.ts";
import {
  bestRecord,
  type EpochRecord,
  type OutputContext,
  writeRunOutputs,
} from "./run_outputs.ts";
import {
  buildRunModel,
  describeBackbone,
  loadPretrained,
  makeLoss,
  makeOptimizer,
  scheduleFromParams,
} from "./training_setup.ts";

/** Where a run prints (tests capture it). */
export interface RecipeIO {
  out(line: string): void;
  err(line: string): void;
}

const CONSOLE_IO: RecipeIO = {
  out: (l) => console.log(l),
  err: (l) => console.error(l),
};

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
      ? await runEvalOnly({ spec, flags, given, io })
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

async function run(
  spec: RecipeSpec,
  cliFlags: RecipeFlags,
  given: readonly string[],
  io: RecipeIO,
): Promise<number> {
  const target = await resolveRunTarget(cliFlags, given);
  const flags: RecipeFlags = { ...cliFlags, out: target.out };
  const lock = await lockRunFolder(target.out, `${spec.name} training`, io.err);
  try {
    return await train(spec, flags, target, io);
  } finally {
    await lock.release({ removeDirIfEmpty: true });
  }
}

/**
 * Trains in the locked folder `flags.out`: checks what the run continues from, prepares the data
 * and the model, writes config.json, then runs `fit` with the per-epoch callback, and prints the
 * best top-1 against the paper's.
 */
async function train(
  spec: RecipeSpec,
  flags: RecipeFlags,
  target: RunTarget,
  io: RecipeIO,
): Promise<number> {
  const out = flags.out;
  const sp = runSchedule(spec, flags);
  const lr = effectiveLr(spec, flags.lr, flags.batchSize);
  const resume = await resumeState(spec.name, flags, target, sp, lr, io.err);
  const { initialEpoch } = resume;

  try {
    await initDevice();
  } catch (e) {
    io.err(`collapse: ${(e as Error).message}`);
    return 1;
  }

  const loaded = await loadRunData(spec, flags, io.err);
  const data = loaded.info;
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
    ...resume.notes,
    ...data.notes,
    ...groupingNotes(data.groupings),
  ];
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
  const imageSize = extraNumber(flags, "image-size");
  if (imageSize !== undefined && imageSize !== DATASETS[spec.dataset].imageSize) {
    notes.push(
      `images at ${imageSize}x${imageSize} instead of ${DATASETS[spec.dataset].imageSize} ` +
        `(--image-size)`,
    );
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

  const config = runConfig({
    spec,
    flags,
    scheduleParams: sp,
    lr,
    schedule,
    optimizer,
    loss,
    backbone,
    model,
    neuralCollapse,
    data,
    notes,
    target,
    resume,
  });
  const kept = await keepMetricsBefore(out, target, initialEpoch, io.err);
  await writeConfig(out, config);
  const records = (await readMetrics(out, { onWarning: io.err })) as EpochRecord[];
  if (flags.resume) {
    io.err(
      initialEpoch > 0
        ? `collapse: resuming ${out} after epoch ${initialEpoch}` +
          (target.explicit ? ` from ${target.checkpoint}` : "") + ` (${kept} metrics lines kept)`
        : `collapse: nothing to resume in ${out}; starting from epoch 1`,
    );
  }

  const outputs = reportContext(spec, flags, data, config, notes);
  try {
    // The training loader keeps the last partial batch (the official default).
    const { train, test } = loaded;
    io.err(
      `collapse: ${spec.name}: ${describeBackbone(backbone)}, ${flags.classifier} head, ` +
        `${flags.loss} loss; ${data.trainSize} train / ${data.testSize} test images, ` +
        `${data.numClasses} classes; ${train.batchesPerEpoch()} steps per epoch on ` +
        adapterText(),
    );
    if (initialEpoch < flags.epochs) {
      await fit(model, train, {
        epochs: flags.epochs,
        initialEpoch,
        seed: flags.seed,
        mixupAlpha: flags.mixup,
        config: { recipe: spec.name, identity: runIdentity(flags, sp) },
        verbose: Deno.stderr.isTerminal() ? 1 : 0,
        callbacks: [
          new EpochCallback({
            model,
            test,
            data,
            flags,
            records,
            outputs,
            print: io.out,
            neuralCollapse,
          }),
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

/** One note naming the class groupings when the data has more than head/medium/tail. */
function groupingNotes(groupings: DatasetInfo["groupings"]): string[] {
  if (groupings.length <= 1) return [];
  return [
    groupings.map((g, i) => `${i === 0 ? "head/medium/tail" : `by ${g.name}`}: ${g.description}`)
      .join("; "),
  ];
}

/**
 * Makes the run's metrics.jsonl hold the epochs before `initialEpoch` only, and returns how many
 * lines it kept: a run started from another folder's checkpoint takes that run's history up to
 * the checkpoint; a resumed run drops the lines after its checkpoint's epoch (0-based epoch
 * indices: it keeps 0 .. initialEpoch - 1).
 */
async function keepMetricsBefore(
  out: string,
  target: RunTarget,
  initialEpoch: number,
  log: (line: string) => void,
): Promise<number> {
  const warn = { onWarning: log };
  if (target.fork && initialEpoch > 0) {
    const source = dirname(target.checkpoint!);
    const history = (await readMetrics(source, warn)).filter((r) =>
      typeof r.epoch === "number" && r.epoch < initialEpoch
    );
    await writeMetrics(out, history);
  }
  return await truncateMetricsAfterEpoch(out, initialEpoch - 1, warn);
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
