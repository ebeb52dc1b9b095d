/**
 * The usage text of a recipe: every shared and recipe-specific flag with its default, wrapped at
 * 100 columns.
 *
 * @module
 */
import type { RecipeCliOptions, RecipeDefaults } from "./flag_types.ts";
import { SHARED_FLAGS } from "./flag_table.ts";

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
 * import { recipeUsage } from "./flag_usage.ts";
 * import type { RecipeDefaults } from "./flag_types.ts";
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
  const rows: [string, string][] = SHARED_FLAGS.map((s) => [
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
