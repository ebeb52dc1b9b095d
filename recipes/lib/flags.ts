/**
 * Command-line flags shared by every recipe (`recipes/*.ts`): one parser, one usage text, strict
 * validation. {@linkcode parseRecipeFlags} is pure: it returns the flags or a message and an exit
 * code, and the recipe prints and exits.
 *
 * @module
 */

// deno-lint-ignore no-import-prefix -- library code uses full specifiers (importable by URL)
import { parseArgs } from "jsr:@std/cli@^1.0.32/parse-args";

/** Classifier head: the fixed simplex ETF or a learnable Dense layer. */
export type ClassifierFlag = "etf" | "learnable";
/**
 * Loss: dot-regression, softmax cross-entropy, or a long-tail baseline: cross-entropy with
 * "balanced" class weights, balanced softmax, LDAM with deferred re-weighting.
 */
export type LossFlag = "dr" | "ce" | "ce-weighted" | "balanced-softmax" | "ldam-drw";

/** Every {@linkcode LossFlag}, as spelled on the command line. */
export const LOSS_FLAGS: readonly LossFlag[] = [
  "dr",
  "ce",
  "ce-weighted",
  "balanced-softmax",
  "ldam-drw",
];
/** Batch sampler, as spelled on the command line. */
export type SamplerFlag = "instance" | "class-balanced" | "sqrt" | "progressive";

/** Every recipe's settings, after parsing. */
export interface RecipeFlags {
  /** Folder with the downloaded archives / shards. */
  dataDir: string;
  /** Output folder of the run (config, metrics, checkpoints, plots, report). */
  out: string;
  /** Long-tail imbalance ratio r = n_min / n_max, in (0, 1]. */
  ratio: number;
  epochs: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
  classifier: ClassifierFlag;
  loss: LossFlag;
  /** Mixup alpha; 0 turns mixup off. */
  mixup: number;
  sampler: SamplerFlag;
  seed: number;
  /** Resume from the last checkpoint in `out`. */
  resume: boolean;
  /** Evaluate on the test set every this many epochs (and always at the last). */
  evalEvery: number;
  /** Cap on images per split (for quick runs); undefined = all. */
  limit?: number;
  /** Data-loading workers: 0 = in the main thread, 1 = one prefetching worker. */
  workers: 0 | 1;
  /** Recipe-specific extra flags, by name (see {@linkcode ExtraFlag}). */
  extra: Record<string, string | number | boolean | undefined>;
}

/** A recipe's defaults: every flag's value when it is not given. */
export type RecipeDefaults = Omit<RecipeFlags, "extra">;

/** A recipe-specific flag beyond the shared set (e.g. `cub.ts --pretrained FILE`). */
export interface ExtraFlag {
  /** Flag name without dashes, kebab-case (e.g. `"pretrained"`). */
  name: string;
  type: "string" | "number" | "boolean";
  /** One line for the usage text. */
  help: string;
  default?: string | number | boolean;
  /** A string flag's allowed values (others are refused like a bad value). */
  choices?: readonly string[];
}

/** Optional parts of the usage text and recipe-specific flags. */
export interface RecipeCliOptions {
  /** One paragraph shown under the usage line. */
  description?: string;
  extra?: ExtraFlag[];
}

/** The outcome of {@linkcode parseRecipeFlags}. */
export type ParseResult =
  | { ok: true; flags: RecipeFlags }
  | { ok: false; message: string; exitCode: 0 | 2 };

interface FlagSpec {
  flag: string;
  key: keyof RecipeDefaults;
  arg: string;
  help: string;
}

