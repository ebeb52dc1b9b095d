/**
 * Kernels: reductions (sum, max, min) of a contiguous [A, R, B] tensor over R, in chunks of R so
 * long reductions run as several passes: the serial kernel (one thread per output (a, chunk, b),
 * coalesced over b: column sums) and the row kernel (one 256-thread workgroup per (a, chunk) with
 * a workgroup-memory tree: long rows). Both write [A, C, B] with C = ceil(R / chunk) and multiply
 * by `scale` (1, or 1/R on the last pass of a mean).
 * @module
 */
import type { Launch } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import { cached, grid1d, main1d, packUniforms, wgReduce } from "./util.ts";

/** The reductions these kernels compute. */
export type ReduceOp = "sum" | "max" | "min";

const WG = 256;
const sources = new Map<string, string>();

function combine(op: ReduceOp, x: string, y: string): string {
  return op === "sum" ? `${x} + ${y}` : `${op}(${x}, ${y})`;
}

function scaled(dtype: string, v: string): string {
  return dtype === "f32" ? `${v} * p.scale` : `${v} + ${dtype}(p.scale * 0.0)`;
}

function serialSource(op: ReduceOp, dtype: string): string {
  const key = `serial|${op}|${dtype}`;
  const first = op === "sum" ? "start" : "start + 1u";
  const init = op === "sum" ? `${dtype}(0)` : "x[base + start * p.B]";
  return cached(sources, key, () => `
@group(0) @binding(0) var<storage, read_write> out: array<${dtype}>;
@group(0) @binding(1) var<storage, read> x: array<${dtype}>;
struct P { n: u32, R: u32, B: u32, chunk: u32, C: u32, scale: f32 }
@group(0) @binding(2) var<uniform> p: P;
${main1d(WG)}
  if (i >= p.n) { return; }
  let b = i % p.B;
  let t = i / p.B;
  let c = t % p.C;
  let a = t / p.C;
  let start = c * p.chunk;
  let end = min(p.R, start + p.chunk);
  let base = a * p.R * p.B + b;
  var acc: ${dtype} = ${init};
  for (var r = ${first}; r < end; r++) {
    acc = ${combine(op, "acc", "x[base + r * p.B]")};
  }
  out[i] = ${scaled(dtype, "acc")};
}`);
}

function rowSource(op: ReduceOp, dtype: string): string {
  const key = `row|${op}|${dtype}`;
  const init = op === "sum" ? `${dtype}(0)` : "x[base + start + min(lid, end - start - 1u)]";
  return cached(sources, key, () => `
@group(0) @binding(0) var<storage, read_write> out: array<${dtype}>;
@group(0) @binding(1) var<storage, read> x: array<${dtype}>;
struct P { n: u32, R: u32, chunk: u32, C: u32, scale: f32 }
@group(0) @binding(2) var<uniform> p: P;
var<workgroup> sh: array<${dtype}, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let w = wid.x + wid.y * nwg.x;
  if (w >= p.n) { return; }
  let a = w / p.C;
  let c = w % p.C;
  let start = c * p.chunk;
  let end = min(p.R, start + p.chunk);
  let base = a * p.R;
  var acc: ${dtype} = ${init};
  for (var r = start + lid; r < end; r += ${WG}u) {
    acc = ${combine(op, "acc", "x[base + r]")};
  }
  sh[lid] = acc;
  ${wgReduce(["sh"], WG, { combine: (a, b) => combine(op, a, b) })}
  if (lid == 0u) { out[w] = ${scaled(dtype, "sh[0]")}; }
}`);
}

/** One pass of the serial reduction: x viewed as [A, R, B] -> out [A, ceil(R/chunk), B]. */
export function reduceSerialLaunch(
  op: ReduceOp,
  x: Tensor,
  out: Tensor,
  dims: { A: number; R: number; B: number; chunk: number },
  scale = 1,
): Launch {
  const { A, R, B, chunk } = dims;
  const C = Math.ceil(R / chunk);
  const n = A * C * B;
  return {
    name: `reduce_${op}_serial`,
    code: serialSource(op, x.dtype),
    bindings: [out.binding, x.binding],
    uniforms: packUniforms([
      ["u32", n],
      ["u32", R],
      ["u32", B],
      ["u32", chunk],
      ["u32", C],
      ["f32", scale],
    ]),
    workgroups: grid1d(n, WG),
  };
}

/** One pass of the row (workgroup tree) reduction: x viewed as [A, R] -> out [A, ceil(R/chunk)]. */
export function reduceRowLaunch(
  op: ReduceOp,
  x: Tensor,
  out: Tensor,
  dims: { A: number; R: number; chunk: number },
  scale = 1,
): Launch {
  const { A, R, chunk } = dims;
  const C = Math.ceil(R / chunk);
  const n = A * C;
  return {
    name: `reduce_${op}_row`,
    code: rowSource(op, x.dtype),
    bindings: [out.binding, x.binding],
    uniforms: packUniforms([["u32", n], ["u32", R], ["u32", chunk], ["u32", C], ["f32", scale]]),
    workgroups: grid1d(n, 1),
  };
}
