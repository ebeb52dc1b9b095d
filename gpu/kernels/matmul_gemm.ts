/**
 * The GEMM kernel family's shared parts: the operand interface (how a kernel reads A [M, K] and
 * B [K, N], be it a plain matrix or an implicit im2col view), the launch description common to
 * both variants (tile grid, split-K, batch decomposition, fused bias/ReLU epilogue) and the named
 * uniform fields. The variants are matmul_regblock.ts (no workgroup memory, for CPU adapters) and
 * matmul_tiled.ts (workgroup-memory tiles, for GPUs); {@link gemmLaunch} picks by config.
 * @module
 */
import type { Bindable, Launch } from "../engine.ts";
import { packUniforms, type UniformField } from "./util.ts";

/** A named uniform field: [name, type, value]. */
export type NamedField = [string, "u32" | "i32" | "f32", number];

/**
 * Register-blocked variant tile: threads WGM x WGN, each computing TM x TN outputs. `ks` = 8: the
 * workgroup is instead 8 threads with the same TM x TN tile, one k-split each (lane split-K, for
 * tiny M x N with long K such as conv weight gradients; wgm = wgn = 1, splits a multiple of 8).
 */
export interface RegblockConfig {
  /** Marks the register-blocked variant. */
  variant: "regblock";
  /** Threads along M. */
  wgm: number;
  /** Threads along N. */
  wgn: number;
  /** Output rows per thread. */
  tm: number;
  /** Output columns per thread. */
  tn: number;
  /** Lane split-K: 8 threads each take one k-split of the same tile. */
  ks?: number;
}
/**
 * Shared-memory tiled variant (matmul_tiled.ts): WGM x WGN threads, each computing TM x TN outputs,
 * BK-deep k slices. Without the tile fields: 16 x 16 threads of 4 x 4 outputs each.
 */
// The tile fields are optional; tileOf reads them.
export interface TiledConfig {
  /** Marks the workgroup-memory tiled variant. */
  variant: "tiled";
  /** Depth of a k slice staged in workgroup memory. */
  bk: number;
  /** Threads along M. */
  wgm?: number;
  /** Threads along N. */
  wgn?: number;
  /** Output rows per thread. */
  tm?: number;
  /** Output columns per thread. */
  tn?: number;
}
/** A kernel configuration. */
export type GemmConfig = RegblockConfig | TiledConfig;

/** What the variant generators provide to operand code. */
export interface OperandCtx {
  tm: number;
  tn: number;
  /** Whether k-steps may run past kEnd (K or the split chunk is not a multiple of 4). */
  kGuard: boolean;
}

/**
 * How a kernel reads one operand. Role "a" is the M x K left operand, "b" the K x N right one.
 * Register-blocked code sees `zb` (batch index), `bi0..bi3` (its decomposition), `m0`/`n0`
 * (the thread's first row/column), `k0` (first k of a 4-step), `kc0..kc3` (k0+kk clamped below
 * kEnd) and `kv1..kv3` (whether k0+kk < kEnd), and `p` (uniforms).
 */
export interface GemmOperand {
  /** Distinguishes generated code (cache key part). */
  key: string;
  /** Uniform fields this operand needs. */
  fields: NamedField[];
  /** Register-blocked: binding element type. */
  rbElem: "vec4<f32>" | "f32";
  /** Register-blocked: per-thread statements before the k loop. */
  rbSetup(c: OperandCtx): string;
  /** Register-blocked: statements per k-step of 4. */
  rbStep(c: OperandCtx): string;
  /** A: scalar WGSL for A[m0+x, k0+y]; B: vec4 WGSL for B[k0+x, n0+4y .. n0+4y+3]. */
  rbValue(x: number, y: number): string;
  /** Tiled: `fn <role>_at(zb: u32, bi: vec4<u32>, r: u32, c: u32) -> f32`, 0 outside (r, c < kEnd checked by caller). */
  scalarFn: string;
  /**
   * Further read-only arrays the operand's code reads (e.g. the second source of a fused
   * BatchNorm-backward operand), bound after O in this order ({@link GemmSpec.aExtra} /
   * {@link GemmSpec.bExtra}). Operands with extras support only the register-blocked accessors.
   */
  extra?: { name: string; elem: "vec4<f32>" | "f32"; write?: boolean }[];
  /** Relative cost of loading one element (see the plan options of kernels/tuning.ts); default 1. */
  loadCost?: number;
  /** Register-blocked: a sliding-window form of this A operand (see {@link RbWindow}). */
  rbWindow?: RbWindow;
  /**
   * Register-blocked A operands whose rows are a permutation of the output's: WGSL u32 expression
   * of the output row that thread row `i` (0 <= i < tm) is stored at (default `m0 + i`). Rows
   * are still guarded by `m0 + i < M`.
   */
  rbRow?(c: OperandCtx, i: number): string;
  /** Register-blocked: rows per thread must be a multiple of this (plans follow it). */
  rbTmMultiple?: number;
}

