/**
 * Matrix multiplication: `matmul` ([..., M, K] x [..., K, N] with broadcast batch dimensions and
 * optional transposes), differentiable in both operands, dispatched through gemm_run.ts's
 * `runGemm` (which conv2d and the fused ops share).
 * @module
 */
import { record } from "../autograd.ts";
import { engine } from "../engine.ts";
import { denseA, denseB } from "../kernels/matmul_operands.ts";
import { sumToBatchLaunch } from "../kernels/matmul_reduce.ts";
import type { GemmVariant } from "../kernels/tuning.ts";
import { empty, fmtShape, reshapeView, sizeOf, type Tensor } from "../tensor.ts";
import { runGemm } from "./gemm_run.ts";

/** Options of {@link matmul}. */
export interface MatmulOptions {
  /** Use A's last two dimensions transposed: A is [..., K, M]. */
  transposeA?: boolean;
  /** Use B's last two dimensions transposed: B is [..., N, K]. */
  transposeB?: boolean;
  /** Force a kernel variant (tests, benches); default from kernels/tuning.ts. */
  variant?: GemmVariant;
}

function broadcastBatch(a: readonly number[], b: readonly number[], what: () => string): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const x = a[a.length - rank + i] ?? 1;
    const y = b[b.length - rank + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) {
      throw new Error(`collapse: matmul: batch dimensions do not broadcast: ${what()}`);
    }
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** Pads a batch shape with leading 1s to 4 dims. */
function pad4(s: readonly number[], rank: number): [number, number, number, number] {
  const full = [...Array(rank - s.length).fill(1), ...s];
  return [...Array(4 - rank).fill(1), ...full] as [number, number, number, number];
}

/** Element strides of each (padded) batch dim of an operand broadcast to `out` (0: broadcast). */
function batchStrides(own: readonly number[], out: readonly number[], mat: number): number[] {
  const p = pad4(own, out.length);
  const strides = [0, 0, 0, 0];
  let s = mat;
  for (let i = 3; i >= 0; i--) {
    strides[i] = p[i] === 1 ? 0 : s;
    s *= p[i];
  }
  return strides;
}

/** The forward GEMM without autograd recording (used by backward too). */
export function matmulRaw(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const tA = !!opts.transposeA;
  const tB = !!opts.transposeB;
  const what = () => `${a.describe()}${tA ? "^T" : ""} x ${b.describe()}${tB ? "^T" : ""}`;
  if (a.dtype !== "f32" || b.dtype !== "f32") {
    throw new Error(`collapse: matmul: needs f32 operands, got ${what()}`);
  }
  if (a.rank < 2 || b.rank < 2) {
    throw new Error(`collapse: matmul: operands need rank >= 2, got ${what()}`);
  }
  const ra = a.rank, rb = b.rank;
  const M = tA ? a.shape[ra - 1] : a.shape[ra - 2];
  const K = tA ? a.shape[ra - 2] : a.shape[ra - 1];
  const bK = tB ? b.shape[rb - 1] : b.shape[rb - 2];
  const N = tB ? b.shape[rb - 2] : b.shape[rb - 1];
  if (K !== bK) {
    throw new Error(`collapse: matmul: inner dimensions differ (${K} vs ${bK}): ${what()}`);
  }
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  const batchOut = broadcastBatch(batchA, batchB, what);
  if (batchOut.length > 4) {
    throw new Error(`collapse: matmul: at most 4 batch dimensions, got ${what()}`);
  }
  const out = empty([...batchOut, M, N], "f32", "matmul");
  if (out.size === 0) return out;
  // [..., M, K] x [K, N]: fold A's batch into M (one bigger GEMM).
  const fold = batchB.length === 0 && batchA.length > 0 && !tA;
  const batch = fold ? 1 : sizeOf(batchOut);
  const Mg = fold ? sizeOf(batchA) * M : M;
  const aStr = fold ? [0, 0, 0, 0] : batchStrides(batchA, batchOut, M * K);
  const bStr = batchStrides(batchB, batchOut, K * N);
  const vecA = K > 0 && (tA ? M % 4 === 0 : K % 4 === 0);
  const vecB = K > 0 && (tB ? K % 4 === 0 : N % 4 === 0);
  runGemm({
    name: "matmul",
    a: denseA(tA, vecA, aStr),
    b: denseB(tB, vecB, bStr),
    aT: a,
    bT: b,
    out,
    M: Mg,
    N,
    K,
    batch,
    batchDims: fold ? [1, 1, 1, 1] : pad4(batchOut, batchOut.length),
    variant: opts.variant,
  });
  return out;
}

