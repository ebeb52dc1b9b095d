/**
 * Kernels: BatchNorm's per-channel reductions over the rows of an [M, C] (channels-last) tensor, two
 * levels: a partial pass (one workgroup per chunk of rows x 16 channels, writing [2, P, C] partials)
 * and a final pass (one thread per channel). Forward: shifted sums of x and x^2 (shift = row 0, to
 * avoid cancellation) -> mean, 1/std, and the in-place running-stat update. Backward: sums of dy and
 * dy * xhat -> dbeta, dgamma. Also the eval-mode stats from running statistics.
 * @module
 */
import type { Launch } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import { packUniforms, wgReduce } from "./util.ts";

const CW = 16; // channels per workgroup
const RW = 16; // row lanes per workgroup

/** The number of row chunks and rows per chunk for M rows. */
export function bnChunks(rows: number): { chunks: number; rowsPerChunk: number } {
  const rowsPerChunk = Math.max(64, Math.ceil(rows / 512));
  return { chunks: Math.max(1, Math.ceil(rows / rowsPerChunk)), rowsPerChunk };
}

function partialSource(grad: boolean): string {
  const decls = grad
    ? `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> stats: array<f32>;
@group(0) @binding(3) var<storage, read_write> part: array<f32>;
@group(0) @binding(4) var<uniform> u: P;`
    : `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> part: array<f32>;
@group(0) @binding(2) var<uniform> u: P;`;
  const setup = grad ? "let mean = stats[c]; let inv = stats[u.c + c];" : "let k = x[c];";
  const body = grad
    ? "let g = dy[j]; let xh = (x[j] - mean) * inv; a = a + g; b = b + g * xh;"
    : "let v = x[j] - k; a = a + v; b = b + v * v;";
  return `
struct P { rows: u32, c: u32, rows_per_chunk: u32, chunks: u32 }
${decls}
var<workgroup> s1: array<f32, ${CW * RW}>;
var<workgroup> s2: array<f32, ${CW * RW}>;
@compute @workgroup_size(${CW}, ${RW})
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let c = wid.x * ${CW}u + lid.x;
  let r0 = wid.y * u.rows_per_chunk;
  let r1 = min(r0 + u.rows_per_chunk, u.rows);
  var a = 0.0;
  var b = 0.0;
  if (c < u.c) {
    ${setup}
    for (var r = r0 + lid.y; r < r1; r = r + ${RW}u) {
      let j = r * u.c + c;
      ${body}
    }
  }
  let li = lid.y * ${CW}u + lid.x;
  s1[li] = a;
  s2[li] = b;
  ${wgReduce(["s1", "s2"], RW, { lane: "lid.y", at: "li", step: CW })}
  if (lid.y == 0u && c < u.c) {
    part[wid.y * u.c + c] = s1[lid.x];
    part[(u.chunks + wid.y) * u.c + c] = s2[lid.x];
  }
}`;
}
const partialCode = [partialSource(false), partialSource(true)];

function partialUniforms(rows: number, c: number) {
  const { chunks, rowsPerChunk } = bnChunks(rows);
  return {
    chunks,
    uniforms: packUniforms([["u32", rows], ["u32", c], ["u32", rowsPerChunk], ["u32", chunks]]),
  };
}

/** Partial shifted sums of x and x^2 per chunk: `part` is f32[2 * chunks * C]. */
export function bnStatsPartialLaunch(x: Tensor, part: Tensor, rows: number, c: number): Launch {
  const { chunks, uniforms } = partialUniforms(rows, c);
  return {
    name: "batch_norm_stats_partial",
    code: partialCode[0],
    bindings: [x.binding, part.binding],
    uniforms,
    workgroups: [Math.ceil(c / CW), chunks],
  };
}

/** Partial sums of dy and dy * xhat per chunk (`stats` = [mean; invstd], f32[2C]). */
export function bnGradPartialLaunch(
  x: Tensor,
  dy: Tensor,
  stats: Tensor,
  part: Tensor,
  rows: number,
  c: number,
): Launch {
  const { chunks, uniforms } = partialUniforms(rows, c);
  return {
    name: "batch_norm_grad_partial",
    code: partialCode[1],
    bindings: [x.binding, dy.binding, stats.binding, part.binding],
    uniforms,
    workgroups: [Math.ceil(c / CW), chunks],
  };
}

