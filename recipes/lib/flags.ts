/**
 * Command-line flags shared by every recipe (`recipes/*.ts`): one table of flags, one tokenizer,
 * one usage text wrapped at 100 columns, strict validation, and `--config FILE` (settings from a
 * JSON file such as a run's `config.json`, overridden by the command line).
 * {@linkcode parseRecipeFlags} prints nothing and writes nothing: it returns the flags or a message
 * and an exit code, and the recipe prints and exits.
 *
 * A shared flag is one row of `SHARED` below (name, key in {@linkcode RecipeFlags}, argument,
 * help, value parser); a recipe-specific flag is an {@linkcode ExtraFlag} of its spec.
 *
 * @module
 */

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
  /** Training epochs. */
  epochs: number;
  /** Batch size. */
  batchSize: number;
  /** Peak learning rate. */
  lr: number;
  /** Weight decay of every trainable parameter. */
  weightDecay: number;
  /** Classifier head. */
  classifier: ClassifierFlag;
  /** Training loss. */
  loss: LossFlag;
  /** Mixup alpha; 0 turns mixup off. */
  mixup: number;
  /** Batch sampler. */
  sampler: SamplerFlag;
  /** Random seed (weights, ETF, data order, mixup). */
  seed: number;
  /** Resume from a checkpoint: `resumeFrom`, or the last checkpoint in `out`. */
  resume: boolean;
  /** `--resume PATH`: the checkpoint file or run folder to resume from. */
  resumeFrom?: string;
  /** `--extend`: with `--resume`, allow a larger `--epochs` than the run was started with. */
  extend?: boolean;
  /** `--eval-only CHECKPOINT`: evaluate this checkpoint on the test split; no training. */
  evalOnly?: string;
  /** `--print-config`: print the resolved settings as JSON and exit 0. */
  printConfig?: boolean;
  /** Warmup epochs; undefined: the recipe's default for `epochs`. */
  warmupEpochs?: number;
  /** Epochs after which the lr is multiplied by 0.1; undefined: the recipe's default. */
  milestones?: number[];
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
  /** Value type; a boolean flag also has its `--no-` form. */
  type: "string" | "number" | "boolean";
  /** One line for the usage text. */
  help: string;
  /** Value when the flag is not given. */
  default?: string | number | boolean;
  /** A string flag's allowed values (others are refused like a bad value). */
  choices?: readonly string[];
}

/** Optional parts of the usage text and recipe-specific flags. */
export interface RecipeCliOptions {
  /** One paragraph shown under the usage line. */
  description?: string;
  /** Recipe-specific flags. */
  extra?: ExtraFlag[];
  /** Paragraphs shown after the flags (e.g. the learning-rate schedule). */
  notes?: string[];
  /**
   * Reads the `--config` file (default `Deno.readTextFileSync`); tests pass their own. The only
   * side effect of parsing.
   */
  readFile?: (path: string) => string;
}

/** The outcome of {@linkcode parseRecipeFlags}. */
export type ParseResult =
  | {
    ok: true;
    flags: RecipeFlags;
    /**
     * Keys of {@linkcode RecipeFlags} given on the command line or in `--config` (`extra.NAME`
     * for extras), and `"config"` when `--config` was.
     */
    given: string[];
  }
  | { ok: false; message: string; exitCode: 0 | 2 };

/** A flag value parser: the typed value, or the reason it is invalid (phrased after "--flag "). */
type ValueParser = (raw: string) => { value: unknown } | { error: string };

type SharedKey = Exclude<keyof RecipeFlags, "extra">;

