/**
 * `--resume [PATH]`: which checkpoint a run continues from and which folder it writes, and
 * whether the settings it resumes with match those the checkpoint was trained with. `--epochs`
 * may only change with `--extend` (longer only), which says how the learning-rate schedule
 * changes.
 *
 * @module
 */

// deno-lint-ignore no-import-prefix -- library code uses full specifiers (importable by URL)
import { dirname } from "jsr:@std/path@^1/dirname";
// deno-lint-ignore no-import-prefix -- library code uses full specifiers (importable by URL)
import { join } from "jsr:@std/path@^1/join";
// deno-lint-ignore no-import-prefix -- library code uses full specifiers (importable by URL)
import { resolve } from "jsr:@std/path@^1/resolve";
import { UsageError } from "./errors.ts";
import type { RecipeFlags } from "./flags.ts";
import { describeSchedule, type ScheduleParams } from "./recipe_specs.ts";

/** File name of a run's latest checkpoint. */
export const LAST_CHECKPOINT = "last.safetensors";

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
