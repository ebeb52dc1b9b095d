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
 *
 * Every kernel runs one invocation per (channel, block of rows): consecutive invocations take
 * consecutive channels (coalesced on GPUs), each loads its channel's constants once and loops over
 * its rows with one load and one store per element, no integer division per element and no
 * workgroup memory (on lavapipe, where every load is a per-lane loop, barriers are coroutine
 * switches and runtime divisions are scalarised, this is several times faster than the
 * elementwise/tree-reduction layout of batch_norm_*.ts). CPU adapters get few long row blocks, GPUs
 * many short ones ({@link chunkPlans}).
 * @module
 */
import type { Launch } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import { bnChunks } from "./batch_norm_reduce.ts";
import { kernelMode } from "./tuning.ts";
import { cached, grid1d, main1d, packUniforms } from "./util.ts";

const WG = 64;
/** Invocations to aim for per elementwise launch (CPU: a few per SIMD lane; GPU: many). */
const TARGET_THREADS = { cpu: 4096, gpu: 1 << 20 };
/** Row chunks of the partial sums to aim for on a CPU adapter (GPUs: bnChunks's). */
const CPU_CHUNKS = 16;

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

// WGSL after main1d: channel k and row block q of invocation i, rows [r0, r1) (uniforms c, rows,
// rpt = rows per block, blocks).
const BLOCK = `let k = i % u.c;
  let q = i / u.c;
  if (q >= u.blocks) { return; }
  let r0 = q * u.rpt;
  let r1 = min(r0 + u.rpt, u.rows);`;

const BLOCK_FIELDS = "c: u32, rows: u32, rpt: u32, blocks: u32";

function blockUniforms(rows: number, c: number, rpt: number): [["u32", number][], number] {
  const blocks = Math.max(1, Math.ceil(rows / rpt));
  return [[["u32", c], ["u32", rows], ["u32", rpt], ["u32", blocks]], c * blocks];
}

/** Rows per invocation of an elementwise pass over rows x c. */
function rowsPerThread(rows: number, c: number): number {
  const target = TARGET_THREADS[kernelMode()];
  return Math.max(1, Math.min(rows, Math.ceil((rows * c) / target)));
}

const partialCache = new Map<string, string>();

