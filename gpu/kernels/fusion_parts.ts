/**
 * The parts fused kernels are assembled from ({@link FusionPart}): a set of bindings, uniform
 * fields and WGSL declarations, with optional statements every workgroup runs first (`pre`) and an
 * optional GEMM epilogue. {@link composeFusion} turns a list of parts into a GEMM's
 * {@link GemmFusion}; the row kernels (bn_rows.ts) take the same parts. Also the split-K rider: a
 * slice, per workgroup, of another GEMM's split-K reduction, so it needs no dispatch of its own.
 * @module
 */
import type { Bindable, Launch } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import {
  type GemmEpilogue,
  type GemmFusion,
  type NamedField,
  uniformBlock,
} from "./matmul_gemm.ts";

/** One fused part (see the module doc). Field names must be unique across the parts of a kernel. */
export interface FusionPart {
  key: string;
  bindings: Bindable[];
  fields: NamedField[];
  /** WGSL declarations with storage bindings numbered from `first` (`threads` per workgroup). */
  decl(first: number, threads: number): string;
  /** Statements run by every invocation first (see {@link GemmFusion.pre}). */
  pre?(threads: number): string;
  epilogue?: GemmEpilogue;
}

/** The declarations of parts numbered from `first`, and the next free binding. */
export function partsDecl(
  parts: FusionPart[],
  first: number,
  threads: number,
): { decl: string; next: number } {
  let bind = first;
  const decl: string[] = [];
  for (const p of parts) {
    decl.push(p.decl(bind, threads));
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
    decl: (first, threads) => partsDecl(parts, first, threads).decl,
    pre: (threads) => partsPre(parts, threads),
    epilogue: epis[0]?.epilogue,
  };
}

/**
 * One split-K reduction a rider performs: out[i] = sum over s of part[s * Lp + src(i)], i < L,
 * with src(i) = i, or, with `regroup`, the rows of `from` blocks of `inner` values kept to their
 * first `to` (a weight gradient computed with zero-padded input channels).
 */
export interface RiderJob {
  /** f32[S * Lp] partial sums (Lp = L, or L / to * from with `regroup`). */
  part: Tensor;
  /** f32[L] (any shape of L elements). */
  out: Tensor;
  splits: number;
  regroup?: { inner: number; from: number; to: number };
}

/**
 * A rider part: every workgroup of the host kernel reduces a strided slice of each job's
 * partials into its output before its own work (the host must run after the job's GEMM and
 * before the output is read; any host launch works, whatever its own bindings).
 */
export function riderPart(jobs: RiderJob[], prefix = "rd"): FusionPart {
  const fields: NamedField[] = jobs.flatMap((j, k) => {
    const r = j.regroup ?? { inner: 1, from: 1, to: 1 };
    return [
      [`${prefix}${k}L`, "u32", j.out.size] as NamedField,
      [`${prefix}${k}S`, "u32", j.splits] as NamedField,
      [`${prefix}${k}Lp`, "u32", (j.out.size / (r.to * r.inner)) * r.from * r.inner] as NamedField,
      [`${prefix}${k}To`, "u32", r.to * r.inner] as NamedField,
      [`${prefix}${k}From`, "u32", r.from * r.inner] as NamedField,
    ];
  });
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
    let src = (o / p.${n}To) * p.${n}From + o % p.${n}To;
    var acc = 0.0;
    for (var s = 0u; s < p.${n}S; s++) { acc += ${n}_part[s * p.${n}Lp + src]; }
    ${n}_out[o] = acc;
  }`;
      }).join("\n"),
  };
}

/** A launch that only runs rider jobs (when no later kernel can take them). */
export function riderLaunch(jobs: RiderJob[]): Launch {
  const part = riderPart(jobs);
  const { struct, data } = uniformBlock(part.fields);
  const threads = 64;
  const total = Math.max(...jobs.map((j) => j.out.size));
  return {
    name: "gemm_split_reduce",
    code: `${struct}
${part.decl(0, threads)}
@group(0) @binding(${part.bindings.length}) var<uniform> p: P;
@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let wgLinear = wid.x;
  let wgCount = nwg.x;
${part.pre!(threads)}
}`,
    bindings: part.bindings,
    uniforms: data,
    workgroups: [Math.min(1024, Math.ceil(total / threads))],
  };
}
