/**
 * `--resume [PATH]`: which checkpoint a run continues from and which folder it writes, and
 * whether the settings it resumes with match those the checkpoint was trained with (the run's
 * identity, saved in config.json and in every checkpoint). `--epochs` may only change with
 * `--extend` (longer only), which says how the learning-rate schedule changes.
 *
 * @module
 */

// deno-lint-ignore no-import-prefix -- library code uses full specifiers (importable by URL)
import { dirname } from "jsr:@std/path@^1/dirname";
// deno-lint-ignore no-import-prefix -- library code uses full specifiers (importable by URL)
import { join } from "jsr:@std/path@^1/join";
// deno-lint-ignore no-import-prefix -- library code uses full specifiers (importable by URL)
import { resolve } from "jsr:@std/path@^1/resolve";
import { pathExists } from "../../data/path_exists.ts";
import { type CheckpointInfo, readCheckpointInfo } from "../../nn/checkpoint.ts";
import { UsageError } from "./errors.ts";
import type { RecipeFlags } from "./flags.ts";
import { describeSchedule, type ScheduleParams } from "./recipe_specs.ts";
import { CONFIG_FILE, readConfig } from "./run_dir.ts";

/** File name of a run's latest checkpoint. */
export const LAST_CHECKPOINT = "last.safetensors";
/** File name of the best checkpoint (highest test top-1) in the run folder. */
export const BEST_CHECKPOINT = "best.safetensors";

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

/**
 * The settings a resumed run must share with the checkpoint it continues (saved in config.json
 * and in every checkpoint): the identity keys, the extras, the epochs and the schedule.
 */
export function runIdentity(
  flags: RecipeFlags,
  schedule: ScheduleParams,
): Record<string, unknown> {
  const id: Record<string, unknown> = {};
  for (const k of IDENTITY_KEYS) id[k] = flags[k] ?? null;
  for (const [k, v] of Object.entries(flags.extra)) id[`extra.${k}`] = v ?? null;
  id.epochs = flags.epochs;
  id.schedule = schedule;
  return id;
}

/** Where a run reads its checkpoint from and where it writes. */
export interface RunTarget {
  /** The run folder written. */
  out: string;
  /** The checkpoint to resume from (undefined: a fresh run). */
  checkpoint?: string;
  /** `--resume PATH` named a checkpoint or folder outside `out`: a new run folder starts from it. */
  fork: boolean;
  /** The checkpoint was named explicitly (`--resume PATH`), so it must exist. */
  explicit: boolean;
}

/**
 * Resolves `--resume [PATH]` and `--out`: no PATH continues `--out` from its last checkpoint;
 * PATH a folder continues that folder from its last checkpoint; PATH a file continues from that
 * checkpoint in the folder holding it. An explicit `--out` (in `given`) elsewhere writes a new
 * run folder there instead.
 */
export async function resolveRunTarget(
  flags: RecipeFlags,
  given: readonly string[],
): Promise<RunTarget> {
  if (!flags.resume) return { out: flags.out, fork: false, explicit: false };
  if (flags.resumeFrom === undefined) {
    return {
      out: flags.out,
      checkpoint: join(flags.out, LAST_CHECKPOINT),
      fork: false,
      explicit: false,
    };
  }
  const path = flags.resumeFrom;
  let stat: Deno.FileInfo;
  try {
    stat = await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UsageError(`--resume ${path}: no such checkpoint or run folder`);
    }
    throw e;
  }
  const folder = stat.isDirectory ? path : dirname(path);
  const checkpoint = stat.isDirectory ? join(path, LAST_CHECKPOINT) : path;
  const out = given.includes("out") ? flags.out : folder;
  return { out, checkpoint, fork: resolve(out) !== resolve(folder), explicit: true };
}

/** Identity keys compared by {@linkcode settingsDiff} separately from the epochs check. */
const SCHEDULE_KEYS = new Set(["epochs", "schedule"]);

/**
 * The settings that differ between a run's saved identity and the current one, in words
 * ("lr was 0.1, now 0.05"). Keys missing from `before` (runs written by older versions) are not
 * compared; epochs and the schedule are left to {@linkcode epochsChange}.
 */
export function settingsDiff(
  before: Record<string, unknown>,
  now: Record<string, unknown>,
): string[] {
  return Object.keys(now)
    .filter((k) => !SCHEDULE_KEYS.has(k) && k in before)
    .filter((k) => JSON.stringify(before[k] ?? null) !== JSON.stringify(now[k] ?? null))
    .map((k) => `${k} was ${JSON.stringify(before[k] ?? null)}, now ${JSON.stringify(now[k])}`);
}

