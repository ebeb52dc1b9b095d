/**
 * `--eval-only CHECKPOINT`: evaluate a checkpoint on the recipe's test split without training and
 * write a run folder for it (config.json with `evalOnly`, one metrics line, report.md, plots) —
 * by default `eval-<checkpoint name>/` beside the checkpoint, or `--out`. The model is rebuilt
 * with the settings the checkpoint was trained with (those saved in it), except where a flag says
 * otherwise.
 *
 * @module
 */

// deno-lint-ignore no-import-prefix -- library code uses full specifiers (importable by URL)
import { basename } from "jsr:@std/path@^1/basename";
// deno-lint-ignore no-import-prefix -- library code uses full specifiers (importable by URL)
import { dirname } from "jsr:@std/path@^1/dirname";
// deno-lint-ignore no-import-prefix -- library code uses full specifiers (importable by URL)
import { join } from "jsr:@std/path@^1/join";
import { pathExists } from "../../data/path_exists.ts";
import { initDevice } from "../../gpu/device.ts";
import { loadCheckpoint, readCheckpointInfo } from "../../nn/checkpoint.ts";
import { ConstantSchedule } from "../../nn/schedules.ts";
import { compile } from "../../nn/training/state.ts";
import { ncAffordable, testRecord } from "./epoch_callback.ts";
import { UsageError } from "./errors.ts";
import type { RecipeFlags } from "./flags.ts";
import type { RecipeSpec } from "./recipe_specs.ts";
import { CONFIG_FILE, readConfig, writeConfig, writeMetrics } from "./run_dir.ts";
import { BEST_CHECKPOINT, LAST_CHECKPOINT } from "./resume.ts";
import { reportContext } from "./run_config.ts";
import { prepareRunData, testSource } from "./run_data.ts";
import { adapterInfo, versions } from "./run_environment.ts";
import { lockRunFolder } from "./run_lock.ts";
import { type EpochRecord, writeRunOutputs } from "./run_outputs.ts";
import { buildRunModel, makeLoss, makeOptimizer } from "./training_setup.ts";

/** An evaluation-only run: the recipe, its flags and where it prints. */
export interface EvalOnlyContext {
  spec: RecipeSpec;
  flags: RecipeFlags;
  /** Flags given on the command line (or in `--config`); the others come from the checkpoint. */
  given: readonly string[];
  io: { out(line: string): void; err(line: string): void };
}

/** The checkpoint a `--eval-only` path names: a file, or a run folder's best (else last). */
async function checkpointPath(path: string): Promise<string> {
  let stat: Deno.FileInfo;
  try {
    stat = await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UsageError(`--eval-only ${path}: no such checkpoint or run folder`);
    }
    throw e;
  }
  if (!stat.isDirectory) return path;
  for (const name of [BEST_CHECKPOINT, LAST_CHECKPOINT]) {
    if (await pathExists(join(path, name))) return join(path, name);
  }
  throw new UsageError(
    `--eval-only ${path}: the folder holds no ${BEST_CHECKPOINT} or ${LAST_CHECKPOINT}`,
  );
}

/** `flags` with the settings saved in the checkpoint wherever no flag was given. */
function withCheckpointSettings(
  flags: RecipeFlags,
  given: readonly string[],
  identity: Record<string, unknown> | undefined,
): RecipeFlags {
  if (!identity) return flags;
  const out: RecipeFlags = { ...flags, extra: { ...flags.extra } };
  const set = out as unknown as Record<string, unknown>;
  const keys = ["ratio", "batchSize", "classifier", "loss", "seed", "limit"];
  for (const k of keys) {
    if (given.includes(k) || !(k in identity)) continue;
    if (identity[k] === null) delete set[k];
    else set[k] = identity[k];
  }
  for (const [k, v] of Object.entries(identity)) {
    if (!k.startsWith("extra.")) continue;
    const name = k.slice("extra.".length);
    if (given.includes(k) || !(name in out.extra)) continue;
    out.extra[name] = (v ?? undefined) as string | number | boolean | undefined;
  }
  return out;
}

