/**
 * The simplex equiangular tight frame of the paper (from the official ImbalancedLearning code):
 * A in R^{d x K} with entries U[0,1) from a seeded {@link Rng}; reduced QR A = P R (Householder, in
 * f64; P^T P = I_K, needs d >= K); M = sqrt(K / (K - 1)) * P * (I_K - 1 1^T / K).
 * Its columns have unit norm and pairwise cosine -1/(K-1), and M 1 = 0.
 * @module
 */
import { Rng } from "../../gpu/rng.ts";

/**
 * The orthonormal factor P [d, K] (row-major, f64) of the reduced QR of a row-major A [d, K],
 * by Householder reflections. Throws if A is (numerically) rank deficient.
 */
export function reducedQrQ(a: Float64Array, d: number, k: number): Float64Array {
  if (a.length !== d * k) throw new Error(`collapse: reducedQrQ: ${a.length} values for ${d}x${k}`);
  if (d < k) throw new Error(`collapse: reducedQrQ: needs rows >= columns, got ${d}x${k}`);
  // Work on column-major copies so every inner loop walks contiguous memory (d=4096, K=1000
  // takes seconds instead of minutes).
  const r = new Float64Array(d * k); // r[c * d + i] = A[i, c]
  for (let i = 0; i < d; i++) for (let c = 0; c < k; c++) r[c * d + i] = a[i * k + c];
  const vs: Float64Array[] = [];
  for (let j = 0; j < k; j++) {
    const m = d - j;
    const v = r.slice(j * d + j, j * d + d);
    let norm = 0;
    for (let i = 0; i < m; i++) norm += v[i] * v[i];
    norm = Math.sqrt(norm);
    if (norm < 1e-12) throw new Error(`collapse: reducedQrQ: matrix is rank deficient`);
    const alpha = v[0] >= 0 ? -norm : norm;
    v[0] -= alpha;
    let vn = 0;
    for (let i = 0; i < m; i++) vn += v[i] * v[i];
    vn = Math.sqrt(vn);
    for (let i = 0; i < m; i++) v[i] /= vn;
    // R[j:, j:] -= 2 v (v^T R[j:, j:])
    for (let c = j; c < k; c++) {
      const off = c * d + j;
      let dot = 0;
      for (let i = 0; i < m; i++) dot += v[i] * r[off + i];
      dot *= 2;
      for (let i = 0; i < m; i++) r[off + i] -= v[i] * dot;
    }
    vs.push(v);
  }
  // Q = H_0 ... H_{k-1} I[:, :k], column-major, then back to row-major.
  const qc = new Float64Array(d * k);
  for (let i = 0; i < k; i++) qc[i * d + i] = 1;
  for (let j = k - 1; j >= 0; j--) {
    const v = vs[j];
    const m = d - j;
    for (let c = 0; c < k; c++) {
      const off = c * d + j;
      let dot = 0;
      for (let i = 0; i < m; i++) dot += v[i] * qc[off + i];
      dot *= 2;
      for (let i = 0; i < m; i++) qc[off + i] -= v[i] * dot;
    }
  }
  const q = new Float64Array(d * k);
  for (let c = 0; c < k; c++) for (let i = 0; i < d; i++) q[i * k + c] = qc[c * d + i];
  return q;
}

/**
 * The fixed ETF classifier M [d, K] (row-major Float32Array; column k is class k's prototype)
 * for feature dimension `d` and `numClasses` K, from `seed`. Same seed, same M.
 *
 * @example
 * ```ts
 * import { simplexEtf } from "./etf.ts";
 * const m = simplexEtf(64, 10, 0); // 640 values, columns of unit norm, cosines -1/9
 * ```
 */
export function simplexEtf(d: number, numClasses: number, seed = 0): Float32Array {
  const k = numClasses;
  if (!Number.isInteger(d) || !Number.isInteger(k) || d <= 0 || k <= 0) {
    throw new Error(`collapse: simplexEtf: d and K must be positive integers, got d=${d} K=${k}`);
  }
  if (k < 2) throw new Error(`collapse: simplexEtf: needs at least 2 classes, got K=${k}`);
  if (d < k) {
    throw new Error(
      `collapse: simplexEtf: feature dimension d=${d} must be >= the number of classes K=${k} ` +
        `(the reduced QR of a d x K matrix needs d >= K); widen the backbone or add a projection`,
    );
  }
  const rng = new Rng(seed);
  const a = new Float64Array(d * k);
  for (let i = 0; i < a.length; i++) a[i] = rng.next();
  const p = reducedQrQ(a, d, k);
  const scale = Math.sqrt(k / (k - 1));
  const m = new Float32Array(d * k);
  for (let i = 0; i < d; i++) {
    let mean = 0;
    for (let j = 0; j < k; j++) mean += p[i * k + j];
    mean /= k;
    for (let j = 0; j < k; j++) m[i * k + j] = scale * (p[i * k + j] - mean);
  }
  return m;
}