/** Sums a gradient computed at the broadcast batch shape back to an operand's shape. */
function reduceTo(g: Tensor, shape: readonly number[]): Tensor {
  if (g.rank === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const rank = g.rank - 2;
  const inner = g.shape[g.rank - 2] * g.shape[g.rank - 1];
  const out = empty(shape, "f32", "matmul_grad");
  engine().dispatch(
    sumToBatchLaunch(
      g,
      out,
      pad4(g.shape.slice(0, -2), rank),
      pad4(shape.slice(0, -2), rank),
      inner,
    ),
  );
  g.dispose();
  return out;
}

function gradA(a: Tensor, b: Tensor, dy: Tensor, tA: boolean, tB: boolean, v?: GemmVariant) {
  const g = !tA
    ? matmulRaw(dy, b, { transposeB: !tB, variant: v })
    : matmulRaw(b, dy, { transposeA: tB, transposeB: true, variant: v });
  return reduceTo(g, a.shape);
}

function gradB(a: Tensor, b: Tensor, dy: Tensor, tA: boolean, tB: boolean, v?: GemmVariant) {
  if (b.rank === 2 && a.rank > 2 && !tA) {
    // Sum over A's batch folded into the GEMM's K.
    const K = a.shape[a.rank - 1];
    const a2 = reshapeView(a, [-1, K]);
    const d2 = reshapeView(dy, [-1, dy.shape[dy.rank - 1]]);
    const g = !tB
      ? matmulRaw(a2, d2, { transposeA: true, variant: v })
      : matmulRaw(d2, a2, { transposeA: true, variant: v });
    a2.dispose();
    d2.dispose();
    return g;
  }
  const g = !tB
    ? matmulRaw(a, dy, { transposeA: !tA, variant: v })
    : matmulRaw(dy, a, { transposeA: true, transposeB: tA, variant: v });
  return reduceTo(g, b.shape);
}

/**
 * Batched matrix product: [..., M, K] x [..., K, N] -> [..., M, N] (batch dims broadcast, at most
 * 4), with `transposeA` ([..., K, M]) / `transposeB` ([..., N, K]). f32; differentiable in both.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { initDevice, matmul, tensor } from "@collapse/collapse/gpu";
 *
 * await initDevice();
 * const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]); // [B, in]
 * const w = tensor([1, 0, 0, 1, 1, 1], [3, 2]); // [in, out]
 * assertEquals(await matmul(x, w).array(), [4, 5, 10, 11]);
 * assertEquals(matmul(x, x, { transposeB: true }).shape, [2, 2]); // x x^T
 * ```
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const out = matmulRaw(a, b, opts);
  const tA = !!opts.transposeA;
  const tB = !!opts.transposeB;
  return record(out, "matmul", [a, b], (dy) => {
    if (dy.rank !== out.rank || dy.shape.some((d, i) => d !== out.shape[i])) {
      throw new Error(
        `collapse: matmul backward: gradient ${dy.describe()} for output ${fmtShape(out.shape)}`,
      );
    }
    return [
      gradA(a, b, dy, tA, tB, opts.variant),
      gradB(a, b, dy, tA, tB, opts.variant),
    ];
  });
}
