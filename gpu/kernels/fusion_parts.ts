/**
 * The parts fused kernels are assembled from ({@link FusionPart}): a set of bindings, uniform
 * fields and WGSL declarations, with optional statements every workgroup runs first (`pre`) and an
 * optional GEMM epilogue. {@link composeFusion} turns a list of parts into a GEMM's
 * {@link GemmFusion}; the row kernels (bn_rows.ts) take the same parts. Also the split-K rider: a
 * slice, per workgroup, of another GEMM's split-K reduction, so it needs no dispatch of its own.
 * @module
 */
import type { Bindable } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import type { GemmEpilogue, GemmFusion, NamedField } from "./matmul_gemm.ts";

/** One fused part (see the module doc). Field names must be unique across the parts of a kernel. */
export interface FusionPart {
  key: string;
  bindings: Bindable[];
  fields: NamedField[];
  /** WGSL declarations with storage bindings numbered from `first`. */
  decl(first: number): string;
  /** Statements run by every invocation first (see {@link GemmFusion.pre}). */
  pre?(threads: number): string;
  epilogue?: GemmEpilogue;
}

/** The declarations of parts numbered from `first`, and the next free binding. */
export function partsDecl(parts: FusionPart[], first: number): { decl: string; next: number } {
  let bind = first;
  const decl: string[] = [];
  for (const p of parts) {
    decl.push(p.decl(bind));
    bind += p.bindings.length;
  }
  return { decl: decl.join("\n"), next: bind };
}

/** The statements of the parts' pre-stages (in order), ending with one barrier if any wrote. */
export function partsPre(parts: FusionPart[], threads: number): string {
  const pre = parts.filter((p) => p.pre).map((p) => p.pre!(threads));
  return pre.length ? `${pre.join("\n")}\n  workgroupBarrier();` : "";
}

/** A GEMM fusion from parts (at most one with an epilogue). */
export function composeFusion(parts: FusionPart[]): GemmFusion {
  const epis = parts.filter((p) => p.epilogue);
  if (epis.length > 1) throw new Error("collapse: a GEMM takes at most one fused epilogue");
  return {
    key: parts.map((p) => p.key).join("+"),
    bindings: parts.flatMap((p) => p.bindings),
    fields: parts.flatMap((p) => p.fields),
    decl: (first) => partsDecl(parts, first).decl,
    pre: (threads) => partsPre(parts, threads),
    epilogue: epis[0]?.epilogue,
  };
}

/** One split-K reduction a rider performs: out[i] = sum over s of part[s * L + i], i < L. */
export interface RiderJob {
  /** f32[S * L] partial sums. */
  part: Tensor;
  /** f32[L] (any shape of L elements). */
  out: Tensor;
  splits: number;
}

/**
 * A rider part: every workgroup of the host kernel reduces a strided slice of each job's
 * partials into its output before its own work (the host must run after the job's GEMM and
 * before the output is read; any host launch works, whatever its own bindings).
 */
export function riderPart(jobs: RiderJob[], prefix = "rd"): FusionPart {
  const fields: NamedField[] = jobs.flatMap((j, k) => [
    [`${prefix}${k}L`, "u32", j.out.size] as NamedField,
    [`${prefix}${k}S`, "u32", j.splits] as NamedField,
  ]);
  return {
    key: `rider${jobs.length}`,
    bindings: jobs.flatMap((j) => [j.part.binding, j.out.binding]),
    fields,
    decl: (first) =>
      jobs.map((_, k) =>
        `@group(0) @binding(${first + 2 * k}) var<storage, read> ${prefix}${k}_part: array<f32>;
@group(0) @binding(${first + 2 * k + 1}) var<storage, read_write> ${prefix}${k}_out: array<f32>;`
      ).join("\n"),
    pre: (threads) =>
      jobs.map((_, k) => {
        const n = `${prefix}${k}`;
        return `  for (var o = wgLinear * ${threads}u + lid.x; o < p.${n}L; o += wgCount * ${threads}u) {
    var acc = 0.0;
    for (var s = 0u; s < p.${n}S; s++) { acc += ${n}_part[s * p.${n}L + o]; }
    ${n}_out[o] = acc;
  }`;
      }).join("\n"),
  };
}