/** What {@linkcode epochsChange} compares. */
export interface EpochsChangeInput {
  /** The saved run's epochs and schedule (either may be unknown for older runs). */
  before: { epochs?: number; schedule?: ScheduleParams };
  /** The resumed run's. */
  now: { epochs: number; schedule: ScheduleParams };
  /** `--extend` was given. */
  extend: boolean;
  /** Epochs the checkpoint has completed. */
  done: number;
  /** Peak learning rate (for the description). */
  lr: number;
}

/**
 * Checks a resume's `--epochs` and schedule against the saved run's: the same is fine; a change
 * needs `--extend` and a longer run, and then comes with a note saying how the schedule changes.
 */
export function epochsChange(c: EpochsChangeInput): { error?: string; note?: string } {
  const { before, now, done } = c;
  const sameEpochs = before.epochs === undefined || before.epochs === now.epochs;
  const sameSchedule = before.schedule === undefined ||
    JSON.stringify(before.schedule) === JSON.stringify(now.schedule);
  if (sameEpochs && sameSchedule) return {};
  const was = before.schedule ? describeSchedule(before.schedule, c.lr) : "unknown";
  const will = describeSchedule(now.schedule, c.lr);
  const change = sameEpochs
    ? `the lr schedule was "${was}", now "${will}"`
    : `--epochs was ${before.epochs}, now ${now.epochs}: the lr schedule changes from "${was}" ` +
      `to "${will}"`;
  if (!c.extend) {
    return {
      error: `--resume: ${change}. Pass --extend to continue with the new schedule` +
        (before.epochs !== undefined ? `, or resume with --epochs ${before.epochs}` : ""),
    };
  }
  if (before.epochs !== undefined && now.epochs < before.epochs) {
    return {
      error: `--extend lengthens a run: --epochs ${now.epochs} is less than the run's ` +
        `${before.epochs}`,
    };
  }
  if (now.epochs <= done) {
    return {
      error: `--extend: the checkpoint has already completed ${done} epochs; ask for more ` +
        `than that with --epochs`,
    };
  }
  return {
    note: `--extend: ${change}; epochs 1-${done} ran under the old schedule, epochs ` +
      `${done + 1}-${now.epochs} run under the new one`,
  };
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

/** What a run starts from, read by {@linkcode resumeState}. */
export interface ResumeState {
  /** The checkpoint's header (its data checksum verified); undefined for a fresh run. */
  info?: CheckpointInfo;
  /** Epochs the checkpoint has completed (0: a fresh run). */
  initialEpoch: number;
  /** The run folder's config.json, when the run continues in its own folder. */
  savedConfig?: Record<string, unknown>;
  /** What changed in the schedule (`--extend`), for the report. */
  notes: string[];
}

/**
 * Checks that a run of `recipe` may write `target.out` and reads what it continues from: a fresh
 * run (or one started from another folder's checkpoint) needs a folder without a run; a resume
 * needs a readable checkpoint made by the same recipe with the same identity settings, and an
 * `--epochs` change only with `--extend`. Usage problems throw {@link UsageError}; `log` prints
 * the schedule change that `--extend` makes.
 */
export async function resumeState(
  recipe: string,
  flags: RecipeFlags,
  target: RunTarget,
  schedule: ScheduleParams,
  lr: number,
  log: (line: string) => void,
): Promise<ResumeState> {
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
  const notes: string[] = [];
  const saved = flags.resume ? savedSettings(savedConfig, info) : undefined;
  if (saved) {
    const where = target.checkpoint && info ? target.checkpoint : out;
    if (saved.recipe !== undefined && saved.recipe !== recipe) {
      throw new UsageError(`${where} holds a ${saved.recipe} run, not ${recipe}`);
    }
    const diff = settingsDiff(saved.identity, runIdentity(flags, schedule));
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
        now: { epochs: flags.epochs, schedule },
        extend: flags.extend === true,
        done: initialEpoch,
        lr,
      });
      if (change.error) throw new UsageError(change.error);
      if (change.note) {
        log(`collapse: ${change.note}`);
        notes.push(change.note);
      }
    }
  }
  return { info, initialEpoch, savedConfig, notes };
}
