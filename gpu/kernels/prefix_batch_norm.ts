/**
 * Kernels: BatchNorm (+ ReLU) over the first `c` channels of a channels-last buffer whose rows are
 * `ld` floats apart, read in place (a dense block's growing feature map: a layer normalises the
 * channel prefix written so far without copying it out). With `ld = c` they serve contiguous
 * tensors too.
 * - partial sums per chunk of rows: the shifted sums of x and x^2 (forward statistics; the final
 *   pass is batch_norm_reduce.ts `bnStatsFinalLaunch` with the shift as its x), or of g and
 *   g * xhat with g = dy masked by the ReLU (backward; final pass `bnGradFinalLaunch`). A batch
 *   may be split into parts (groups of images) that each write their own chunks ({@link ChunkPlan}),
 *   so no binding needs to cover the whole batch;
 * - apply: out [rows, c] (contiguous) = relu?((x - mean) * invstd * gamma + beta);
 * - backward: dx = gamma * invstd * (g - sum(g) / M - xhat * sum(g * xhat) / M) (training; eval
 *   without the batch terms), written to or accumulated into a buffer of row stride `ldx`.
 * `stats` holds [mean; invstd] (f32[2C]), as in batch_norm_apply.ts.
 * @module
 */
import type { Launch } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import { bnChunks } from "./batch_norm_reduce.ts";
import { cached, grid1d, main1d, packUniforms, wgReduce } from "./util.ts";

const CW = 16; // channels per workgroup (partial sums)
const RW = 16; // row lanes per workgroup (partial sums)
const WG = 256; // elementwise passes

/** Where a kernel reads or writes a channel prefix: a tensor and its row stride in floats. */
export interface PrefixView {
  t: Tensor;
  /** Floats between consecutive rows (pixels); >= the channel count used. */
  ld: number;
}

// WGSL: the BN output of value v of a channel (the same expression in every kernel, so the ReLU
// mask of the backward agrees with the forward's).
const BN_Y = `fn bn_y(v: f32, mean: f32, inv: f32, g: f32, b: f32) -> f32 {
  return (v - mean) * inv * g + b;
}`;

const partialCache = new Map<string, string>();

function partialSource(grad: boolean, relu: boolean): string {
  return cached(partialCache, `${grad}:${relu}`, () => {
    const decls = grad
      ? `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> stats: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> part: array<f32>;
@group(0) @binding(6) var<uniform> u: P;`
      : `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> shift: array<f32>;
@group(0) @binding(2) var<storage, read_write> part: array<f32>;
@group(0) @binding(3) var<uniform> u: P;`;
    const setup = grad
      ? "let mean = stats[c]; let inv = stats[u.c + c]; let gm = gamma[c]; let bt = beta[c];"
      : "let k = shift[c];";
    const mask = relu ? " if (bn_y(xv, mean, inv, gm, bt) <= 0.0) { g = 0.0; }" : "";
    const body = grad
      ? `let xh = (xv - mean) * inv; var g = dy[r * u.c + c];${mask} a = a + g; b = b + g * xh;`
      : "let v = xv - k; a = a + v; b = b + v * v;";
    return `
struct P { rows: u32, c: u32, ld: u32, rows_per_chunk: u32, chunks: u32, chunk0: u32 }
${decls}
${BN_Y}
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
      let xv = x[r * u.ld + c];
      ${body}
    }
  }
  let li = lid.y * ${CW}u + lid.x;
  s1[li] = a;
  s2[li] = b;
  ${wgReduce(["s1", "s2"], RW, { lane: "lid.y", at: "li", step: CW })}
  if (lid.y == 0u && c < u.c) {
    let q = u.chunk0 + wid.y;
    part[q * u.c + c] = s1[lid.x];
    part[(u.chunks + q) * u.c + c] = s2[lid.x];
  }
}`;
  });
}

/**
 * How the rows of a (possibly split) batch map to partial-sum chunks: every part of the batch cuts
 * its rows into chunks of `rowsPerChunk`, its first chunk being number `chunk0` of `chunks` in all.
 * `part` tensors hold [2, chunks, c] values; the final passes of batch_norm_reduce.ts take `chunks`.
 */
export interface ChunkPlan {
  rowsPerChunk: number;
  chunk0: number;
  chunks: number;
}

