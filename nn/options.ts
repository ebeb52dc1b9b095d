/**
 * Validation of options objects: every option bag of the public API (layers, models, optimizers,
 * losses, callbacks, compile/fit/evaluate/predict) is checked against the list of its keys when it
 * is taken, so an unknown key (`new SGD({ lr: 0.1 })`), a missing required key or a value that is
 * not an object (`new Conv2D(8, 3, "relu")`) is a clear error at that call, naming the key, a
 * likely intended one and the allowed ones. {@link optionKeys} lists the keys of an interface once,
 * with the compiler checking that the list is complete.
 * @module
 */

/** The allowed keys of one options interface (see {@link optionKeys}). */
export type OptionKeys = readonly string[];

/**
 * The keys of the options interface `T` as a run-time list. The argument must name every key of `T`
 * and nothing else (a compile error otherwise), so the list cannot drift from the interface.
 *
 * @example
 * ```ts
 * import { optionKeys } from "./options.ts";
 * interface PadOptions { value?: number; mode?: "zeros" | "reflect" }
 * const PAD_KEYS = optionKeys<PadOptions>({ value: true, mode: true }); // ["value", "mode"]
 * ```
 */
export function optionKeys<T extends object>(
  keys: { [K in keyof Required<T>]: true },
): OptionKeys {
  return Object.freeze(Object.keys(keys));
}

/** Options of {@link checkOptions}. */
export interface CheckOptionsOptions {
  /** Keys that must be present (and not undefined). */
  required?: readonly string[];
  /** Appended to the message when `options` is not an object (e.g. how to pass an activation). */
  hint?: string;
}

/** Well-known spellings from Keras/PyTorch and the option they mean here. */
const ALIASES: Readonly<Record<string, string>> = {
  lr: "learningRate",
  wd: "weightDecay",
  decay: "weightDecay",
  stride: "strides",
  kernel_size: "kernelSize",
  bias: "useBias",
  eps: "epsilon",
  betas: "beta1",
  callback: "callbacks",
  validation_data: "validationData",
  class_weight: "classWeight",
};

function normalise(key: string): string {
  return key.replace(/[_\-\s]/g, "").toLowerCase();
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(
        d[i - 1][j] + 1,
        d[i][j - 1] + 1,
        d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
  }
  return d[a.length][b.length];
}

/** The allowed key an unknown `key` most likely means, if any. */
export function suggestKey(key: string, allowed: readonly string[]): string | undefined {
  const alias = ALIASES[key] ?? ALIASES[key.toLowerCase()];
  if (alias && allowed.includes(alias)) return alias;
  const n = normalise(key);
  const same = allowed.find((k) => normalise(k) === n);
  if (same) return same;
  let best: string | undefined, bestD = Infinity;
  for (const k of allowed) {
    const dist = editDistance(n, normalise(k));
    if (dist < bestD) [best, bestD] = [k, dist];
  }
  return bestD <= Math.max(1, Math.floor(n.length / 3)) ? best : undefined;
}

function describeValue(v: unknown): string {
  if (typeof v === "string") return `the string ${JSON.stringify(v)}`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v === null) return "null";
  if (typeof v === "function") return "a function";
  if (typeof v === "object") return `a ${(v as object).constructor?.name ?? "non-plain object"}`;
  return `${typeof v} ${String(v)}`;
}

function allowedText(allowed: readonly string[]): string {
  return allowed.length ? allowed.join(", ") : "none";
}

/** Whether `v` is an options bag: a plain object (an object literal or `Object.create(null)`). */
export function isOptionsObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * Checks an options object taken by `where` (e.g. `"new SGD()"`, `"fit()"`): `undefined` is
 * accepted (all defaults) unless keys are required; anything else must be a plain object whose
 * keys are all in `allowed` and which holds every required key. Throws an error naming the
 * offending key, the likely intended one and the allowed ones. Returns `options` (typed).
 *
 * @example
 * ```ts
 * import { checkOptions } from "./options.ts";
 * import { assertThrows } from "jsr:@std/assert@^1.0.19";
 * assertThrows(
 *   () => checkOptions("new SGD()", { lr: 0.1 }, ["learningRate", "momentum"]),
 *   Error,
 *   "unknown option 'lr' (did you mean 'learningRate'?)",
 * );
 * ```
 */
export function checkOptions<T>(
  where: string,
  options: T,
  allowed: OptionKeys,
  check: CheckOptionsOptions = {},
): T {
  const required = check.required ?? [];
  if (options === undefined && required.length === 0) return options;
  if (!isOptionsObject(options)) {
    throw new Error(
      `collapse: ${where}: expected an options object { ${allowedText(allowed)} }, got ${
        describeValue(options)
      }${check.hint ? ` (${check.hint})` : ""}`,
    );
  }
  const unknown = Object.keys(options).filter((k) => !allowed.includes(k));
  if (unknown.length) {
    const parts = unknown.map((k) => {
      const s = suggestKey(k, allowed);
      return `'${k}'${s ? ` (did you mean '${s}'?)` : ""}`;
    });
    throw new Error(
      `collapse: ${where}: unknown option${unknown.length > 1 ? "s" : ""} ${
        parts.join(", ")
      }; allowed: ${allowedText(allowed)}`,
    );
  }
  const missing = required.filter((k) => options[k] === undefined);
  if (missing.length) {
    throw new Error(
      `collapse: ${where}: missing option${missing.length > 1 ? "s" : ""} ${
        missing.map((k) => `'${k}'`).join(", ")
      }; allowed: ${allowedText(allowed)}`,
    );
  }
  return options;
}

/**
 * Checks that `value` is one of `choices` (for string-valued options such as a mode or a name);
 * throws naming the option, the value, a likely intended choice and the allowed ones.
 */
export function checkChoice<C extends string>(
  where: string,
  option: string,
  value: unknown,
  choices: readonly C[],
): C {
  if (typeof value === "string" && (choices as readonly string[]).includes(value)) {
    return value as C;
  }
  const s = typeof value === "string" ? suggestKey(value, choices) : undefined;
  throw new Error(
    `collapse: ${where}: ${option} must be one of ${
      choices.map((c) => JSON.stringify(c)).join(", ")
    }; got ${typeof value === "string" ? JSON.stringify(value) : describeValue(value)}${
      s ? ` (did you mean ${JSON.stringify(s)}?)` : ""
    }`,
  );
}
