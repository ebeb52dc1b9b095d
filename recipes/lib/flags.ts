/**
 * Command-line flags shared by every recipe (`recipes/*.ts`): {@linkcode parseRecipeFlags} puts
 * together the flag table (`flag_table.ts`), the tokenizer (`flag_tokens.ts`), `--config FILE`
 * (`flag_config.ts`: settings from a JSON file such as a run's `config.json`, overridden by the
 * command line) and the usage text (`flag_usage.ts`), with strict validation.
 * {@linkcode parseRecipeFlags} prints nothing and writes nothing: it returns the flags or a message
 * and an exit code, and the recipe prints and exits.
 *
 * A shared flag is one row of the flag table; a recipe-specific flag is an
 * {@linkcode ExtraFlag} of its spec.
 *
 * @module
 */
import type {
  ParseResult,
  RecipeCliOptions,
  RecipeDefaults,
  RecipeFlags,
  SamplerFlag,
} from "./flag_types.ts";
import { asNumber, SHARED_FLAGS } from "./flag_table.ts";
import { type FlagTable, type Token, tokenize } from "./flag_tokens.ts";
import { readSettings, settingsTokens } from "./flag_config.ts";
import { recipeUsage } from "./flag_usage.ts";

export * from "./flag_types.ts";
export { recipeUsage, wrapText } from "./flag_usage.ts";

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
  for (const s of SHARED_FLAGS) table.kinds.set(s.flag, s.kind);
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
    const s = SHARED_FLAGS.find((x) => x.flag === token.flag)!;
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
  for (const s of SHARED_FLAGS) {
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
