/**
 * Kernel tuning in one place (like tfjs-backend-webgpu's flags): which GEMM variant runs on this
 * adapter, its tile shape for a problem size (register-blocked: the cheapest shape under a small
 * cost model of lavapipe, see {@link TUNING}; GPU tiled: the cheapest tile and split-K under a
 * small GPU model), and the split-K factor. CPU (fallback) adapters get the register-blocked
 * variant, GPUs `TUNING.gpuVariant` (the shared-memory tiled one); override with the environment
 * variable `COLLAPSE_KERNELS=cpu|gpu` or {@link setKernelMode}.
 * @module
 */
import { gpu } from "../device.ts";
import {
  type GemmConfig,
  type RegblockConfig,
  type TiledConfig,
  windowFits,
} from "./matmul_gemm.ts";

/** "cpu": register-blocked, no workgroup memory; "gpu": workgroup-memory tiles. */
export type KernelMode = "cpu" | "gpu";

/** A GEMM variant name, as tests force it. */
export type GemmVariant = "regblock" | "tiled";

let forced: KernelMode | null = null;

/** Forces a kernel mode for every later launch (null: back to the adapter's default). */
export function setKernelMode(mode: KernelMode | null): void {
  forced = mode;
}

function envMode(): KernelMode | null {
  try {
    const v = Deno.env.get("COLLAPSE_KERNELS");
    return v === "cpu" || v === "gpu" ? v : null;
  } catch {
    return null; // no env permission
  }
}

function envFastCompile(): boolean {
  try {
    return Deno.env.get("COLLAPSE_TUNING") === "fast-compile";
  } catch {
    return false; // no env permission
  }
}

/** Whether kernels trade speed for compile time ({@link TUNING}`.fastCompile`). */
export function fastCompile(): boolean {
  return TUNING.fastCompile;
}

/** Whether the adapter is a software (CPU) one: a fallback adapter, llvmpipe, SwiftShader, WARP. */
export function softwareAdapter(): boolean {
  const a = gpu().adapter;
  return a.isFallbackAdapter || /llvmpipe|lavapipe|swiftshader|warp/i.test(a.description);
}

/** The kernel mode in force: forced, else `COLLAPSE_KERNELS`, else by adapter type. */
export function kernelMode(): KernelMode {
  if (forced) return forced;
  const env = envMode();
  if (env) return env;
  return softwareAdapter() ? "cpu" : "gpu";
}

function envAutotune(): boolean {
  try {
    return Deno.env.get("COLLAPSE_AUTOTUNE") === "1";
  } catch {
    return false; // no env permission
  }
}

function envHalfActivations(): boolean {
  try {
    return Deno.env.get("COLLAPSE_ACTIVATIONS") === "f16";
  } catch {
    return false; // no env permission
  }
}