const SHARED: FlagSpec[] = [
  { flag: "data-dir", key: "dataDir", arg: "DIR", help: "folder with the dataset archives/shards" },
  { flag: "out", key: "out", arg: "DIR", help: "output folder of the run" },
  { flag: "ratio", key: "ratio", arg: "R", help: "imbalance ratio n_min/n_max, in (0, 1]" },
  { flag: "epochs", key: "epochs", arg: "N", help: "training epochs (int >= 1)" },
  { flag: "batch-size", key: "batchSize", arg: "N", help: "batch size (int >= 1)" },
  { flag: "lr", key: "lr", arg: "X", help: "peak learning rate (> 0)" },
  { flag: "weight-decay", key: "weightDecay", arg: "X", help: "weight decay (>= 0)" },
  { flag: "classifier", key: "classifier", arg: "etf|learnable", help: "classifier head" },
  {
    flag: "loss",
    key: "loss",
    arg: LOSS_FLAGS.join("|"),
    help: "dot-regression, cross-entropy, CE with balanced class weights, balanced softmax, " +
      "LDAM + deferred re-weighting",
  },
  { flag: "mixup", key: "mixup", arg: "ALPHA", help: "mixup alpha (>= 0; 0 = off)" },
  {
    flag: "sampler",
    key: "sampler",
    arg: "instance|class-balanced|sqrt|progressive",
    help: "batch sampler",
  },
  { flag: "seed", key: "seed", arg: "N", help: "random seed (int; --seed=-1 for negatives)" },
  { flag: "resume", key: "resume", arg: "", help: "resume from the last checkpoint in --out" },
  { flag: "eval-every", key: "evalEvery", arg: "N", help: "evaluate every N epochs (int >= 1)" },
  { flag: "limit", key: "limit", arg: "N", help: "cap images per split (int >= 1)" },
  { flag: "workers", key: "workers", arg: "0|1", help: "data-loading workers" },
];

const NUMBER_RE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function parseNumber(flag: string, raw: string, errors: string[]): number | undefined {
  if (raw === "") {
    errors.push(`--${flag} needs a value`);
    return undefined;
  }
  if (!NUMBER_RE.test(raw)) {
    errors.push(`--${flag} must be a number, got "${raw}"`);
    return undefined;
  }
  return Number(raw);
}

function parseInteger(
  flag: string,
  raw: string,
  min: number | undefined,
  errors: string[],
): number | undefined {
  const v = parseNumber(flag, raw, errors);
  if (v === undefined) return undefined;
  if (!Number.isSafeInteger(v)) {
    errors.push(`--${flag} must be an integer, got "${raw}"`);
    return undefined;
  }
  if (min !== undefined && v < min) {
    errors.push(`--${flag} must be >= ${min}, got ${v}`);
    return undefined;
  }
  return v;
}

function parseChoice<T extends string>(
  flag: string,
  raw: string,
  choices: readonly T[],
  errors: string[],
): T | undefined {
  if ((choices as readonly string[]).includes(raw)) return raw as T;
  errors.push(`--${flag} must be one of ${choices.join(", ")}; got "${raw}"`);
  return undefined;
}

function showDefault(v: unknown): string {
  if (v === undefined) return "none";
  if (typeof v === "string") return v === "" ? '""' : v;
  return String(v);
}

/**
 * The usage text of a recipe: every flag with its default for this recipe.
 *
 * @example
 * ```ts
 * import { recipeUsage } from "./flags.ts";
 * import type { RecipeDefaults } from "./flags.ts";
 * const defaults: RecipeDefaults = {
 *   dataDir: "data", out: "runs/x", ratio: 0.01, epochs: 200, batchSize: 128, lr: 0.1,
 *   weightDecay: 2e-4, classifier: "etf", loss: "dr", mixup: 1, sampler: "instance", seed: 0,
 *   resume: false, evalEvery: 1, workers: 1,
 * };
 * console.log(recipeUsage("cifar10_lt", defaults));
 * ```
 */
