/**
 * Kernel: the generic strided elementwise map. Each output element (a linear index over a launch
 * shape of rank <= 6) reads one element from each input at `offset + sum(coord * stride)` (stride 0
 * broadcasts), evaluates a WGSL expression and writes it at the output's own offset/strides.
 * Elementwise ops, broadcasting, casts, transposes, slices, concat and pad are all instances.
 * Shapes and strides are uniforms; code is generated per (expression, dtypes, arity, rank).
 * @module
 */
import type { Launch } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import { grid1d, main1d, packUniforms, type UniformField } from "./util.ts";

const WG = 256;
/** Names the expression uses for the input values, in order. */
export const MAP_VARS = ["a", "b", "c", "d"] as const;

/** One operand of a strided map: a tensor and where its elements sit for each launch coordinate. */
export interface MapOperand {
  t: Tensor;
  /** Element offset. */
  offset: number;
  /** Element stride per launch dimension (0 = broadcast). */
  strides: number[];
}

/** What a strided map computes. */
export interface MapKernel {
  /** Kernel name for messages. */
  name: string;
  /** WGSL expression over `a`, `b`, `c`, `d` (the inputs) and `s0`, `s1`, ... (f32 scalars). */
  expr: string;
  /** Optional WGSL helper functions the expression calls. */
  prelude?: string;
}

const sources = new Map<string, string>();

function source(k: MapKernel, outType: string, inTypes: string[], rank: number, ns: number) {
  const key = [k.name, k.expr, k.prelude ?? "", outType, inTypes.join(","), rank, ns].join("|");
  let c = sources.get(key);
  if (c) return c;
  const fields = ["n: u32"];
  for (let d = 0; d < rank; d++) fields.push(`d${d}: u32`);
  const ops = ["o", ...inTypes.map((_, j) => `i${j}`)];
  for (const o of ops) {
    fields.push(`${o}_off: u32`);
    for (let d = 0; d < rank; d++) fields.push(`${o}_s${d}: u32`);
  }
  for (let s = 0; s < ns; s++) fields.push(`s${s}: f32`);
  const decls = inTypes.map((t, j) =>
    `@group(0) @binding(${j + 1}) var<storage, read> in${j}: array<${t}>;`
  );
  let index = `var rem = i;\n`;
  for (const o of ops) index += `  var ${o}x = p.${o}_off;\n`;
  for (let d = rank - 1; d >= 0; d--) {
    index += `  { let q = rem % p.d${d}; rem = rem / p.d${d};`;
    for (const o of ops) index += ` ${o}x += q * p.${o}_s${d};`;
    index += ` }\n`;
  }
  const loads = inTypes.map((_, j) => `let ${MAP_VARS[j]} = in${j}[i${j}x];`).join("\n  ");
  const scal = Array.from({ length: ns }, (_, s) => `let s${s} = p.s${s};`).join(" ");
  c = `
${decls.join("\n")}
@group(0) @binding(0) var<storage, read_write> out: array<${outType}>;
struct P { ${fields.join(", ")} }
@group(0) @binding(${inTypes.length + 1}) var<uniform> p: P;
${k.prelude ?? ""}
${main1d(WG)}
  if (i >= p.n) { return; }
  ${index}
  ${loads}
  ${scal}
  out[ox] = ${k.expr};
}`;
  sources.set(key, c);
  return c;
}

/**
 * Merges adjacent launch dimensions that every operand walks contiguously and drops size-1
 * dimensions, so the common cases run at rank 1 or 2.
 */
function coalesce(shape: number[], strides: number[][]): { shape: number[]; strides: number[][] } {
  const keep = shape.map((d, i) => (d !== 1 ? i : -1)).filter((i) => i >= 0);
  let shp = keep.map((i) => shape[i]);
  let str = strides.map((s) => keep.map((i) => s[i]));
  if (shp.length === 0) return { shape: [1], strides: strides.map(() => [0]) };
  for (let d = shp.length - 2; d >= 0; d--) {
    if (str.every((s) => s[d] === s[d + 1] * shp[d + 1])) {
      shp = [...shp.slice(0, d), shp[d] * shp[d + 1], ...shp.slice(d + 2)];
      str = str.map((s) => [...s.slice(0, d), s[d + 1], ...s.slice(d + 2)]);
    }
  }
  return { shape: shp, strides: str };
}

/**
 * The launch computing `out = expr(inputs...)` over `shape`. Operand strides have `shape.length`
 * entries; rank after coalescing must be <= 6.
 */
export function stridedMapLaunch(
  k: MapKernel,
  out: MapOperand,
  ins: MapOperand[],
  shape: number[],
  scalars: number[] = [],
): Launch {
  if (ins.length < 1 || ins.length > MAP_VARS.length) {
    throw new Error(`collapse: ${k.name}: strided map takes 1..4 inputs, got ${ins.length}`);
  }
  const n = shape.reduce((a, b) => a * b, 1);
  const all = [out, ...ins];
  const c = coalesce(shape, all.map((o) => o.strides));
  const rank = c.shape.length;
  if (rank > 6) {
    throw new Error(`collapse: ${k.name}: rank ${rank} after merging dims exceeds 6`);
  }
  const fields: UniformField[] = [["u32", n]];
  for (const d of c.shape) fields.push(["u32", d]);
  all.forEach((o, j) => {
    fields.push(["u32", o.offset]);
    for (const s of c.strides[j]) fields.push(["u32", s]);
  });
  for (const s of scalars) fields.push(["f32", s]);
  return {
    name: k.name,
    code: source(k, out.t.dtype, ins.map((o) => o.t.dtype), rank, scalars.length),
    bindings: [out.t.binding, ...ins.map((o) => o.t.binding)],
    uniforms: packUniforms(fields),
    workgroups: grid1d(n, WG),
  };
}
