/**
 * The table of flags every recipe shares: one row per flag (name, key in
 * {@linkcode RecipeFlags}, argument, help, value parser), and the value parsers with their
 * messages.
 *
 * @module
 */
import { LOSS_FLAGS, type RecipeFlags } from "./flag_types.ts";

/** A flag value parser: the typed value, or the reason it is invalid (phrased after "--flag "). */
export type ValueParser = (raw: string) => { value: unknown } | { error: string };

export type SharedKey = Exclude<keyof RecipeFlags, "extra">;

/** One shared flag. */
export interface FlagSpec {
  flag: string;
  /** Where the value goes; null for `--config`, which the parser consumes itself. */
  key: SharedKey | null;
  /** Argument shown in the usage; "" for a boolean flag, "[PATH]" style for an optional value. */
  arg: string;
  help: string;
  kind: "value" | "boolean" | "optional";
  parse?: ValueParser;
  /** The default in words, where it is not a plain value. */
  defaultText?: string;
  /** A per-invocation action, not a setting: never read from `--config`, not printed. */
  action?: boolean;
}

const NUMBER_RE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** A decimal number (no hex, no trailing text), or why `raw` is not one. */
export function asNumber(raw: string): { value: number } | { error: string } {
  if (!NUMBER_RE.test(raw)) return { error: `must be a number, got "${raw}"` };
  return { value: Number(raw) };
}

/** A number with a check on its range; `what` says the range in words (e.g. "> 0"). */
function number(ok: (v: number) => boolean, what: string): ValueParser {
  return (raw) => {
    const r = asNumber(raw);
    if ("error" in r) return r;
    return Number.isFinite(r.value) && ok(r.value) ? r : { error: `must be ${what}, got ${raw}` };
  };
}

/** An integer >= `min` (no bound when undefined). */
function integer(min?: number): ValueParser {
  return (raw) => {
    const r = asNumber(raw);
    if ("error" in r) return r;
    if (!Number.isSafeInteger(r.value)) return { error: `must be an integer, got "${raw}"` };
    if (min !== undefined && r.value < min) return { error: `must be >= ${min}, got ${r.value}` };
    return r;
  };
}

/** A comma-separated list of integers >= `min`, strictly increasing; "none" is the empty list. */
function integerList(min: number): ValueParser {
  return (raw) => {
    if (raw.trim() === "none") return { value: [] };
    const parts = raw.split(",").map((s) => s.trim());
    const one = integer(min);
    const out: number[] = [];
    for (const p of parts) {
      const r = one(p);
      if ("error" in r) {
        return { error: `must be a comma list of integers >= ${min} (or none), got "${raw}"` };
      }
      out.push(r.value as number);
    }
    for (let i = 1; i < out.length; i++) {
      if (out[i] <= out[i - 1]) {
        return { error: `must be strictly increasing, got "${raw}"` };
      }
    }
    return { value: out };
  };
}

function choice(choices: readonly string[], map: (s: string) => unknown = (s) => s): ValueParser {
  return (raw) =>
    choices.includes(raw)
      ? { value: map(raw) }
      : { error: `must be one of ${choices.join(", ")}; got "${raw}"` };
}

const text: ValueParser = (raw) => ({ value: raw });