/**
 * A sliding-window form of a conv's A operand for the register-blocked variant: when a thread's
 * rows are runs of consecutive pixels of image rows ({@link windowFits}), the `taps` horizontal
 * taps of one (kh, channel quad) read overlapping pixels, so one loop iteration loads each run's
 * pixels once (run + taps - 1 of them) and runs the taps' k-steps on them (instead of tm loads
 * per k-step). The taps are a loop (`t`), each row's vec4 picked from the window by `select`
 * (an unrolled tap loop triples the loop body, and lavapipe's compile time grows faster than
 * that). Code sees what {@link GemmOperand} code sees, plus `q` (the iteration).
 */
export interface RbWindow {
  /** k-steps per iteration (the horizontal taps). */
  taps: number;
  /** Rows per thread must divide this (the output row width). */
  rowSpan: number;
  /** WGSL u32 expression: the number of iterations over K. */
  iterations: string;
  /** Per-thread statements before the loop. */
  setup(c: OperandCtx): string;
  /** Statements of iteration `q`: load the window. */
  step(c: OperandCtx): string;
  /** WGSL u32 expression: the first k of tap `t` (a WGSL u32 expression) in iteration `q`. */
  k0(t: string): string;
  /** The WGSL vec4 (a name from `step`) holding A[m0 + i, k0(t) .. k0(t) + 3] for tap `t`. */
  slot(c: OperandCtx, i: number, t: number): string;
}

/**
 * Whether a thread of `tm` rows can use a window over rows of `rowSpan` pixels in a GEMM of `M`
 * rows: its rows are whole segments of one image row (tm divides the row, or the row divides tm)
 * and no thread's rows straddle M.
 */
export function windowFits(rowSpan: number, tm: number, M: number): boolean {
  return (rowSpan % tm === 0 || tm % rowSpan === 0) && M % tm === 0;
}

/**
 * Fused stages of a GEMM launch (kernels/gemm_fusion.ts builds them): work every workgroup does
 * before the GEMM (`pre`: e.g. per-channel BatchNorm coefficients into workgroup memory, or a slice
 * of another GEMM's split-K reduction), and an epilogue on the output tile.
 */
export interface GemmFusion {
  /** Distinguishes generated code (cache key part). */
  key: string;
  /** Storage bindings, after the operands' extras, in the order `decl` numbers them. */
  bindings: Bindable[];
  /** Uniform fields (after the operands'). */
  fields: NamedField[];
  /**
   * WGSL declarations (storage and workgroup variables, helper functions), bindings from `first`,
   * for workgroups of `threads` invocations.
   */
  decl(first: number, threads: number): string;
  /**
   * WGSL statements at the start of `main`, run by every invocation: `lid.x` is the invocation,
   * `threads` the workgroup size, `wgLinear` / `wgCount` the workgroup's linear index and the
   * grid's size. Must end with a `workgroupBarrier()` if it wrote workgroup memory.
   */
  pre(threads: number): string;
  /** Output transform and tile reductions (needs N % 4 == 0 and no split-K). */
  epilogue?: GemmEpilogue;
}

/** One output vec4 (4 consecutive columns of one row) as a variant's epilogue sees it. */
export interface EpilogueElem {
  /** The WGSL `var` holding the value (may be modified by {@link GemmEpilogue.value}). */
  v: string;
  /** WGSL u32 expression of the row. */
  m: string;
  /** WGSL bool expression: the row is inside M (or "true"). */
  ok: string;
  /** The thread's column group (0 .. tn/4 - 1). */
  j: number;
}

/** What a variant tells its epilogue about the thread layout. */
export interface EpilogueCtx {
  threads: number;
  /** Threads along M and N: invocation `lid.x` is row thread `lid.x / wgn`, column thread `lid.x % wgn`. */
  wgm: number;
  wgn: number;
  /** Column groups (vec4s) per thread. */
  tn4: number;
  /** Rows per tile. */
  tileM: number;
  /** WGSL u32 expression of the first column of column group `j` of column thread `tx` (WGSL u32s). */
  col(tx: string, j: string): string;
}