/** Runs `--eval-only`: returns the exit code. */
export async function runEvalOnly(c: EvalOnlyContext): Promise<number> {
  const { spec, io } = c;
  const ckpt = await checkpointPath(c.flags.evalOnly!);
  const info = await readCheckpointInfo(ckpt); // verifies the data checksum
  const saved = info.config as { recipe?: string; identity?: Record<string, unknown> } | null;
  if (saved?.recipe !== undefined && saved.recipe !== spec.name) {
    throw new UsageError(`${ckpt} is a ${saved.recipe} checkpoint, not ${spec.name}`);
  }
  const flags = withCheckpointSettings(c.flags, c.given, saved?.identity);
  const out = c.given.includes("out")
    ? c.flags.out
    : join(dirname(ckpt), `eval-${basename(ckpt).replace(/\.safetensors$/, "")}`);
  flags.out = out;
  const existing = await readConfig(out).catch(() => undefined) as
    | Record<string, unknown>
    | undefined;
  if (existing && existing.evalOnly === undefined) {
    throw new UsageError(
      `${out} holds a training run (${CONFIG_FILE}); --eval-only writes its report elsewhere: ` +
        `choose another --out`,
    );
  }
  const lock = await lockRunFolder(out, `${spec.name} evaluation`, io.err);
  try {
    try {
      await initDevice();
    } catch (e) {
      io.err(`collapse: ${(e as Error).message}`);
      return 1;
    }
    const data = await prepareRunData(spec, flags, io.err);
    const { model } = buildRunModel(spec, flags, data);
    await loadCheckpoint(ckpt, model);
    compile(model, {
      optimizer: makeOptimizer(new ConstantSchedule(flags.lr), 0),
      loss: makeLoss(flags.loss, spec.drNormRegularizer, {
        trainCounts: data.trainCounts,
        epochs: flags.epochs,
        classifier: flags.classifier,
      }),
    });
    const neuralCollapse = ncAffordable(data.testCounts, model.head?.inFeatures ?? 0);
    const test = await testSource(flags, data);
    let fields: Partial<EpochRecord>;
    try {
      fields = await testRecord(model, test.source, data, neuralCollapse);
    } finally {
      test.close();
    }
    // The 0-based index of the checkpoint's last trained epoch (metrics.jsonl's convention).
    const record = { epoch: info.epoch - 1, ...fields } as EpochRecord;
    const notes = [
      ...spec.notes,
      `evaluation only: ${ckpt} (after ${info.epoch} training epochs); no training in this folder`,
    ];
    if (flags.limit !== undefined) {
      notes.push(`quick run: at most ${flags.limit} images per split (--limit)`);
    }
    const config: Record<string, unknown> = {
      recipe: spec.name,
      dataset: spec.title,
      evalOnly: { checkpoint: ckpt, epoch: info.epoch },
      flags: { ...flags },
      identity: saved?.identity ?? null,
      data: {
        key: data.key,
        dir: data.dir,
        numClasses: data.numClasses,
        trainCounts: data.trainCounts,
        testCounts: data.testCounts,
        inputShape: data.inputShape,
        groups: data.groups,
      },
      adapter: adapterInfo(),
      versions: versions(),
      notes,
      createdAt: new Date().toISOString(),
    };
    await writeConfig(out, config);
    await writeMetrics(out, [record]);
    await writeRunOutputs(out, [record], reportContext(spec, flags, data, config, notes));
    const pct = (v: number | undefined) => v === undefined ? "n/a" : (v * 100).toFixed(2);
    io.out(
      `eval: top-1 ${pct(record.top1)}% (head ${pct(record.head)} / medium ` +
        `${pct(record.medium)} / tail ${pct(record.tail)}), test loss ` +
        `${record.test_loss?.toFixed(4) ?? "n/a"}; ${ckpt} (epoch ${info.epoch}); report: ` +
        `${out}/report.md`,
    );
    return 0;
  } finally {
    await lock.release({ removeDirIfEmpty: true });
  }
}