/** Every flag the recipes share, in the usage text's order. */
export const SHARED_FLAGS: readonly FlagSpec[] = [
  {
    flag: "data-dir",
    key: "dataDir",
    arg: "DIR",
    help: "folder with the dataset archives/shards",
    kind: "value",
    parse: text,
  },
  {
    flag: "out",
    key: "out",
    arg: "DIR",
    help: "output folder of the run",
    kind: "value",
    parse: text,
  },
  {
    flag: "ratio",
    key: "ratio",
    arg: "R",
    help: "imbalance ratio n_min/n_max, in (0, 1]",
    kind: "value",
    parse: number((v) => v > 0 && v <= 1, "in (0, 1]"),
  },
  {
    flag: "epochs",
    key: "epochs",
    arg: "N",
    help: "training epochs (int >= 1)",
    kind: "value",
    parse: integer(1),
  },
  {
    flag: "warmup-epochs",
    key: "warmupEpochs",
    arg: "N",
    help: "epochs of linear lr warmup (int >= 0; 0 = none)",
    kind: "value",
    parse: integer(0),
    defaultText: "from --epochs, see Schedule",
  },
  {
    flag: "milestones",
    key: "milestones",
    arg: "E1,E2,...",
    help: "epochs after which the lr is multiplied by 0.1 (increasing; none = no decay)",
    kind: "value",
    parse: integerList(1),
    defaultText: "from --epochs, see Schedule",
  },
  {
    flag: "batch-size",
    key: "batchSize",
    arg: "N",
    help: "batch size (int >= 1)",
    kind: "value",
    parse: integer(1),
  },
  {
    flag: "lr",
    key: "lr",
    arg: "X",
    help: "peak learning rate (> 0)",
    kind: "value",
    parse: number((v) => v > 0, "> 0"),
  },
  {
    flag: "weight-decay",
    key: "weightDecay",
    arg: "X",
    help: "weight decay (>= 0)",
    kind: "value",
    parse: number((v) => v >= 0, ">= 0"),
  },
  {
    flag: "classifier",
    key: "classifier",
    arg: "etf|learnable",
    help: "classifier head",
    kind: "value",
    parse: choice(["etf", "learnable"]),
  },
  {
    flag: "loss",
    key: "loss",
    arg: LOSS_FLAGS.join("|"),
    help: "dot-regression, cross-entropy, CE with balanced class weights, balanced softmax, " +
      "LDAM + deferred re-weighting",
    kind: "value",
    parse: choice(LOSS_FLAGS),
  },
  {
    flag: "mixup",
    key: "mixup",
    arg: "ALPHA",
    help: "mixup alpha (>= 0; 0 = off)",
    kind: "value",
    parse: number((v) => v >= 0, ">= 0"),
  },
  {
    flag: "sampler",
    key: "sampler",
    arg: "instance|class-balanced|sqrt|progressive",
    help: "batch sampler",
    kind: "value",
    parse: choice(["instance", "class-balanced", "sqrt", "progressive"]),
  },
  {
    flag: "seed",
    key: "seed",
    arg: "N",
    help: "random seed (int)",
    kind: "value",
    parse: integer(),
  },
  {
    flag: "eval-every",
    key: "evalEvery",
    arg: "N",
    help: "evaluate every N epochs (int >= 1)",
    kind: "value",
    parse: integer(1),
  },
  {
    flag: "limit",
    key: "limit",
    arg: "N",
    help: "cap images per split (int >= 1)",
    kind: "value",
    parse: integer(1),
  },
  {
    flag: "workers",
    key: "workers",
    arg: "0|1",
    help: "data-loading workers",
    kind: "value",
    parse: choice(["0", "1"], Number),
  },
  {
    flag: "resume",
    key: "resume",
    arg: "[PATH]",
    help: "continue a run: from --out's last.safetensors, or from PATH (a checkpoint or a run " +
      "folder; the run continues in the folder holding it unless --out names another)",
    kind: "optional",
    action: true,
  },
  {
    flag: "extend",
    key: "extend",
    arg: "",
    help: "with --resume: allow a larger --epochs than the run started with (the schedule is " +
      "recomputed for the new length; the log says how it changes)",
    kind: "boolean",
    action: true,
  },
  {
    flag: "eval-only",
    key: "evalOnly",
    arg: "CHECKPOINT",
    help: "evaluate CHECKPOINT on the test split and write its report (into --out if given, " +
      "else eval-<name>/ beside the checkpoint); no training",
    kind: "value",
    parse: text,
    action: true,
  },
  {
    flag: "config",
    key: null,
    arg: "FILE",
    help: "read settings from a JSON file (a run's config.json or --print-config output); " +
      "flags on the command line override it",
    kind: "value",
    action: true,
  },
  {
    flag: "print-config",
    key: "printConfig",
    arg: "",
    help: "print the resolved settings as JSON and exit",
    kind: "boolean",
    action: true,
  },
];