/** A fused epilogue: per-column setup, a per-output transform, and a per-tile reduction. */
export interface GemmEpilogue {
  /** Module-scope declarations that depend on the tile (workgroup arrays). */
  moduleDecl(c: EpilogueCtx): string;
  /** Statements before the stores; `cols[j]` is the WGSL column of this thread's column group j. */
  setup(cols: string[]): string;
  /** Statements that may rewrite `e.v` before it is stored. */
  value(e: EpilogueElem): string;
  /** Statements after the stores (tile reductions over `elems`, partial writes). */
  finish(c: EpilogueCtx, elems: EpilogueElem[]): string;
}

/** Everything a GEMM launch needs. */
export interface GemmSpec {
  /** Kernel name for errors. */
  name: string;
  a: GemmOperand;
  b: GemmOperand;
  aBinding: Bindable;
  bBinding: Bindable;
  out: Bindable;
  bias?: Bindable;
  relu?: boolean;
  M: number;
  N: number;
  K: number;
  /** Output batches (grid z / splits); batch index decomposition dims (innermost last). */
  batch: number;
  batchDims?: [number, number, number, number];
  /** Split-K factor: partial results go to out[split][M][N] (batch must be 1). */
  splits?: number;
  config: GemmConfig;
  /** Bindings of `a.extra` / `b.extra`, in order. */
  aExtra?: Bindable[];
  bExtra?: Bindable[];
  /** Fused pre-stage and epilogue. */
  fusion?: GemmFusion;
  /** WGSL u32 expression (may use the batch index `zb`) capping K per batch (e.g. per parity class). */
  kLimit?: string;
}

/** WGSL struct text and packed values for named fields. */
export function uniformBlock(fields: NamedField[]): { struct: string; data: Uint32Array } {
  const struct = `struct P {\n${fields.map(([n, t]) => `  ${n}: ${t},`).join("\n")}\n}`;
  const data = packUniforms(fields.map(([, t, v]) => [t, v] as UniformField));
  return { struct, data };
}

/** Tile sizes of a config (rows x columns covered by one workgroup). */
export function tileOf(c: GemmConfig): { tileM: number; tileN: number } {
  if (c.variant === "tiled") {
    return c.tm ? { tileM: c.wgm! * c.tm, tileN: c.wgn! * c.tn! } : { tileM: 64, tileN: 64 };
  }
  return { tileM: c.wgm * c.tm, tileN: c.wgn * c.tn };
}

/** The core uniform fields and the workgroup grid for a spec. */
export function coreFields(s: GemmSpec): { fields: NamedField[]; grid: [number, number, number] } {
  const { tileM, tileN } = tileOf(s.config);
  const splits = s.splits ?? 1;
  if (splits > 1 && s.batch !== 1) {
    throw new Error(`collapse: ${s.name}: split-K needs batch 1 (got ${s.batch})`);
  }
  const kChunk = splits > 1 ? Math.ceil(s.K / splits / 4) * 4 : Math.max(4, Math.ceil(s.K / 4) * 4);
  const tilesN = Math.ceil(s.N / tileN);
  const tiles = tilesN * Math.ceil(s.M / tileM);
  const gx = Math.min(tiles, 65535);
  const gy = Math.ceil(tiles / gx);
  const lanesK = s.config.variant === "regblock" ? s.config.ks ?? 1 : 1;
  if (splits % lanesK !== 0) {
    throw new Error(`collapse: ${s.name}: ${splits} splits for ${lanesK} k-split lanes`);
  }
  const z = (s.batch * splits) / lanesK;
  if (z > 65535) throw new Error(`collapse: ${s.name}: ${z} batches exceed the grid limit`);
  const [d0, d1, d2, d3] = s.batchDims ?? [s.batch, 1, 1, 1];
  void d0;
  const fields: NamedField[] = [
    ["M", "u32", s.M],
    ["N", "u32", s.N],
    ["K", "u32", s.K],
    ["kChunk", "u32", kChunk],
    ["splits", "u32", splits],
    ["tilesN", "u32", tilesN],
    ["tiles", "u32", tiles],
    ["d1", "u32", d1],
    ["d2", "u32", d2],
    ["d3", "u32", d3],
  ];
  return { fields, grid: [gx, gy, z] };
}

/** Whether the K loop needs per-k guards (a 4-step may cross kEnd). */
export function needsKGuard(s: GemmSpec): boolean {
  return s.K % 4 !== 0;
}

/** What a launch of either variant derives from a spec. */
export interface SpecLayout {
  grid: [number, number, number];
  /** The uniform struct (core then operand fields) and its packed values. */
  struct: string;
  data: Uint32Array;
  /** One workgroup per tile (see {@link prologue}). */
  exactGrid: boolean;
  /** See {@link needsKGuard}. */
  kGuard: boolean;
  /** N % 4 == 0: vec4 stores. */
  vecOut: boolean;
}