interface FlagSpec {
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

function asNumber(raw: string): { value: number } | { error: string } {
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

const SHARED: FlagSpec[] = [
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

function showDefault(v: unknown): string {
  if (v === undefined) return "none";
  if (Array.isArray(v)) return v.length ? v.join(",") : "none";
  if (typeof v === "string") return v === "" ? '""' : v;
  return String(v);
}

/**
 * Greedy word wrap of `text` at `width` columns: the first line starts with `lead`, the others
 * with `indent`; runs of spaces inside `text` become one.
 */
export function wrapText(text: string, width: number, indent = "", lead = ""): string {
  const lines: string[] = [];
  let line = lead;
  let empty = true;
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (empty) line += word;
    else if (line.length + 1 + word.length <= width) line += " " + word;
    else {
      lines.push(line);
      line = indent + word;
    }
    empty = false;
  }
  lines.push(line);
  return lines.join("\n");
}

const HELP_WIDTH = 100;

/**
 * The usage text of a recipe: every flag with its default for this recipe, wrapped at 100
 * columns.
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
    s.action || !s.key
      ? s.help
      : `${s.help} (default: ${s.defaultText ?? showDefault(defaults[s.key])})`,
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
  const width = Math.min(26, Math.max(...rows.map((r) => r[0].length)));
  const indent = " ".repeat(2 + width + 2);
  const lines = [`Usage: deno run -A recipes/${recipeName}.ts [flags]`, ""];
  if (options.description) lines.push(wrapText(options.description, HELP_WIDTH), "");
  lines.push("Flags:");
  for (const [l, r] of rows) {
    if (l.length > width) lines.push(`  ${l}`, wrapText(r, HELP_WIDTH, indent, indent));
    else lines.push(wrapText(r, HELP_WIDTH, indent, `  ${l.padEnd(width)}  `));
  }
  for (const n of options.notes ?? []) lines.push("", wrapText(n, HELP_WIDTH));
  lines.push(
    "",
    wrapText(
      "Negative numbers may follow their flag (--seed -1). Boolean flags have a --no- form. " +
        "Exit codes: 0 done, 1 failure, 2 usage error (nothing written).",
      HELP_WIDTH,
    ),
  );
  return lines.join("\n");
}

// ---------------------------------------------------------------- tokenizer

interface Token {
  flag: string;
  /** The value; `true`/`false` for a boolean or a bare optional-value flag. */
  value: string | boolean;
}

interface Tokens {
  tokens: Token[];
  errors: string[];
  help: boolean;
}

interface FlagTable {
  kinds: Map<string, "value" | "boolean" | "optional">;
}

const NEGATIVE_NUMBER_RE = /^-(\d|\.\d)/;

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0];
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const t = d[j];
      d[j] = Math.min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = t;
    }
  }
  return d[b.length];
}

function unknownFlag(arg: string, table: FlagTable): string {
  const name = arg.replace(/^-+/, "").split("=")[0];
  let best = "";
  let bestD = 3;
  for (const f of table.kinds.keys()) {
    const d = editDistance(name, f);
    if (d < bestD) [best, bestD] = [f, d];
  }
  return `unknown flag ${arg}` + (best ? ` (did you mean --${best}?)` : "");
}

/**
 * Splits `args` into flags and values: `--flag VALUE`, `--flag=VALUE` (a value may be a negative
 * number: `--seed -1`), `--flag` / `--no-flag` for booleans, `--flag [VALUE]` for optional values,
 * `-h`/`--help`; anything else is an error.
 */
function tokenize(args: readonly string[], table: FlagTable): Tokens {
  const tokens: Token[] = [];
  const errors: string[] = [];
  let help = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      for (const rest of args.slice(i + 1)) errors.push(`unexpected argument "${rest}"`);
      break;
    }
    if (arg === "-h" || arg === "--help") {
      help = true;
      continue;
    }
    if (!arg.startsWith("--")) {
      errors.push(
        arg.startsWith("-") && arg.length > 1
          ? unknownFlag(arg, table)
          : `unexpected argument "${arg}"`,
      );
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    const inline = eq < 0 ? undefined : arg.slice(eq + 1);
    let kind = table.kinds.get(name);
    if (kind === undefined && name.startsWith("no-")) {
      const base = name.slice(3);
      const k = table.kinds.get(base);
      if (k === "boolean" || k === "optional") {
        if (inline !== undefined) errors.push(`--${name} takes no value`);
        else tokens.push({ flag: base, value: false });
        continue;
      }
      kind = undefined;
    }
    if (kind === undefined) {
      errors.push(unknownFlag(arg, table));
      continue;
    }
    if (kind === "boolean") {
      if (inline !== undefined) errors.push(`--${name} takes no value (use --no-${name} for off)`);
      else tokens.push({ flag: name, value: true });
      continue;
    }
    if (inline !== undefined) {
      tokens.push({ flag: name, value: inline });
      continue;
    }
    const next = args[i + 1];
    const isValue = next !== undefined && next !== "--" &&
      (!next.startsWith("-") || NEGATIVE_NUMBER_RE.test(next));
    if (kind === "optional") {
      if (isValue) {
        tokens.push({ flag: name, value: next });
        i++;
      } else tokens.push({ flag: name, value: true });
      continue;
    }
    if (isValue) {
      tokens.push({ flag: name, value: next });
      i++;
    } else {
      tokens.push({ flag: name, value: "" });
    }
  }
  return { tokens, errors, help };
}

// ---------------------------------------------------------------- --config