/** The {@link ChunkPlan}s of a batch split into parts of `rows[i]` rows (one part: `[rows]`). */
export function chunkPlans(rows: readonly number[]): ChunkPlan[] {
  const total = rows.reduce((a, b) => a + b, 0);
  const rowsPerChunk = bnChunks(total).rowsPerChunk;
  const counts = rows.map((r) => Math.max(1, Math.ceil(r / rowsPerChunk)));
  const chunks = counts.reduce((a, b) => a + b, 0);
  let at = 0;
  return counts.map((n) => {
    const p = { rowsPerChunk, chunk0: at, chunks };
    at += n;
    return p;
  });
}

function partialUniforms(rows: number, c: number, ld: number, plan: ChunkPlan): Uint32Array {
  return packUniforms([
    ["u32", rows],
    ["u32", c],
    ["u32", ld],
    ["u32", plan.rowsPerChunk],
    ["u32", plan.chunks],
    ["u32", plan.chunk0],
  ]);
}

function checkLd(name: string, v: PrefixView, rows: number, c: number): void {
  if (v.ld < c || v.t.size < (rows - 1) * v.ld + c) {
    throw new Error(
      `collapse: ${name}: ${v.t.describe()} cannot hold ${rows} rows of ${c} channels ${v.ld} apart`,
    );
  }
}

function partialGrid(rows: number, c: number, plan: ChunkPlan): [number, number] {
  return [Math.ceil(c / CW), Math.max(1, Math.ceil(rows / plan.rowsPerChunk))];
}

/**
 * Partial sums of x - shift and (x - shift)^2 of channels [0, c) of `x` (rows `ld` apart) per chunk
 * of rows, into `part` (f32[2 * chunks * c]) at the plan's chunks; finish with
 * `bnStatsFinalLaunch(shift, part, ..., chunks)` (which adds the shift back). `shift` [c] is any
 * row of the batch (the first), against cancellation.
 */
export function prefixBnStatsPartialLaunch(
  x: PrefixView,
  shift: Tensor,
  part: Tensor,
  rows: number,
  c: number,
  plan: ChunkPlan,
): Launch {
  checkLd("prefixBnStatsPartial", x, rows, c);
  return {
    name: "prefix_batch_norm_stats_partial",
    code: partialSource(false, false),
    bindings: [x.t.binding, shift.binding, part.binding],
    uniforms: partialUniforms(rows, c, x.ld, plan),
    workgroups: partialGrid(rows, c, plan),
  };
}

/** The per-channel parameters and statistics a BN kernel reads. */
export interface BnVectors {
  /** [mean; invstd], f32[2c]. */
  stats: Tensor;
  gamma: Tensor;
  beta: Tensor;
}

/**
 * Partial sums of g and g * xhat per chunk of rows, with g = dy [rows, c] (contiguous), zeroed
 * where the forward's ReLU was off when `relu`, into `part` at the plan's chunks; finish with
 * `bnGradFinalLaunch(..., chunks)` (dgamma, dbeta).
 */
export function prefixBnGradPartialLaunch(
  x: PrefixView,
  dy: Tensor,
  v: BnVectors,
  part: Tensor,
  rows: number,
  c: number,
  relu: boolean,
  plan: ChunkPlan,
): Launch {
  checkLd("prefixBnGradPartial", x, rows, c);
  return {
    name: "prefix_batch_norm_grad_partial",
    code: partialSource(true, relu),
    bindings: [
      x.t.binding,
      dy.binding,
      v.stats.binding,
      v.gamma.binding,
      v.beta.binding,
      part.binding,
    ],
    uniforms: partialUniforms(rows, c, x.ld, plan),
    workgroups: partialGrid(rows, c, plan),
  };
}

const applyCache = new Map<boolean, string>();

function applySource(relu: boolean): string {
  return cached(applyCache, relu, () => `
struct P { n: u32, c: u32, ld: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> stats: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<uniform> u: P;
${BN_Y}
${main1d(WG)}
  if (i >= u.n) { return; }
  let r = i / u.c;
  let k = i - r * u.c;
  let v = bn_y(x[r * u.ld + k], stats[k], stats[u.c + k], gamma[k], beta[k]);
  y[i] = ${relu ? "select(v, 0.0, v < 0.0)" : "v"};
}`);
}

