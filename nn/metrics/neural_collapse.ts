/**
 * Neural-collapse metrics of DESIGN.md §3, finalised on the host from sufficient statistics that
 * are accumulated on the GPU over a whole split (per-class feature sums, counts, and the feature
 * Gram matrix): NC1 = Tr(S_W S_B^+)/K; the normalised distance ||H/||H|| - W/||W|||^2 between
 * centred class means H and classifier W; mean/std of off-diagonal cosines of H, of W and of H vs W;
 * the diagonal cosines of H vs W.
 * @module
 */
import { frobenius, type Mat, mat, matmul, symmetricPinv } from "./linalg.ts";

/** Sufficient statistics of features over a split. */
export interface FeatureStats {
  /** [K, d] sum of features per class. */
  classSums: Float64Array | Float32Array;
  /** [K] samples per class. */
  counts: Float64Array | Float32Array | Int32Array;
  /** [d, d] sum over samples of h h^T. */
  gram: Float64Array | Float32Array;
  /** Number of classes K. */
  numClasses: number;
  /** Feature dimension d. */
  dim: number;
}

/** The neural-collapse metrics of one split. */
export interface NeuralCollapseMetrics {
  /** Tr(S_W S_B^+) / K (within-class variability collapse). */
  nc1: number;
  /** ||H/||H||_F - W/||W||_F||_F^2 (self-duality). */
  normalizedDistance: number;
  /** Off-diagonal cosines between centred class means. */
  meanCosH: number;
  /** Standard deviation of those cosines. */
  stdCosH: number;
  /** Off-diagonal cosines between classifier vectors. */
  meanCosW: number;
  /** Standard deviation of those cosines. */
  stdCosW: number;
  /** Off-diagonal cosines between class means and other classes' classifier vectors. */
  meanCosHW: number;
  /** Standard deviation of those cosines. */
  stdCosHW: number;
  /** Mean cosine between each class mean and its own classifier vector. */
  meanDiagCosHW: number;
  /** Per-class diagonal cosines (NaN for classes absent from the split). */
  diagCosHW: number[];
}

function rowCos(a: Mat, i: number, b: Mat, j: number): number {
  let dot = 0, na = 0, nb = 0;
  for (let k = 0; k < a.cols; k++) {
    const x = a.data[i * a.cols + k], y = b.data[j * b.cols + k];
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return dot / Math.max(Math.sqrt(na * nb), 1e-30);
}

function meanStd(xs: number[]): [number, number] {
  if (!xs.length) return [NaN, NaN];
  const m = xs.reduce((s, x) => s + x, 0) / xs.length;
  const v = xs.reduce((s, x) => s + (x - m) ** 2, 0) / xs.length;
  return [m, Math.sqrt(v)];
}

/**
 * Computes the metrics from feature statistics and the classifier `W` ([K, d] row per class; for the
 * ETF head pass M transposed). Classes with no sample are left out of H-based statistics.
 */
export function neuralCollapseMetrics(
  stats: FeatureStats,
  classifier: Float32Array | Float64Array,
): NeuralCollapseMetrics {
  const { numClasses: K, dim: d } = stats;
  if (classifier.length !== K * d) {
    throw new Error(
      `neuralCollapseMetrics: classifier has ${classifier.length} values, want ${K}x${d}`,
    );
  }
  const present: number[] = [];
  for (let c = 0; c < K; c++) if (stats.counts[c] > 0) present.push(c);
  const Kp = present.length;
  let N = 0;
  for (const c of present) N += stats.counts[c];
  const mu = mat(Kp, d);
  const muG = new Float64Array(d);
  present.forEach((c, r) => {
    for (let k = 0; k < d; k++) {
      const s = stats.classSums[c * d + k];
      mu.data[r * d + k] = s / stats.counts[c];
      muG[k] += s / N;
    }
  });
  const H = mat(Kp, d);
  for (let r = 0; r < Kp; r++) {
    for (let k = 0; k < d; k++) H.data[r * d + k] = mu.data[r * d + k] - muG[k];
  }
  const W = mat(Kp, d);
  present.forEach((c, r) => {
    for (let k = 0; k < d; k++) W.data[r * d + k] = classifier[c * d + k];
  });
  // S_W = (gram - sum_c n_c mu_c mu_c^T) / N
  const SW = mat(d, d, stats.gram);
  present.forEach((c, r) => {
    const n = stats.counts[c];
    for (let i = 0; i < d; i++) {
      const mi = mu.data[r * d + i] * n;
      if (mi === 0) continue;
      for (let j = 0; j < d; j++) SW.data[i * d + j] -= mi * mu.data[r * d + j];
    }
  });
  for (let i = 0; i < SW.data.length; i++) SW.data[i] /= N;
  // S_B = H^T H / K, so S_B^+ = K H^T (H H^T)^{+2} H and Tr(S_W S_B^+) = K Tr(G^{+2} H S_W H^T).
  const G = matmul(H, H, false, true);
  const G2 = symmetricPinv(G, 2);
  const HSWHt = matmul(matmul(H, SW), H, false, true);
  let tr = 0;
  const P = matmul(G2, HSWHt);
  for (let i = 0; i < Kp; i++) tr += P.data[i * Kp + i];
  const nc1 = Kp > 1 ? tr : NaN;

  const nh = frobenius(H), nw = frobenius(W);
  let dist = 0;
  for (let i = 0; i < H.data.length; i++) dist += (H.data[i] / nh - W.data[i] / nw) ** 2;

  const cosH: number[] = [], cosW: number[] = [], cosHW: number[] = [];
  const diag: number[] = new Array(K).fill(NaN);
  for (let i = 0; i < Kp; i++) {
    for (let j = 0; j < Kp; j++) {
      if (i === j) {
        diag[present[i]] = rowCos(H, i, W, i);
        continue;
      }
      if (j > i) {
        cosH.push(rowCos(H, i, H, j));
        cosW.push(rowCos(W, i, W, j));
      }
      cosHW.push(rowCos(H, i, W, j));
    }
  }
  const [meanCosH, stdCosH] = meanStd(cosH);
  const [meanCosW, stdCosW] = meanStd(cosW);
  const [meanCosHW, stdCosHW] = meanStd(cosHW);
  const [meanDiagCosHW] = meanStd(diag.filter((x) => !Number.isNaN(x)));
  return {
    nc1,
    normalizedDistance: dist,
    meanCosH,
    stdCosH,
    meanCosW,
    stdCosW,
    meanCosHW,
    stdCosHW,
    meanDiagCosHW,
    diagCosHW: diag,
  };
}