/** Converts a settings object (a config.json's `flags`) into command-line tokens. */
function settingsTokens(
  settings: Record<string, unknown>,
  extra: ExtraFlag[],
  source: string,
  errors: string[],
): Token[] {
  const byKey = new Map(SHARED.filter((s) => s.key !== null).map((s) => [s.key!, s]));
  const tokens: Token[] = [];
  const push = (flag: string, kind: string, v: unknown, what: string) => {
    if (v === null || v === undefined) return;
    if (kind === "boolean") {
      if (typeof v !== "boolean") errors.push(`${source}: ${what} must be true or false`);
      else tokens.push({ flag, value: v });
    } else if (Array.isArray(v)) {
      tokens.push({ flag, value: v.length ? v.join(",") : "none" });
    } else if (typeof v === "number" || typeof v === "string") {
      tokens.push({ flag, value: String(v) });
    } else {
      errors.push(`${source}: ${what} has an unusable value ${JSON.stringify(v)}`);
    }
  };
  for (const [k, v] of Object.entries(settings)) {
    if (k === "extra") {
      if (v === null || v === undefined) continue;
      if (typeof v !== "object" || Array.isArray(v)) {
        errors.push(`${source}: "extra" must be an object`);
        continue;
      }
      for (const [name, ev] of Object.entries(v as Record<string, unknown>)) {
        const e = extra.find((x) => x.name === name);
        if (!e) {
          errors.push(`${source}: unknown setting "extra.${name}" for this recipe`);
          continue;
        }
        push(name, e.type === "boolean" ? "boolean" : "value", ev, `extra.${name}`);
      }
      continue;
    }
    if (k === "resumeFrom") continue; // the PATH of --resume: said on the command line
    const s = byKey.get(k as SharedKey);
    if (!s) {
      const known = [...byKey.values()].filter((x) => !x.action).map((x) => x.key);
      errors.push(`${source}: unknown setting "${k}" (known: ${known.join(", ")}, extra)`);
      continue;
    }
    if (s.action) continue; // what to do is said on the command line
    push(s.flag, s.kind, v, `"${k}"`);
  }
  return tokens;
}

function readSettings(
  path: string,
  recipeName: string,
  readFile: (p: string) => string,
): { settings: Record<string, unknown> } | { error: string } {
  let textContent: string;
  try {
    textContent = readFile(path);
  } catch (e) {
    return { error: `--config ${path}: cannot read it: ${(e as Error).message}` };
  }
  let v: unknown;
  try {
    v = JSON.parse(textContent);
  } catch (e) {
    return { error: `--config ${path}: not valid JSON: ${(e as Error).message}` };
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    return { error: `--config ${path}: expected a JSON object` };
  }
  const o = v as Record<string, unknown>;
  if (typeof o.recipe === "string" && o.recipe !== recipeName) {
    return {
      error: `--config ${path} holds settings of recipe ${o.recipe}, not ${recipeName}`,
    };
  }
  const flags = "flags" in o ? o.flags : o;
  if (flags === null || typeof flags !== "object" || Array.isArray(flags)) {
    return { error: `--config ${path}: "flags" must be an object` };
  }
  const settings = { ...(flags as Record<string, unknown>) };
  if (!("flags" in o)) delete settings.recipe;
  return { settings };
}

// ---------------------------------------------------------------- parse

/**
 * Parse a recipe's command line. Unknown flags, stray arguments and bad values give
 * `{ok: false, exitCode: 2}` with a message that says what was wrong followed by the usage text;
 * `--help`/`-h` gives `{ok: false, exitCode: 0}` with the usage text. `--config FILE` reads
 * settings from a JSON object (a run's `config.json`, whose `flags` it takes, or the output of
 * `--print-config`); flags on the command line override them. Nothing is printed or written: the
 * caller prints `message` and exits with `exitCode`.
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
 * const r = parseRecipeFlags(["--epochs", "5", "--loss=ce", "--seed", "-1"], defaults, "cifar10_lt");
 * if (!r.ok) {
 *   console.log(r.message);
 *   Deno.exit(r.exitCode);
 * }
 * console.log(r.flags.epochs, r.flags.loss, r.flags.seed); // 5 "ce" -1
 * ```
 */