const WG = 64;
// WGSL: a, b = the sums over the chunks of channel c's two partials (rows [0, P) and [P, 2P)).
const SUM_PARTS = `var a = 0.0;
  var b = 0.0;
  for (var p = 0u; p < u.chunks; p = p + 1u) {
    a = a + part[p * u.c + c];
    b = b + part[(u.chunks + p) * u.c + c];
  }`;

const statsFinalCode = `
struct P { rows: u32, c: u32, chunks: u32, momentum: f32, eps: f32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;
@group(0) @binding(3) var<storage, read_write> run_mean: array<f32>;
@group(0) @binding(4) var<storage, read_write> run_var: array<f32>;
@group(0) @binding(5) var<uniform> u: P;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= u.c) { return; }
  ${SUM_PARTS}
  let m = f32(u.rows);
  let d = a / m;
  let v = max(b / m - d * d, 0.0);
  let mean = x[c] + d;
  stats[c] = mean;
  stats[u.c + c] = inverseSqrt(v + u.eps);
  run_mean[c] = (1.0 - u.momentum) * run_mean[c] + u.momentum * mean;
  run_var[c] = (1.0 - u.momentum) * run_var[c] + u.momentum * v * m / (m - 1.0);
}`;

/**
 * Batch mean and 1/sqrt(var + eps) into `stats` (f32[2C]) from the partials, and the in-place
 * running-stat update (momentum convention of PyTorch; unbiased variance). `chunks`: the number of
 * partials per channel when they were not made by {@link bnStatsPartialLaunch} over `rows` rows.
 */
export function bnStatsFinalLaunch(
  x: Tensor,
  part: Tensor,
  stats: Tensor,
  runMean: Tensor,
  runVar: Tensor,
  rows: number,
  c: number,
  momentum: number,
  eps: number,
  chunks: number = bnChunks(rows).chunks,
): Launch {
  return {
    name: "batch_norm_stats_final",
    code: statsFinalCode,
    bindings: [x.binding, part.binding, stats.binding, runMean.binding, runVar.binding],
    uniforms: packUniforms([
      ["u32", rows],
      ["u32", c],
      ["u32", chunks],
      ["f32", momentum],
      ["f32", eps],
    ]),
    workgroups: [Math.ceil(c / WG)],
  };
}

const evalStatsCode = `
struct P { c: u32, eps: f32 }
@group(0) @binding(0) var<storage, read> run_mean: array<f32>;
@group(0) @binding(1) var<storage, read> run_var: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;
@group(0) @binding(3) var<uniform> u: P;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= u.c) { return; }
  stats[c] = run_mean[c];
  stats[u.c + c] = inverseSqrt(run_var[c] + u.eps);
}`;

/** Eval-mode stats [running mean; 1/sqrt(running var + eps)] into `stats` (f32[2C]). */
export function bnEvalStatsLaunch(
  runMean: Tensor,
  runVar: Tensor,
  stats: Tensor,
  c: number,
  eps: number,
): Launch {
  return {
    name: "batch_norm_eval_stats",
    code: evalStatsCode,
    bindings: [runMean.binding, runVar.binding, stats.binding],
    uniforms: packUniforms([["u32", c], ["f32", eps]]),
    workgroups: [Math.ceil(c / WG)],
  };
}

const gradFinalCode = `
struct P { c: u32, chunks: u32 }
@group(0) @binding(0) var<storage, read> part: array<f32>;
@group(0) @binding(1) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(2) var<storage, read_write> dbeta: array<f32>;
@group(0) @binding(3) var<uniform> u: P;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= u.c) { return; }
  ${SUM_PARTS}
  dbeta[c] = a;
  dgamma[c] = b;
}`;

/**
 * dbeta = sum(dy), dgamma = sum(dy * xhat) per channel, from the partials. `chunks`: the number
 * of partials per channel when they were not made by {@link bnGradPartialLaunch} over `rows` rows.
 */
export function bnGradFinalLaunch(
  part: Tensor,
  dgamma: Tensor,
  dbeta: Tensor,
  rows: number,
  c: number,
  chunks: number = bnChunks(rows).chunks,
): Launch {
  return {
    name: "batch_norm_grad_final",
    code: gradFinalCode,
    bindings: [part.binding, dgamma.binding, dbeta.binding],
    uniforms: packUniforms([["u32", c], ["u32", chunks]]),
    workgroups: [Math.ceil(c / WG)],
  };
}
