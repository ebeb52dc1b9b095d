/**
 * The recipes' command-line tokenizer: `--flag VALUE`, `--flag=VALUE`, booleans with their
 * `--no-` form, optional values, `-h`/`--help`, and "did you mean" for unknown flags.
 *
 * @module
 */

/** One flag of a command line (or of a `--config` file) and its raw value. */
export interface Token {
  flag: string;
  /** The value; `true`/`false` for a boolean or a bare optional-value flag. */
  value: string | boolean;
}

/** A tokenized command line. */
export interface Tokens {
  tokens: Token[];
  errors: string[];
  help: boolean;
}

/** The flags a recipe knows, with the kind of value each takes. */
export interface FlagTable {
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
export function tokenize(args: readonly string[], table: FlagTable): Tokens {
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
