/**
 * Kernel tuning in one place (like tfjs-backend-webgpu's flags): which GEMM variant runs on this
 * adapter, its tile shape for a problem size, and the split-K factor. CPU (fallback) adapters get
 * the register-blocked variant, GPUs the shared-memory tiled one; override with the environment
 * variable `COLLAPSE_KERNELS=cpu|gpu` or {@link setKernelMode}.
 * @module
 */
import { gpu } from "../device.ts";
import type { GemmConfig } from "./matmul_gemm.ts";

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

/** The kernel mode in force: forced, else `COLLAPSE_KERNELS`, else by adapter type. */
export function kernelMode(): KernelMode {
  if (forced) return forced;
  const env = envMode();
  if (env) return env;
  const a = gpu().adapter;
  const software = a.isFallbackAdapter || /llvmpipe|lavapipe|swiftshader|warp/i.test(a.description);
  return software ? "cpu" : "gpu";
}

/** Tuning constants (measured on lavapipe, 2 cores, AVX2; see bench/kernels_bench.ts). */
export const TUNING = {
  /** Register-blocked: invocations per workgroup. */
  rbThreads: 64,
  /** Register-blocked: outputs per thread, rows (multiple of 4). */
  rbTm: 16,
  /** Register-blocked: outputs per thread, columns (multiple of 4), at most. */
  rbTn: 16,
  /** Register-blocked: explicit fma() (else a * b + c). */
  rbFma: false,
  /** Tiled: k-slice depth. */
  tiledBk: 16,
  /** Split-K: aim for at least this many workgroups (CPU, GPU). */
  minGroups: { cpu: 32, gpu: 256 },
  /** Split-K: at least this many k per split. */
  minSplitK: 256,
  /** Split-K: at most this many splits. */
  maxSplits: 64,
};

/** A GEMM plan: kernel configuration and split-K factor. */
export interface GemmPlan {
  config: GemmConfig;
  splits: number;
}

/** Options that override the plan (tests force variants; benches try tiles). */
export interface PlanOptions {
  variant?: GemmVariant;
  /** Register-blocked tile override. */
  tm?: number;
  tn?: number;
  /** Allow split-K (only where the caller reduces partial sums). */
  allowSplit?: boolean;
}

/** The plan for an M x N x K GEMM over `batch` batches. */
export function gemmPlan(
  M: number,
  N: number,
  K: number,
  batch: number,
  opts: PlanOptions = {},
): GemmPlan {
  const variant = opts.variant ?? (kernelMode() === "cpu" ? "regblock" : "tiled");
  let config: GemmConfig;
  let groups: number;
  if (variant === "tiled") {
    config = { variant: "tiled", bk: TUNING.tiledBk };
    groups = Math.ceil(M / 64) * Math.ceil(N / 64);
  } else {
    const tn = opts.tn ?? Math.min(TUNING.rbTn, Math.ceil(N / 4) * 4);
    const tm = opts.tm ?? TUNING.rbTm;
    const wgn = Math.min(8, 2 ** Math.ceil(Math.log2(Math.ceil(N / tn))));
    let wgm = Math.max(1, TUNING.rbThreads / wgn);
    while (wgm > 1 && (wgm / 2) * tm >= M) wgm /= 2;
    config = { variant: "regblock", wgm, wgn, tm, tn };
    groups = Math.ceil(M / (wgm * tm)) * Math.ceil(N / (wgn * tn));
  }
  groups *= batch;
  let splits = 1;
  const target = TUNING.minGroups[variant === "tiled" ? "gpu" : "cpu"];
  if (opts.allowSplit && batch === 1 && groups < target) {
    splits = Math.min(
      Math.ceil(target / groups),
      Math.floor(K / TUNING.minSplitK),
      TUNING.maxSplits,
    );
    splits = Math.max(1, splits);
  }
  return { config, splits };
}