export function parseRecipeFlags(
  args: readonly string[],
  defaults: RecipeDefaults,
  recipeName: string,
  options: RecipeCliOptions = {},
): ParseResult {
  const extra = options.extra ?? [];
  const table: FlagTable = { kinds: new Map() };
  for (const s of SHARED) table.kinds.set(s.flag, s.kind);
  for (const e of extra) table.kinds.set(e.name, e.type === "boolean" ? "boolean" : "value");
  const usage = () => recipeUsage(recipeName, defaults, options);
  const fail = (errors: string[]): ParseResult => ({
    ok: false,
    message: `${errors.map((e) => `error: ${e}`).join("\n")}\n\n${usage()}`,
    exitCode: 2,
  });

  const cli = tokenize(args, table);
  if (cli.help) return { ok: false, message: usage(), exitCode: 0 };
  const errors = [...cli.errors];

  // Settings from --config come first; the command line overrides them.
  let tokens: { token: Token; source: string }[] = [];
  const configToken = cli.tokens.filter((t) => t.flag === "config").pop();
  const given = new Set<string>();
  if (configToken) {
    given.add("config");
    const path = String(configToken.value);
    if (path === "") errors.push("--config needs a value");
    else {
      const read = readSettings(path, recipeName, options.readFile ?? Deno.readTextFileSync);
      if ("error" in read) errors.push(read.error);
      else {
        const source = `--config ${path}`;
        tokens = settingsTokens(read.settings, extra, source, errors).map((token) => ({
          token,
          source,
        }));
      }
    }
  }
  tokens.push(
    ...cli.tokens.filter((t) => t.flag !== "config").map((token) => ({ token, source: "" })),
  );

  const flags: RecipeFlags = { ...defaults, extra: {} };
  for (const e of extra) flags.extra[e.name] = e.default;
  const set = flags as unknown as Record<string, unknown>;
  for (const { token, source } of tokens) {
    const where = source ? ` (in ${source})` : "";
    const e = extra.find((x) => x.name === token.flag);
    if (e) {
      given.add(`extra.${e.name}`);
      if (e.type === "boolean") flags.extra[e.name] = token.value as boolean;
      else if (token.value === "") errors.push(`--${e.name} needs a value${where}`);
      else if (e.type === "number") {
        const r = asNumber(String(token.value));
        if ("error" in r) errors.push(`--${e.name} ${r.error}${where}`);
        else flags.extra[e.name] = r.value;
      } else if (e.choices && !e.choices.includes(String(token.value))) {
        errors.push(
          `--${e.name} must be one of ${e.choices.join(", ")}; got "${token.value}"${where}`,
        );
      } else flags.extra[e.name] = String(token.value);
      continue;
    }
    const s = SHARED.find((x) => x.flag === token.flag)!;
    if (s.key === null) continue;
    given.add(s.key);
    if (s.kind === "boolean") {
      set[s.key] = token.value;
      continue;
    }
    if (s.kind === "optional") {
      // --resume [PATH]
      flags.resume = token.value !== false;
      if (typeof token.value === "string") flags.resumeFrom = token.value;
      else delete flags.resumeFrom;
      continue;
    }
    const raw = String(token.value);
    if (raw === "") {
      errors.push(`--${s.flag} needs a value${where}`);
      continue;
    }
    const r = s.parse!(raw);
    if ("error" in r) errors.push(`--${s.flag} ${r.error}${where}`);
    else set[s.key] = r.value;
  }
  if (flags.resumeFrom === "") errors.push("--resume: PATH is empty");
  if (flags.extend && !flags.resume) errors.push("--extend applies to --resume only");
  if (flags.evalOnly !== undefined && flags.resume) {
    errors.push("--eval-only and --resume exclude each other");
  }
  if (errors.length > 0) return fail(errors);
  return { ok: true, flags, given: [...given] };
}

/**
 * The settings of `flags` as a JSON object that `--config` reads back: every setting, without
 * the per-invocation actions (`--resume`, `--eval-only`, `--print-config`, `--extend`).
 */
export function settingsOf(flags: RecipeFlags): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const s of SHARED) {
    if (s.action || s.key === null) continue;
    const v = (flags as unknown as Record<string, unknown>)[s.key];
    if (v !== undefined) out[s.key] = v;
  }
  const extra = Object.fromEntries(
    Object.entries(flags.extra).filter(([, v]) => v !== undefined),
  );
  out.extra = extra;
  return out;
}

/** The sampler names `data/samplers.ts` uses, from the command-line spelling. */
export function samplerKind(
  flag: SamplerFlag,
): "instance" | "class" | "sqrt" | "progressive" {
  return flag === "class-balanced" ? "class" : flag;
}

/** A recipe-specific flag's value when it is a number (e.g. `--image-size`), else undefined. */
export function extraNumber(flags: RecipeFlags, name: string): number | undefined {
  const v = flags.extra[name];
  return typeof v === "number" ? v : undefined;
}

/** A recipe-specific flag's value when it is a string (e.g. `--pretrained`), else undefined. */
export function extraString(flags: RecipeFlags, name: string): string | undefined {
  const v = flags.extra[name];
  return typeof v === "string" ? v : undefined;
}
