/**
 * `--config FILE` of the recipes: reads a JSON settings object (a run's `config.json` or
 * `--print-config` output) and turns it into command-line tokens, which the command line then
 * overrides.
 *
 * @module
 */
import type { ExtraFlag } from "./flag_types.ts";
import { SHARED_FLAGS, type SharedKey } from "./flag_table.ts";
import type { Token } from "./flag_tokens.ts";

/** Converts a settings object (a config.json's `flags`) into command-line tokens. */
export function settingsTokens(
  settings: Record<string, unknown>,
  extra: ExtraFlag[],
  source: string,
  errors: string[],
): Token[] {
  const byKey = new Map(SHARED_FLAGS.filter((s) => s.key !== null).map((s) => [s.key!, s]));
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

/**
 * The settings object of a `--config` file: its `flags` when it is a run's `config.json`, else the
 * whole object; refused when it names another recipe.
 */
export function readSettings(
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