/** Tuning constants (measured on lavapipe, 2 cores, AVX2; see bench/kernels_bench.ts). */
export const TUNING = {
  /**
   * Register-blocked cost model, per output element and k, in CPU cycles per SIMD lane: every
   * storage load costs `rbLoad` per float (lavapipe 22.x gathers each lane's vec4 in a scalar loop),
   * every multiply-add `rbFma` (accumulators spill to the stack). Measured on 1024^3: 16x16 outputs
   * per thread 5.1 GFLOP per CPU-second, 32x32 7.4.
   */
  rbLoad: 4.4,
  rbFma: 0.42,
  /** Register-blocked: most accumulators (tm * tn) per thread; small problems use fewer (compile time). */
  rbMaxAcc: 1024,
  rbSmallAcc: 256,
  /**
   * Register-blocked under `COLLAPSE_TUNING=fast-compile`: problems below `rbFastWork`
   * multiply-adds get at most `rbFastAcc` accumulators per thread, larger ones `rbSmallAcc`.
   */
  rbFastAcc: 32,
  rbFastWork: 1 << 22,
  /**
   * Register-blocked A operands with grouped rows (the windowed conv weight gradient): most
   * accumulators per thread. Measured on lavapipe, stage-2/3 weight gradients: 48 x 32 per thread
   * 1.2x faster than 48 x 16.
   */
  rbMaxAccGrouped: 1536,
  /** Register-blocked: most rows per thread when A is read with scalar loads. */
  rbScalarMaxTm: 32,
  /**
   * Register-blocked: problems below this many multiply-adds count as small (at most `rbSmallAcc`
   * accumulators per thread). Large tiles take lavapipe minutes to compile: the `mod.ts` example
   * (ResNet-32 at batch 64 on 16x16, 37.7M multiply-adds per conv) ran in 6 min 7 s from a cold
   * shader cache with 2^25 and in 62 s with every GEMM of it below the threshold (warm: 9.1-10.0 s
   * and 3.8-4.0 s). ResNet-32 at batch 128 on 32x32 keeps them for every conv (302M multiply-adds,
   * the RGB stem 75M): with the stem on small tiles too (2^27), its forward and weight gradient ran
   * at 0.67 and 0.55 of the matmul instead of 0.79 and 0.84 (timestamps, bench/step_profile.ts).
   */
  rbBigWork: 1 << 26,
  /** Register-blocked: explicit fma() (else a * b + c; no measurable difference, loads dominate). */
  rbUseFma: false,
  /** Conv: bake the geometry into the source for convs of at least this many multiply-adds. */
  bakeWork: 1 << 22,
  /** Tiled baseline kernel (no tile fields, `gpuTiledLegacy`): k-slice depth. */
  tiledBk: 16,
  /**
   * GPU mode: the default GEMM variant. Measured on an NVIDIA H200 through Vulkan in one run of
   * bench/device_check.ts: ResNet-32 training step 8,177 images/s at batch 128 and 18,494 at 512
   * with "tiled", 4,697 and 9,185 with the GPU register-blocked plan; conv2d at ResNet-32 shapes
   * 0.8-2.5 TFLOP/s tiled vs 0.04-0.85 register-blocked.
   */
  gpuVariant: "tiled" as GemmVariant,
  /** GPU mode, tiled: run the first fixed 64 x 64 version instead (a benchmark baseline). */
  gpuTiledLegacy: false,
  /** GPU mode, tiled: force this tile (benches); null: the cheapest under {@link tiledPlan}'s model. */
  gpuTiledForce: null as TiledConfig | null,
  /** GPU model: streaming multiprocessors, resident threads each, MACs per SM-second. */
  gpuSms: 132,
  gpuThreadsPerSm: 1024,
  gpuSmMacs: 2.5e11,
  /** GPU model: memory bytes per second, seconds per extra dispatch (split-K reduction). */
  gpuBytes: 3e12,
  gpuDispatch: 5e-6,
  /** GPU split-K: at most this many splits, at least this many k per split. */
  gpuMaxSplits: 512,
  gpuMinSplitK: 256,
  /** Split-K: aim for at least this many workgroups (CPU, GPU register-blocked). */
  minGroups: { cpu: 32, gpu: 1024 },
  /** Split-K: at least this many k per split. */
  minSplitK: 256,
  /** Split-K: at most this many splits. */
  maxSplits: 64,
  /**
   * Row kernels of the fused conv + BatchNorm ops (kernels/bn_rows.ts): threads per workgroup
   * and workgroups per launch (also the partials a reducing one writes, which every workgroup of
   * the next kernel combines), and `sweep`: threads that walk one contiguous block of the
   * workgroup's rows together (0: all of them, interleaved).
   */
  rowKernel: {
    cpu: { threads: 64, groups: 32, sweep: 8 },
    gpu: { threads: 256, groups: 264, sweep: 0 },
  },
  /** Training-mode BatchNorm over at most this many rows runs one dispatch each way (batch_norm_small.ts). */
  bnSmallRows: 4096,
  /**
   * The NaN-propagating ReLU as `select(v, 0, v < 0)` (an ordered compare is false for NaN; 2
   * vector ops) instead of a bit test of the NaN pattern (5): null (default) on software adapters,
   * whose compilers keep IEEE comparisons (checked by tests/gpu_fused_block_test.ts); GPU compilers
   * may assume no NaNs, so they get the bit test.
   */
  reluByCompare: null as boolean | null,
  /**
   * Register-blocked stride-1 convs (CPU kernels): load each input pixel once for the kernel's
   * horizontal taps where a thread's rows fit image rows (forward, backward-data: `RbWindow` in
   * matmul_gemm.ts), and group weight-gradient rows so the taps share loads
   * (`convBackwardFilterWindowA` in conv2d_operands.ts).
   */
  rbWindow: true,
  /**
   * Sliding windows only for GEMMs of at least this many multiply-adds: windowed kernels take
   * lavapipe longer to compile (with windows on every size, one fused backward-data kernel of a
   * ResNet-32 step at batch 64 on 16x16 images compiled in 21-24 s), which pays only where the run
   * is long (ResNet-32 at batch 128 on 32x32: 302M per conv).
   */
  rbWindowWork: 1 << 27,
  /**
   * The fused ResNet ops (ops/fused_block.ts) store their conv outputs, the BatchNorm inputs kept
   * for the backward pass, in half precision (binary16, f32 arithmetic; gpu/half_storage.ts):
   * half the bytes for every kernel that reads them. Off by default; `COLLAPSE_ACTIVATIONS=f16`
   * turns it on.
   */
  halfActivations: envHalfActivations(),
  /**
   * Trade kernel speed for compile time on CPU adapters: small register tiles (at most
   * `rbFastAcc` accumulators per thread below `rbFastWork` multiply-adds, `rbSmallAcc` above), no
   * per-shape baked conv geometry. Lavapipe compiles a kernel on its first launch (measured: a
   * ResNet-32 on 8x8 images, 118 kernels, 174 s from a cold shader cache with up to 256
   * accumulators per thread, 40 s with 32; the largest tiles take 9-17 s each), so short runs and
   * tests that build many shapes set it; kernel tests force the large variants explicitly.
   * `COLLAPSE_TUNING=fast-compile` turns it on; setting it here is per isolate (a test file),
   * the environment per process.
   */
  fastCompile: envFastCompile(),
  /**
   * Measure GEMM plans on this adapter (like cuDNN's benchmark mode): the second step of a
   * training run (the first is eager and compiles) runs every GEMM's `autotuneOptions.candidates`
   * best plans under the cost model `autotuneOptions.reps` times each into scratch outputs, timed
   * by timestamp queries, and later steps use the fastest (see gpu/ops/gemm_tune.ts); a plan
   * replaces the model's only when it is faster by more than `autotuneOptions.margin`. Off by
   * default; `COLLAPSE_AUTOTUNE=1` turns it on.
   */
  autotune: envAutotune(),
  /** Defaults of `tuneGemms`: plans per GEMM, timed runs of each, the margin a plan must win by. */
  autotuneOptions: { candidates: 6, reps: 3, margin: 0.03 },
  /** Benches: a plan for some GEMMs instead of the model's (null, or a null result: the model's). */
  planHook: null as
    | null
    | ((M: number, N: number, K: number, batch: number, opts: PlanOptions) => GemmPlan | null),
};