/** The grid, uniforms and code flags of a spec (shared by both variants). */
export function specLayout(s: GemmSpec): SpecLayout {
  const { fields, grid } = coreFields(s);
  const { struct, data } = uniformBlock([
    ...fields,
    ...s.a.fields,
    ...s.b.fields,
    ...(s.fusion?.fields ?? []),
  ]);
  const tiles = fields.find(([n]) => n === "tiles")![2];
  return {
    grid,
    struct,
    data,
    exactGrid: grid[0] * grid[1] === tiles,
    kGuard: needsKGuard(s),
    vecOut: s.N % 4 === 0,
  };
}

/**
 * WGSL statements shared by both variants: tile, batch and split indices. `exactGrid`: the grid has
 * exactly one workgroup per tile (no early return, which would put the whole kernel under an
 * execution mask on lavapipe). `laneSplit`: lane split-K (see {@link RegblockConfig}).
 */
export function prologue(
  tileM: number,
  tileN: number,
  exactGrid = false,
  laneSplit = false,
  kLimit?: string,
): string {
  const split = laneSplit
    ? `let zb = 0u;
  let zs = wid.z * 8u + lid.x;`
    : `let zb = wid.z / p.splits;
  let zs = wid.z % p.splits;`;
  return `
  let t = wid.x + wid.y * nwg.x;${exactGrid ? "" : "\n  if (t >= p.tiles) { return; }"}
  let tmi = t / p.tilesN;
  let tni = t % p.tilesN;
  ${split}
  let bi3 = zb % p.d3;
  let bq2 = zb / p.d3;
  let bi2 = bq2 % p.d2;
  let bq1 = bq2 / p.d2;
  let bi1 = bq1 % p.d1;
  let bi0 = bq1 / p.d1;
  let mT = tmi * ${tileM}u;
  let nT = tni * ${tileN}u;
  let kBegin = zs * p.kChunk;
  let kEnd = min(${kLimit ? `min(p.K, ${kLimit})` : "p.K"}, kBegin + p.kChunk);
  let outBase = ${laneSplit ? "zs" : "wid.z"} * p.M * p.N;`;
}

/**
 * The binding declarations of a spec: A, B, bias, O, the operands' extras, the fusion's, then the
 * uniforms `p` (the engine binds uniforms last).
 */
export function bindingDecls(
  s: GemmSpec,
  biasElem: string,
  outElem: string,
  threads: number,
): string {
  let bind = 0;
  const decl = [
    `@group(0) @binding(${bind++}) var<storage, read> A: array<${s.a.rbElem}>;`,
    `@group(0) @binding(${bind++}) var<storage, read> B: array<${s.b.rbElem}>;`,
  ];
  if (s.bias) {
    decl.push(`@group(0) @binding(${bind++}) var<storage, read> bias: array<${biasElem}>;`);
  }
  decl.push(`@group(0) @binding(${bind++}) var<storage, read_write> O: array<${outElem}>;`);
  for (const x of [...(s.a.extra ?? []), ...(s.b.extra ?? [])]) {
    decl.push(
      `@group(0) @binding(${bind++}) var<storage, ${
        x.write ? "read_write" : "read"
      }> ${x.name}: array<${x.elem}>;`,
    );
  }
  if (s.fusion) {
    decl.push(s.fusion.decl(bind, threads));
    bind += s.fusion.bindings.length;
  }
  decl.push(`@group(0) @binding(${bind++}) var<uniform> p: P;`);
  return decl.join("\n");
}

/** WGSL: the fusion's pre-stage with the workgroup's linear index and the grid size, or "". */
export function fusionPre(s: GemmSpec, threads: number): string {
  if (!s.fusion) return "";
  return `  let wgLinear = wid.x + (wid.y + wid.z * nwg.y) * nwg.x;
  let wgCount = nwg.x * nwg.y * nwg.z;
${s.fusion.pre(threads)}`;
}

/** Builds the {@link Launch} of a spec with the given generated source. */
export function launchOf(
  s: GemmSpec,
  code: string,
  data: Uint32Array,
  grid: [number, number, number],
): Launch {
  const bindings = [s.aBinding, s.bBinding];
  if (s.bias) bindings.push(s.bias);
  bindings.push(s.out, ...(s.aExtra ?? []), ...(s.bExtra ?? []), ...(s.fusion?.bindings ?? []));
  return {
    name: s.name,
    code,
    bindings,
    uniforms: data,
    workgroups: grid,
    flops: 2 * s.M * s.N * s.K * s.batch,
  };
}

/** `.x` `.y` `.z` `.w` by index. */
export const XYZW = ["x", "y", "z", "w"];