export function recipeUsage(
  recipeName: string,
  defaults: RecipeDefaults,
  options: RecipeCliOptions = {},
): string {
  const rows: [string, string][] = SHARED.map((s) => [
    `--${s.flag}${s.arg ? " " + s.arg : ""}`,
    `${s.help} (default: ${showDefault(defaults[s.key])})`,
  ]);
  for (const e of options.extra ?? []) {
    const arg = e.type === "boolean"
      ? ""
      : e.type === "number"
      ? " X"
      : e.choices
      ? ` ${e.choices.join("|")}`
      : " VALUE";
    rows.push([`--${e.name}${arg}`, `${e.help} (default: ${showDefault(e.default)})`]);
  }
  rows.push(["-h, --help", "show this help and exit"]);
  const width = Math.min(32, Math.max(...rows.map((r) => r[0].length)));
  const lines = [`Usage: deno run -A recipes/${recipeName}.ts [flags]`, ""];
  if (options.description) lines.push(options.description, "");
  lines.push("Flags:");
  for (const [l, r] of rows) {
    lines.push(
      l.length > width ? `  ${l}\n  ${" ".repeat(width)}  ${r}` : `  ${l.padEnd(width)}  ${r}`,
    );
  }
  return lines.join("\n");
}

/**
 * Parse a recipe's command line. Unknown flags, stray arguments and bad values give
 * `{ok: false, exitCode: 2}` with a message that says what was wrong followed by the usage text;
 * `--help`/`-h` gives `{ok: false, exitCode: 0}` with the usage text. Nothing is printed or
 * written: the caller prints `message` and exits with `exitCode`.
 *
 * @example
 * ```ts
 * import { parseRecipeFlags } from "./flags.ts";
 * import type { RecipeDefaults } from "./flags.ts";
 * const defaults: RecipeDefaults = {
 *   dataDir: "data", out: "runs/cifar10_lt", ratio: 0.01, epochs: 200, batchSize: 128, lr: 0.1,
 *   weightDecay: 2e-4, classifier: "etf", loss: "dr", mixup: 1, sampler: "instance", seed: 0,
 *   resume: false, evalEvery: 1, workers: 1,
 * };
 * const r = parseRecipeFlags(["--epochs", "5", "--loss=ce"], defaults, "cifar10_lt");
 * if (!r.ok) {
 *   console.log(r.message);
 *   Deno.exit(r.exitCode);
 * }
 * console.log(r.flags.epochs, r.flags.loss); // 5 "ce"
 * ```
 */