/**
 * Whether a register-blocked GEMM of `work` multiply-adds and M rows, planned with `tm` rows per
 * thread, loads A through its sliding window (the plan's model and the kernel ask the same):
 * `TUNING.rbWindow`, at least `TUNING.rbWindowWork`, the rows fit ({@link windowFits}), and
 * `wholeK` (no split-K, no k guard).
 */
export function windowUsed(
  rowSpan: number,
  tm: number,
  M: number,
  work: number,
  wholeK: boolean,
): boolean {
  return TUNING.rbWindow && work >= TUNING.rbWindowWork && wholeK && windowFits(rowSpan, tm, M);
}

/** A GEMM plan: kernel configuration and split-K factor. */
export interface GemmPlan {
  /** The kernel configuration (variant and tile). */
  config: GemmConfig;
  /** Split-K factor (1: none; partial sums reduced by a second pass). */
  splits: number;
}

/** A plan with its modelled cost (the planner's own units: CPU cycles, GPU seconds). */
interface CostedPlan {
  plan: GemmPlan;
  cost: number;
}

/** Options that override the plan (tests force variants; benches try tiles). */
export interface PlanOptions {
  variant?: GemmVariant;
  /** Register-blocked tile override (outputs per thread; multiples of 4). */
  tm?: number;
  tn?: number;
  /** Allow split-K (only where the caller reduces partial sums). */
  allowSplit?: boolean;
  /**
   * A is read with scalar loads (4 per row and k-step: conv with Cin % 4 != 0); the unrolled body
   * grows 4x per row, so rows per thread stay at most `rbScalarMaxTm` (compile time; the RGB stem
   * ran no faster with 64).
   */
  scalarA?: boolean;
  /**
   * Relative cost of loading one element of A / B (default 1): an operand that computes its values
   * from two sources (a fused BatchNorm backward) costs about 2, which favours tiles that reuse it.
   */
  aLoad?: number;
  bLoad?: number;
  /**
   * A has a sliding-window form (see `RbWindow` in matmul_gemm.ts): where a thread's rows fit it
   * (`windowFits`) and there is no split-K, a run of r pixels of one image row is loaded once
   * for `taps` k-steps: r + taps - 1 loads per taps * r values.
   */
  window?: { taps: number; rowSpan: number };
  /** Rows per thread must be a multiple of this (an A operand with grouped rows). */
  tmMultiple?: number;
}

