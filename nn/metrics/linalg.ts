/**
 * Small dense f64 linear algebra on the host for metric finalisation: products, symmetric
 * eigendecomposition (cyclic Jacobi) and the pseudo-inverse built on it. Sizes are class counts
 * (K <= ~1000), so cubic host work is acceptable at epoch end.
 * @module
 */

/** A row-major f64 matrix. */
export interface Mat {
  rows: number;
  cols: number;
  data: Float64Array;
}

/** A new zero matrix. */
export function mat(rows: number, cols: number, data?: ArrayLike<number>): Mat {
  const m = { rows, cols, data: new Float64Array(rows * cols) };
  if (data) m.data.set(data);
  return m;
}

/** A * B, or with transposes: op(A) * op(B). */
export function matmul(a: Mat, b: Mat, ta = false, tb = false): Mat {
  const m = ta ? a.cols : a.rows, k = ta ? a.rows : a.cols;
  const k2 = tb ? b.cols : b.rows, n = tb ? b.rows : b.cols;
  if (k !== k2) throw new Error(`linalg.matmul: inner dims ${k} vs ${k2}`);
  const out = mat(m, n);
  const A = a.data, B = b.data, C = out.data;
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const av = ta ? A[p * a.cols + i] : A[i * a.cols + p];
      if (av === 0) continue;
      const row = i * n;
      if (tb) { for (let j = 0; j < n; j++) C[row + j] += av * B[j * b.cols + p]; }
      else {
        const brow = p * b.cols;
        for (let j = 0; j < n; j++) C[row + j] += av * B[brow + j];
      }
    }
  }
  return out;
}

/** Frobenius norm. */
export function frobenius(a: Mat): number {
  let s = 0;
  for (const v of a.data) s += v * v;
  return Math.sqrt(s);
}

/** Eigen-decomposition of a symmetric matrix: values and column eigenvectors (cyclic Jacobi). */
export function symmetricEigen(s: Mat, sweeps = 60): { values: Float64Array; vectors: Mat } {
  const n = s.rows;
  const a = Float64Array.from(s.data);
  const v = mat(n, n);
  for (let i = 0; i < n; i++) v.data[i * n + i] = 1;
  for (let sweep = 0; sweep < sweeps; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q] ** 2;
    if (off < 1e-22) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), sn = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - sn * akq;
          a[k * n + q] = sn * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - sn * aqk;
          a[q * n + k] = sn * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v.data[k * n + p], vkq = v.data[k * n + q];
          v.data[k * n + p] = c * vkp - sn * vkq;
          v.data[k * n + q] = sn * vkp + c * vkq;
        }
      }
    }
  }
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = a[i * n + i];
  return { values, vectors: v };
}

/** Moore-Penrose pseudo-inverse of a symmetric PSD matrix, raised to `power` (1 or 2). */
export function symmetricPinv(s: Mat, power = 1, rtol = 1e-10): Mat {
  const { values, vectors } = symmetricEigen(s);
  const n = s.rows;
  const max = Math.max(...Array.from(values, Math.abs), 0);
  const out = mat(n, n);
  for (let k = 0; k < n; k++) {
    const lam = values[k];
    if (Math.abs(lam) <= rtol * max || lam === 0) continue;
    const f = 1 / lam ** power;
    for (let i = 0; i < n; i++) {
      const vi = vectors.data[i * n + k] * f;
      if (vi === 0) continue;
      for (let j = 0; j < n; j++) out.data[i * n + j] += vi * vectors.data[j * n + k];
    }
  }
  return out;
}