export function parseRecipeFlags(
  args: readonly string[],
  defaults: RecipeDefaults,
  recipeName: string,
  options: RecipeCliOptions = {},
): ParseResult {
  const extra = options.extra ?? [];
  const booleanFlags = [
    "resume",
    "help",
    ...extra.filter((e) => e.type === "boolean").map((e) => e.name),
  ];
  const stringFlags = [
    ...SHARED.filter((s) => s.flag !== "resume").map((s) => s.flag),
    ...extra.filter((e) => e.type !== "boolean").map((e) => e.name),
  ];
  const unknown: string[] = [];
  const parsed = parseArgs([...args], {
    boolean: booleanFlags,
    string: stringFlags,
    negatable: booleanFlags.filter((f) => f !== "help"),
    alias: { h: "help" },
    "--": true,
    unknown: (arg: string) => {
      unknown.push(arg);
      return false;
    },
  }) as Record<string, unknown> & { _: unknown[]; "--"?: string[] };
  const usage = () => recipeUsage(recipeName, defaults, options);
  if (parsed.help === true) return { ok: false, message: usage(), exitCode: 0 };

  const errors: string[] = [];
  for (const u of unknown) {
    errors.push(u.startsWith("-") ? `unknown flag ${u}` : `unexpected argument "${u}"`);
  }
  for (const u of parsed["--"] ?? []) errors.push(`unexpected argument "${u}"`);

  const flags: RecipeFlags = { ...defaults, extra: {} };
  const str = (flag: string): string | undefined => {
    const v = parsed[flag];
    if (v === undefined) return undefined;
    // A repeated string flag keeps its last value.
    return Array.isArray(v) ? String(v[v.length - 1]) : String(v);
  };

  let raw: string | undefined;
  if ((raw = str("data-dir")) !== undefined) {
    if (raw === "") errors.push("--data-dir needs a value");
    else flags.dataDir = raw;
  }
  if ((raw = str("out")) !== undefined) {
    if (raw === "") errors.push("--out needs a value");
    else flags.out = raw;
  }
  if ((raw = str("ratio")) !== undefined) {
    const v = parseNumber("ratio", raw, errors);
    if (v !== undefined) {
      if (v > 0 && v <= 1) flags.ratio = v;
      else errors.push(`--ratio must be in (0, 1], got ${raw}`);
    }
  }
  const ints: [string, "epochs" | "batchSize" | "evalEvery" | "limit", number][] = [
    ["epochs", "epochs", 1],
    ["batch-size", "batchSize", 1],
    ["eval-every", "evalEvery", 1],
    ["limit", "limit", 1],
  ];
  for (const [flag, key, min] of ints) {
    if ((raw = str(flag)) === undefined) continue;
    const v = parseInteger(flag, raw, min, errors);
    if (v !== undefined) flags[key] = v;
  }
  if ((raw = str("seed")) !== undefined) {
    const v = parseInteger("seed", raw, undefined, errors);
    if (v !== undefined) flags.seed = v;
  }
  if ((raw = str("lr")) !== undefined) {
    const v = parseNumber("lr", raw, errors);
    if (v !== undefined) {
      if (v > 0 && Number.isFinite(v)) flags.lr = v;
      else errors.push(`--lr must be > 0, got ${raw}`);
    }
  }
  const nonNegative: [string, "weightDecay" | "mixup"][] = [
    ["weight-decay", "weightDecay"],
    ["mixup", "mixup"],
  ];
  for (const [flag, key] of nonNegative) {
    if ((raw = str(flag)) === undefined) continue;
    const v = parseNumber(flag, raw, errors);
    if (v === undefined) continue;
    if (v >= 0 && Number.isFinite(v)) flags[key] = v;
    else errors.push(`--${flag} must be >= 0, got ${raw}`);
  }
  if ((raw = str("classifier")) !== undefined) {
    const v = parseChoice("classifier", raw, ["etf", "learnable"] as const, errors);
    if (v) flags.classifier = v;
  }
  if ((raw = str("loss")) !== undefined) {
    const v = parseChoice("loss", raw, LOSS_FLAGS, errors);
    if (v) flags.loss = v;
  }
  if ((raw = str("sampler")) !== undefined) {
    const choices = ["instance", "class-balanced", "sqrt", "progressive"] as const;
    const v = parseChoice("sampler", raw, choices, errors);
    if (v) flags.sampler = v;
  }
  if ((raw = str("workers")) !== undefined) {
    const v = parseChoice("workers", raw, ["0", "1"] as const, errors);
    if (v) flags.workers = v === "0" ? 0 : 1;
  }
  if (typeof parsed.resume === "boolean") flags.resume = parsed.resume;
  else if (parsed.resume !== undefined) errors.push("--resume takes no value");

  for (const e of extra) {
    const v = parsed[e.name];
    if (e.type === "boolean") {
      flags.extra[e.name] = typeof v === "boolean" ? v : e.default;
      continue;
    }
    raw = str(e.name);
    if (raw === undefined) {
      flags.extra[e.name] = e.default;
    } else if (e.type === "number") {
      const n = parseNumber(e.name, raw, errors);
      if (n !== undefined) flags.extra[e.name] = n;
    } else if (raw === "") {
      errors.push(`--${e.name} needs a value`);
    } else if (e.choices) {
      const v = parseChoice(e.name, raw, e.choices, errors);
      if (v) flags.extra[e.name] = v;
    } else {
      flags.extra[e.name] = raw;
    }
  }

  if (errors.length > 0) {
    return {
      ok: false,
      message: `${errors.map((e) => `error: ${e}`).join("\n")}\n\n${usage()}`,
      exitCode: 2,
    };
  }
  return { ok: true, flags };
}

/** The sampler names `data/samplers.ts` uses, from the command-line spelling. */
export function samplerKind(
  flag: SamplerFlag,
): "instance" | "class" | "sqrt" | "progressive" {
  return flag === "class-balanced" ? "class" : flag;
}