function splitsFor(groups: number, K: number, batch: number, target: number, allow: boolean) {
  if (!allow || batch !== 1 || groups >= target) return 1;
  const s = Math.min(
    Math.ceil(target / groups),
    Math.floor(K / TUNING.minSplitK),
    TUNING.maxSplits,
  );
  return Math.max(1, s);
}

function cpuThreads(): number {
  return Math.max(1, (globalThis.navigator?.hardwareConcurrency as number | undefined) ?? 2);
}

/**
 * The register-blocked plan for an M x N x K GEMM: the (threads, outputs per thread, split-K)
 * shape with the least modelled CPU cost: padded outputs x K x per-output load and FMA cost, plus
 * the split-K reduction, times the load imbalance over the CPU threads. Workgroups are whole SIMD
 * batches of 8 lanes; with split-K allowed, lane split-K (8 lanes = 8 k-splits of one tile) is a
 * candidate too.
 */
function regblockPlan(
  M: number,
  N: number,
  K: number,
  batch: number,
  opts: PlanOptions,
  all?: CostedPlan[],
): GemmPlan {
  const work = M * N * K * batch;
  const big = work >= TUNING.rbBigWork;
  const maxAcc = fastCompile()
    ? (work < TUNING.rbFastWork
      ? Math.max(TUNING.rbFastAcc, 4 * (opts.tmMultiple ?? 4))
      : TUNING.rbSmallAcc)
    : big
    ? (opts.tmMultiple ? TUNING.rbMaxAccGrouped : TUNING.rbMaxAcc)
    : TUNING.rbSmallAcc;
  const N4 = Math.ceil(N / 4) * 4, M4 = Math.ceil(M / 4) * 4;
  const tns = opts.tn ? [opts.tn] : [4, 8, 12, 16, 20, 24, 28, 32].filter((t) => t <= N4);
  const maxTm = opts.scalarA ? TUNING.rbScalarMaxTm : 64;
  const tmStep = opts.tmMultiple ?? 4;
  const tms = opts.tm
    ? [opts.tm]
    : Array.from({ length: Math.floor(maxTm / tmStep) }, (_, i) => tmStep * (i + 1));
  const P = cpuThreads();
  const laneSplit = !!opts.allowSplit && batch === 1 && K >= 8 * TUNING.minSplitK;
  let best: GemmPlan = { config: { variant: "regblock", wgm: 8, wgn: 1, tm: 4, tn: 4 }, splits: 1 };
  let bestCost = Infinity;
  const consider = (c: RegblockConfig) => {
    const ks = c.ks ?? 1;
    const gm = Math.ceil(M / (c.wgm * c.tm)), gn = Math.ceil(N / (c.wgn * c.tn));
    const groups = gm * gn * batch;
    let splits: number;
    if (ks > 1) {
      const z = Math.min(
        Math.ceil(TUNING.minGroups.cpu / groups),
        Math.floor(K / TUNING.minSplitK / ks),
        TUNING.maxSplits,
      );
      splits = ks * Math.max(1, z);
    } else {
      splits = splitsFor(groups, K, batch, TUNING.minGroups.cpu, !!opts.allowSplit);
    }
    const g = (groups * splits) / ks;
    const imbalance = (Math.ceil(g / P) * P) / g;
    const w = opts.window;
    const windowed = !!w &&
      windowUsed(w.rowSpan, c.tm, M, M * N * K * batch, splits === 1 && ks === 1);
    const run = windowed ? Math.min(c.tm, w.rowSpan) : 1;
    const aShare = windowed ? (run + w.taps - 1) / (w.taps * run) : 1;
    const perOut = TUNING.rbLoad *
        ((opts.bLoad ?? 1) / c.tm + ((opts.aLoad ?? 1) * aShare) / c.tn) +
      TUNING.rbFma;
    const gemm = gm * c.wgm * c.tm * gn * c.wgn * c.tn * ks * K * perOut / ks;
    const reduce = splits > 1 ? splits * M * N * TUNING.rbLoad : 0;
    const cost = (gemm * imbalance + reduce) * (1 + (c.tm * c.tn) / 1e4);
    all?.push({ plan: { config: c, splits }, cost });
    if (cost < bestCost) {
      bestCost = cost;
      best = { config: c, splits };
    }
  };
  for (const tn of tns) {
    for (const tm of tms) {
      if (!opts.tm && !opts.tn && tm * tn > maxAcc) continue;
      for (const wgn of [1, 2, 4, 8]) {
        for (const threads of [8, 16, 32, 64]) {
          if (threads % wgn === 0) {
            consider({ variant: "regblock", wgm: threads / wgn, wgn, tm, tn });
          }
        }
      }
      if (laneSplit && tm <= M4 && tn <= N4) {
        consider({ variant: "regblock", wgm: 1, wgn: 1, tm, tn, ks: 8 });
      }
    }
  }
  return best;
}

