/**
 * Half-precision (IEEE binary16) storage of f32 tensors: a tensor stored this way holds 2 bytes
 * per element, and every kernel that binds it computes in f32 as before. The engine rewrites a
 * kernel's WGSL for the bindings that hold such tensors ({@link halfStorageSource}): the
 * declaration `NAME: array<vec4<f32>>` becomes packed pairs (`array<vec2<u32>>`; `array<f32>`
 * becomes `array<u32>`), every read `NAME[i]` a call that unpacks (`unpack2x16float`, core WGSL:
 * no `shader-f16` needed), every vec4 store `NAME[i] = v;` one that packs (`pack2x16float`: one
 * of the two nearest binary16 values, nearest-even on lavapipe; beyond +-65504 WGSL leaves the
 * value indeterminate, lavapipe stores +-Infinity). Scalar stores, component stores, compound
 * assignments, pointers and `arrayLength` on such an array are refused: two invocations writing
 * the halves of one word would race, and the rest would see the packed words. The engine also
 * refuses copies between the formats and bindings that do not say which they hold (engine.ts).
 * @module
 */

/** The element types a half-stored binding may be declared with. */
type HalfElem = "vec4<f32>" | "f32";

function declPattern(binding: number): RegExp {
  return new RegExp(
    `@group\\(0\\)\\s*@binding\\(${binding}\\)\\s*var<storage,\\s*(read|read_write)>\\s*` +
      `([A-Za-z_][A-Za-z0-9_]*)\\s*:\\s*array<(vec4<f32>|f32)>\\s*;`,
  );
}

/** The index of the bracket closing the one at `open`. */
function closing(code: string, open: number): number {
  let depth = 0;
  for (let i = open; i < code.length; i++) {
    const ch = code[i];
    if (ch === "[" || ch === "(") depth++;
    else if (ch === "]" || ch === ")") {
      depth--;
      if (depth === 0) return i;
    }
  }
  throw new Error("collapse: half storage: unbalanced brackets in WGSL");
}

/** The index of the `;` ending the statement from `from` (outside brackets). */
function statementEnd(code: string, from: number): number {
  let depth = 0;
  for (let i = from; i < code.length; i++) {
    const ch = code[i];
    if (ch === "[" || ch === "(") depth++;
    else if (ch === "]" || ch === ")") depth--;
    else if (ch === ";" && depth === 0) return i;
  }
  throw new Error("collapse: half storage: unterminated statement in WGSL");
}

function helpers(name: string, elem: HalfElem, write: boolean): string {
  const h = `${name}__h`;
  if (elem === "f32") {
    return `fn ${name}__ld(i: u32) -> f32 { return unpack2x16float(${h}[i >> 1u])[i & 1u]; }`;
  }
  const ld =
    `fn ${name}__ld(i: u32) -> vec4<f32> { let w = ${h}[i]; return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)); }`;
  if (!write) return ld;
  return `${ld}
fn ${name}__st(i: u32, v: vec4<f32>) { ${h}[i] = vec2<u32>(pack2x16float(v.xy), pack2x16float(v.zw)); }`;
}

/** Rewrites the accesses of one array (see the module doc). */
function rewriteAccesses(code: string, name: string, elem: HalfElem, kernel: string): string {
  const use = new RegExp(`(&\\s*)?(?<![.\\w])${name}\\b(\\s*\\[)?`, "g");
  let out = "";
  let last = 0;
  for (;;) {
    use.lastIndex = last;
    const m = use.exec(code);
    if (!m) break;
    const start = m.index;
    if (m[1] || !m[2]) {
      throw new Error(
        `collapse: kernel ${kernel}: a half-stored array (${name}) may only be indexed`,
      );
    }
    const open = start + m[0].length - 1;
    const close = closing(code, open);
    const index = code.slice(open + 1, close);
    const rest = code.slice(close + 1);
    const assign = /^\s*(\.[a-z]+\s*)?([-+*/%&|^]|<<|>>)?=(?!=)/.exec(rest);
    out += code.slice(last, start);
    if (assign) {
      if (assign[1] || assign[2] || elem !== "vec4<f32>") {
        throw new Error(
          `collapse: kernel ${kernel}: half-stored ${name} takes whole vec4 stores only`,
        );
      }
      const rhsStart = close + 1 + assign[0].length;
      const end = statementEnd(code, rhsStart);
      const value = rewriteAccesses(code.slice(rhsStart, end), name, elem, kernel);
      out += `${name}__st(u32(${rewriteAccesses(index, name, elem, kernel)}), ${value.trim()})`;
      last = end;
    } else {
      out += `${name}__ld(u32(${rewriteAccesses(index, name, elem, kernel)}))`;
      last = close + 1;
    }
  }
  return out + code.slice(last);
}

/**
 * `code` with the storage bindings numbered `bindings` read and written as half-precision storage
 * (see the module doc). Each must be declared `@group(0) @binding(N) var<storage, ACCESS> NAME:
 * array<vec4<f32>>;` (or `array<f32>`, read only). `kernel` names the kernel in errors.
 *
 * @example
 * ```ts
 * import { assertStringIncludes } from "@std/assert";
 * import { halfStorageSource } from "./half_storage.ts";
 *
 * const code = `@group(0) @binding(0) var<storage, read_write> y: array<vec4<f32>>;
 * @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
 *   y[g.x] = y[g.x] * 2.0;
 * }`;
 * const half = halfStorageSource(code, [0], "double");
 * assertStringIncludes(half, "var<storage, read_write> y__h: array<vec2<u32>>;");
 * assertStringIncludes(half, "y__st(u32(g.x), y__ld(u32(g.x)) * 2.0);");
 * ```
 */
export function halfStorageSource(code: string, bindings: number[], kernel: string): string {
  code = code.replace(/\/\/[^\n]*/g, ""); // comments may name the arrays
  for (const b of bindings) {
    const d = declPattern(b).exec(code);
    if (!d) {
      throw new Error(
        `collapse: kernel ${kernel}: binding ${b} holds a half-stored tensor but is not declared ` +
          "as array<vec4<f32>> or array<f32>",
      );
    }
    const [decl, access, name, elem] = d as unknown as [string, string, string, HalfElem];
    const write = access === "read_write";
    const packed = elem === "f32" ? "u32" : "vec2<u32>";
    const before = code.slice(0, d.index);
    const after = code.slice(d.index + decl.length);
    const newDecl =
      `@group(0) @binding(${b}) var<storage, ${access}> ${name}__h: array<${packed}>;\n` +
      helpers(name, elem, write);
    code = rewriteAccesses(before, name, elem, kernel) + newDecl +
      rewriteAccesses(after, name, elem, kernel);
  }
  return code;
}

/** Decodes IEEE binary16 values (the low and high halves of each word, in element order). */
export function decodeHalf(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i];
    const sign = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f, f = h & 0x3ff;
    out[i] = e === 0
      ? sign * f * 2 ** -24
      : e === 31
      ? (f ? NaN : sign * Infinity)
      : sign * (1 + f / 1024) * 2 ** (e - 15);
  }
  return out;
}