function partialSource(grad: boolean, relu: boolean): string {
  return cached(partialCache, `${grad}:${relu}`, () => {
    const names = grad ? ["x", "dy", "stats", "gamma", "beta"] : ["x", "shift"];
    const decls = names.map((n, j) =>
      `@group(0) @binding(${j}) var<storage, read> ${n}: array<f32>;`
    );
    const setup = grad
      ? "let mean = stats[k]; let inv = stats[u.c + k]; let gm = gamma[k]; let bt = beta[k];"
      : "let s = shift[k];";
    const mask = relu ? "\n    if (bn_y(xv, mean, inv, gm, bt) <= 0.0) { g = 0.0; }" : "";
    const body = grad
      ? `let xh = (xv - mean) * inv;
    var g = dy[r * u.c + k];${mask}
    a = a + g;
    b = b + g * xh;`
      : `let v = xv - s;
    a = a + v;
    b = b + v * v;`;
    return `
struct P { ${BLOCK_FIELDS}, ld: u32, chunks: u32, chunk0: u32 }
${decls.join("\n")}
@group(0) @binding(${names.length}) var<storage, read_write> part: array<f32>;
@group(0) @binding(${names.length + 1}) var<uniform> u: P;
${BN_Y}
${main1d(WG)}
  ${BLOCK}
  ${setup}
  var a = 0.0;
  var b = 0.0;
  for (var r = r0; r < r1; r = r + 1u) {
    let xv = x[r * u.ld + k];
    ${body}
  }
  let p = u.chunk0 + q;
  part[p * u.c + k] = a;
  part[(u.chunks + p) * u.c + k] = b;
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

/**
 * The {@link ChunkPlan}s of a batch split into parts of `rows[i]` rows (one part: `[rows]`): on a
 * GPU chunks as batch_norm_reduce.ts makes them (>= 64 rows, <= ~512 chunks), on a CPU adapter
 * about 16 long chunks.
 */
export function chunkPlans(rows: readonly number[]): ChunkPlan[] {
  const total = rows.reduce((a, b) => a + b, 0);
  const rowsPerChunk = kernelMode() === "cpu"
    ? Math.max(1, Math.ceil(total / CPU_CHUNKS))
    : bnChunks(total).rowsPerChunk;
  const counts = rows.map((r) => Math.max(1, Math.ceil(r / rowsPerChunk)));
  const chunks = counts.reduce((a, b) => a + b, 0);
  let at = 0;
  return counts.map((n) => {
    const p = { rowsPerChunk, chunk0: at, chunks };
    at += n;
    return p;
  });
}

function partialLaunch(
  name: string,
  code: string,
  bindings: Tensor[],
  x: PrefixView,
  rows: number,
  c: number,
  plan: ChunkPlan,
): Launch {
  checkLd(name, x, rows, c);
  const [fields, threads] = blockUniforms(rows, c, plan.rowsPerChunk);
  return {
    name,
    code,
    bindings: bindings.map((t) => t.binding),
    uniforms: packUniforms([
      ...fields,
      ["u32", x.ld],
      ["u32", plan.chunks],
      ["u32", plan.chunk0],
    ]),
    workgroups: grid1d(threads, WG),
  };
}

function checkLd(name: string, v: PrefixView, rows: number, c: number): void {
  if (v.ld < c || v.t.size < (rows - 1) * v.ld + c) {
    throw new Error(
      `collapse: ${name}: ${v.t.describe()} cannot hold ${rows} rows of ${c} channels ${v.ld} apart`,
    );
  }
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
  return partialLaunch(
    "prefix_batch_norm_stats_partial",
    partialSource(false, false),
    [x.t, shift, part],
    x,
    rows,
    c,
    plan,
  );
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
  return partialLaunch(
    "prefix_batch_norm_grad_partial",
    partialSource(true, relu),
    [x.t, dy, v.stats, v.gamma, v.beta, part],
    x,
    rows,
    c,
    plan,
  );
}

const applyCache = new Map<boolean, string>();

function applySource(relu: boolean): string {
  return cached(applyCache, relu, () => `
struct P { ${BLOCK_FIELDS}, ld: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> stats: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<uniform> u: P;
${BN_Y}
${main1d(WG)}
  ${BLOCK}
  let mean = stats[k];
  let inv = stats[u.c + k];
  let gm = gamma[k];
  let bt = beta[k];
  for (var r = r0; r < r1; r = r + 1u) {
    let v = bn_y(x[r * u.ld + k], mean, inv, gm, bt);
    y[r * u.c + k] = ${relu ? "select(v, 0.0, v < 0.0)" : "v"};
  }
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
  const [fields, threads] = blockUniforms(rows, c, rowsPerThread(rows, c));
  return {
    name: "prefix_batch_norm_relu",
    code: applySource(relu),
    bindings: [x.t.binding, v.stats.binding, v.gamma.binding, v.beta.binding, y.binding],
    uniforms: packUniforms([...fields, ["u32", x.ld]]),
    workgroups: grid1d(threads, WG),
  };
}

const backwardCache = new Map<string, string>();

function backwardSource(training: boolean, relu: boolean, accumulate: boolean): string {
  return cached(backwardCache, `${training}:${relu}:${accumulate}`, () => {
    const names = ["x", "dy", "stats", "gamma", "beta"];
    if (training) names.push("sum_dy_xhat", "sum_dy");
    const decls = names.map((n, i) =>
      `@group(0) @binding(${i}) var<storage, read> ${n}: array<f32>;`
    );
    const mask = relu ? "\n    if (bn_y(xv, mean, inv, gm, bt) <= 0.0) { g = 0.0; }" : "";
    // training: dx = scale * (g - mg - (x - mean) * inv * mgx), per-channel constants hoisted.
    const consts = training
      ? `let m = f32(u.batch_rows);
  let mg = sum_dy[k] / m;
  let mgx = sum_dy_xhat[k] / m;`
      : "";
    const grad = training ? "scale * (g - mg - (xv - mean) * inv * mgx)" : "scale * g";
    const store = accumulate ? "dx[o] = dx[o] + d;" : "dx[o] = d;";
    return `
struct P { ${BLOCK_FIELDS}, ld: u32, ldx: u32, batch_rows: u32 }
${decls.join("\n")}
@group(0) @binding(${names.length}) var<storage, read_write> dx: array<f32>;
@group(0) @binding(${names.length + 1}) var<uniform> u: P;
${BN_Y}
${main1d(WG)}
  ${BLOCK}
  let mean = stats[k];
  let inv = stats[u.c + k];
  let gm = gamma[k];
  let bt = beta[k];
  let scale = gm * inv;
  ${consts}
  for (var r = r0; r < r1; r = r + 1u) {
    let xv = x[r * u.ld + k];
    var g = dy[r * u.c + k];${mask}
    let d = ${grad};
    let o = r * u.ldx + k;
    ${store}
  }
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
  const bindings = [x.t.binding, dy.binding, v.stats.binding, v.gamma.binding, v.beta.binding];
  if (mode.training) bindings.push(sums!.sumDyXhat.binding, sums!.sumDy.binding);
  bindings.push(dx.t.binding);
  const [fields, threads] = blockUniforms(rows, c, rowsPerThread(rows, c));
  return {
    name: mode.accumulate ? "prefix_batch_norm_backward_accumulate" : "prefix_batch_norm_backward",
    code: backwardSource(mode.training, mode.relu, mode.accumulate),
    bindings,
    uniforms: packUniforms([
      ...fields,
      ["u32", x.ld],
      ["u32", dx.ld],
      ["u32", mode.batchRows ?? rows],
    ]),
    workgroups: grid1d(threads, WG),
  };
}