/**
 * GPU register-blocked plan (the shape first measured on an H200: 64 threads of 16 x 16 outputs,
 * fewer rows/columns for small problems), with GPU split-K targets.
 */
function gpuRegblockPlan(M: number, N: number, K: number, batch: number, opts: PlanOptions) {
  const tn = opts.tn ?? Math.min(16, Math.ceil(N / 4) * 4);
  const tm = opts.tm ?? 16;
  const wgn = Math.min(8, 2 ** Math.ceil(Math.log2(Math.ceil(N / tn))));
  let wgm = Math.max(1, 64 / wgn);
  while (wgm > 1 && (wgm / 2) * tm >= M) wgm /= 2;
  const config: RegblockConfig = { variant: "regblock", wgm, wgn, tm, tn };
  const groups = Math.ceil(M / (wgm * tm)) * Math.ceil(N / (wgn * tn)) * batch;
  let splits = 1;
  if (opts.allowSplit && batch === 1 && groups < TUNING.minGroups.gpu) {
    splits = Math.min(
      Math.ceil(TUNING.minGroups.gpu / groups),
      Math.floor(K / TUNING.gpuMinSplitK),
      TUNING.gpuMaxSplits,
    );
  }
  return { config, splits: Math.max(1, splits) };
}

/** Tiled candidates: [wgm, wgn, tm, tn] (threads along M and N, outputs per thread). */
const TILED_SHAPES: [number, number, number, number][] = [
  [16, 16, 8, 8],
  [16, 16, 8, 4],
  [32, 8, 8, 4],
  [16, 16, 4, 4],
  [32, 8, 4, 4],
  [64, 4, 4, 4],
  [16, 8, 8, 4],
  [16, 8, 4, 4],
  [32, 4, 4, 4],
  [16, 4, 8, 4],
  [16, 4, 4, 4],
  [8, 8, 4, 4],
];

/**
 * The tiled plan for the GPU: the (tile, split-K) pair with the least modelled time. Model: a
 * workgroup of T threads runs at T / gpuThreadsPerSm of an SM's MAC rate, divided by a register
 * block efficiency (1 + 4/tm + 4/tn: workgroup-memory reads per multiply-add); workgroups run in
 * waves of gpuSms * gpuThreadsPerSm / T; split-K adds partial writes and a reduction pass.
 */
function tiledPlan(
  M: number,
  N: number,
  K: number,
  batch: number,
  opts: PlanOptions,
  all?: CostedPlan[],
): GemmPlan {
  if (TUNING.gpuTiledForce) {
    const c = TUNING.gpuTiledForce;
    const groups = Math.ceil(M / (c.wgm! * c.tm!)) * Math.ceil(N / (c.wgn! * c.tn!)) * batch;
    return { config: c, splits: gpuSplits(groups, K, batch, !!opts.allowSplit) };
  }
  const K4 = Math.max(4, Math.ceil(K / 4) * 4);
  let best: GemmPlan | null = null;
  let bestCost = Infinity;
  for (const [wgm, wgn, tm, tn] of TILED_SHAPES) {
    const BM = wgm * tm, BN = wgn * tn, T = wgm * wgn;
    const tiles = Math.ceil(M / BM) * Math.ceil(N / BN) * batch;
    const maxS = opts.allowSplit && batch === 1
      ? Math.min(TUNING.gpuMaxSplits, Math.max(1, Math.floor(K / TUNING.gpuMinSplitK)))
      : 1;
    for (let splits = 1; splits <= maxS; splits *= 2) {
      const kChunk = Math.ceil(K4 / splits / 4) * 4;
      const groups = tiles * splits;
      const wave = (TUNING.gpuSms * TUNING.gpuThreadsPerSm) / T;
      const perGroup = (BM * BN * kChunk * (1 + 4 / tm + 4 / tn)) /
        (TUNING.gpuSmMacs * T / TUNING.gpuThreadsPerSm);
      let cost = Math.ceil(groups / wave) * perGroup;
      if (splits > 1) {
        cost += (2 * (splits + 1) * M * N * 4) / TUNING.gpuBytes + TUNING.gpuDispatch;
      }
      const plan: GemmPlan = { config: { variant: "tiled", bk: 16, wgm, wgn, tm, tn }, splits };
      all?.push({ plan, cost });
      if (cost < bestCost * 0.999) {
        bestCost = cost;
        best = plan;
      }
    }
  }
  return best!;
}