/** y [rows, c] (contiguous) = relu?((x - mean) * invstd * gamma + beta) of channels [0, c) of x. */
export function prefixBnApplyLaunch(
  x: PrefixView,
  v: BnVectors,
  y: Tensor,
  rows: number,
  c: number,
  relu: boolean,
): Launch {
  checkLd("prefixBnApply", x, rows, c);
  const n = rows * c;
  return {
    name: "prefix_batch_norm_relu",
    code: applySource(relu),
    bindings: [x.t.binding, v.stats.binding, v.gamma.binding, v.beta.binding, y.binding],
    uniforms: packUniforms([["u32", n], ["u32", c], ["u32", x.ld]]),
    workgroups: grid1d(n, WG),
  };
}

const backwardCache = new Map<string, string>();

function backwardSource(training: boolean, relu: boolean, accumulate: boolean): string {
  return cached(backwardCache, `${training}:${relu}:${accumulate}`, () => {
    const mask = relu ? "\n  if (bn_y(xv, mean, inv, gm, beta[k]) <= 0.0) { g = 0.0; }" : "";
    const grad = training
      ? "gm * inv * (g - sum_dy[k] / m - (xv - mean) * inv * sum_dy_xhat[k] / m)"
      : "gm * inv * g";
    const store = accumulate ? "dx[o] = dx[o] + d;" : "dx[o] = d;";
    const names = ["x", "dy", "stats", "gamma", "beta"];
    if (training) names.push("sum_dy_xhat", "sum_dy");
    const decls = names.map((n, i) =>
      `@group(0) @binding(${i}) var<storage, read> ${n}: array<f32>;`
    );
    return `
struct P { n: u32, c: u32, ld: u32, ldx: u32, rows: u32 }
${decls.join("\n")}
@group(0) @binding(${names.length}) var<storage, read_write> dx: array<f32>;
@group(0) @binding(${names.length + 1}) var<uniform> u: P;
${BN_Y}
${main1d(WG)}
  if (i >= u.n) { return; }
  let r = i / u.c;
  let k = i - r * u.c;
  let xv = x[r * u.ld + k];
  let mean = stats[k];
  let inv = stats[u.c + k];
  let gm = gamma[k];
  let m = f32(u.rows);
  var g = dy[i];${mask}
  let d = ${grad};
  let o = r * u.ldx + k;
  ${store}
}`;
  });
}

/** How {@link prefixBnBackwardLaunch} runs. */
export interface PrefixBnBackwardMode {
  /** Through the batch statistics (training; needs the sums) or the running ones (eval). */
  training: boolean;
  /** The forward applied a ReLU after the BN (its mask is recomputed from x). */
  relu: boolean;
  /** Add into `dx` instead of overwriting it. */
  accumulate: boolean;
  /** Rows the batch statistics were taken over (default `rows`: the batch is not split). */
  batchRows?: number;
}

/** The per-channel sums a training-mode BN backward reads (dgamma and dbeta of the final pass). */
export interface BnGradSums {
  /** sum(g * xhat) per channel. */
  sumDyXhat: Tensor;
  /** sum(g) per channel. */
  sumDy: Tensor;
}

/**
 * dx of channels [0, c) from dy [rows, c] (contiguous) into `dx` (rows `ldx` apart), overwritten or
 * accumulated. Training mode needs `sums` ({@link prefixBnGradPartialLaunch} + `bnGradFinalLaunch`);
 * eval mode ignores them.
 */
export function prefixBnBackwardLaunch(
  x: PrefixView,
  dy: Tensor,
  v: BnVectors,
  sums: BnGradSums | null,
  dx: PrefixView,
  rows: number,
  c: number,
  mode: PrefixBnBackwardMode,
): Launch {
  checkLd("prefixBnBackward", x, rows, c);
  checkLd("prefixBnBackward", dx, rows, c);
  if (mode.training && !sums) {
    throw new Error("collapse: prefixBnBackward: training mode needs the gradient sums");
  }
  const n = rows * c;
  const bindings = [x.t.binding, dy.binding, v.stats.binding, v.gamma.binding, v.beta.binding];
  if (mode.training) bindings.push(sums!.sumDyXhat.binding, sums!.sumDy.binding);
  bindings.push(dx.t.binding);
  return {
    name: mode.accumulate ? "prefix_batch_norm_backward_accumulate" : "prefix_batch_norm_backward",
    code: backwardSource(mode.training, mode.relu, mode.accumulate),
    bindings,
    uniforms: packUniforms([
      ["u32", n],
      ["u32", c],
      ["u32", x.ld],
      ["u32", dx.ld],
      ["u32", mode.batchRows ?? rows],
    ]),
    workgroups: grid1d(n, WG),
  };
}