function gpuSplits(groups: number, K: number, batch: number, allow: boolean): number {
  if (!allow || batch !== 1 || groups >= TUNING.minGroups.gpu) return 1;
  const s = Math.min(
    Math.ceil(TUNING.minGroups.gpu / groups),
    Math.floor(K / TUNING.gpuMinSplitK),
    TUNING.gpuMaxSplits,
  );
  return Math.max(1, s);
}

/**
 * The plan for an M x N x K GEMM over `batch` batches. CPU mode: register-blocked by the lavapipe
 * cost model (or a forced "tiled"); GPU mode: `TUNING.gpuVariant` (or the forced one), each with
 * its GPU plan.
 */
export function gemmPlan(
  M: number,
  N: number,
  K: number,
  batch: number,
  opts: PlanOptions = {},
): GemmPlan {
  return modelPlan(M, N, K, batch, opts);
}

/**
 * The plans worth measuring for a GEMM, at most `count`: {@link gemmPlan}'s first, then the
 * next cheapest under the same cost model (same variant, same limits on tile size). One plan
 * only where nothing is left to choose: a plan hook, a forced tile or variant plan, the GPU
 * register-blocked plan.
 */
export function gemmCandidates(
  M: number,
  N: number,
  K: number,
  batch: number,
  opts: PlanOptions,
  count: number,
): GemmPlan[] {
  const all: CostedPlan[] = [];
  const first = modelPlan(M, N, K, batch, opts, all);
  const out = [first];
  const seen = new Set([planLabel(first)]);
  all.sort((a, b) => a.cost - b.cost);
  for (const { plan } of all) {
    if (out.length >= count) break;
    const label = planLabel(plan);
    if (!seen.has(label)) {
      seen.add(label);
      out.push(plan);
    }
  }
  return out;
}

/** A plan in words: variant, threads, outputs per thread, split-K ("tiled 16x16 x 8x8, 2 splits"). */
export function planLabel(p: GemmPlan): string {
  const c = p.config;
  const splits = p.splits > 1 ? `, ${p.splits} splits` : "";
  if (c.variant === "tiled") {
    return c.tm ? `tiled ${c.wgm}x${c.wgn} x ${c.tm}x${c.tn}${splits}` : `tiled 64x64${splits}`;
  }
  const ks = c.ks ? `, lane split ${c.ks}` : "";
  return `regblock ${c.wgm}x${c.wgn} x ${c.tm}x${c.tn}${ks}${splits}`;
}

/** The cost model's plan; with `all`, every plan it weighed goes there (none when one is forced). */
function modelPlan(
  M: number,
  N: number,
  K: number,
  batch: number,
  opts: PlanOptions,
  all?: CostedPlan[],
): GemmPlan {
  const hooked = TUNING.planHook?.(M, N, K, batch, opts);
  if (hooked) return hooked;
  const free = opts.tm === undefined && opts.tn === undefined ? all : undefined;
  const gpuMode = kernelMode() === "gpu";
  const variant = opts.variant ?? (gpuMode ? TUNING.gpuVariant : "regblock");
  if (variant === "regblock") {
    return gpuMode
      ? gpuRegblockPlan(M, N, K, batch, opts)
      : regblockPlan(M, N, K, batch, opts, free);
  }
  if (TUNING.gpuTiledLegacy) {
    const config: GemmConfig = { variant: "tiled", bk: TUNING.tiledBk };
    const groups = Math.ceil(M / 64) * Math.ceil(N / 64) * batch;
    return { config, splits: splitsFor(groups, K, batch, 256, !!opts.allowSplit) };
  }
  return tiledPlan(M, N, K, batch, opts, free);
}
