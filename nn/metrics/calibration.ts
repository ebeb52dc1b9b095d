/**
 * Calibration: the expected calibration error (ECE) over equal-width confidence bins, defined as the
 * official ImbalancedLearning code computes it (`utils/metric.py: calibration`, 15 bins): the
 * confidence of an example is its largest softmax probability (softmax of the logits, for the ETF
 * head `h M` and for a learnable head alike), its prediction the argmax; bin b (1-based) holds the
 * confidences in ((b-1)/B, b/B] (numpy `digitize(..., right=True)`; a confidence of 0 or above 1
 * falls in no bin); ECE = sum_b n_b |acc_b - conf_b| / sum_b n_b and MCE = max_b |acc_b - conf_b|
 * (empty bins count 0). Values here are fractions in [0, 1] (the official log prints ECE x 100).
 *
 * `evaluate` accumulates the per-bin sums on the GPU ({@link calibrationEdges}) and finalises them
 * with {@link calibrationFromBins}; {@link expectedCalibrationError} is the same definition over
 * per-example host arrays.
 * @module
 */

/** The number of bins of the official code and of the paper's tables. */
export const DEFAULT_CALIBRATION_BINS = 15;

/** One confidence bin. */
export interface CalibrationBin {
  /** Lower confidence bound (exclusive). */
  lower: number;
  /** Upper confidence bound (inclusive). */
  upper: number;
  /** Examples in the bin. */
  count: number;
  /** Mean confidence of the bin (0 when empty). */
  confidence: number;
  /** Accuracy of the bin (0 when empty). */
  accuracy: number;
}

/** Calibration of one split. */
export interface Calibration {
  /** Expected calibration error, a fraction in [0, 1]. */
  ece: number;
  /** Maximum calibration error over the bins (empty bins count 0), a fraction. */
  mce: number;
  /** Mean confidence over the binned examples. */
  meanConfidence: number;
  /** The bins in order of confidence (a reliability diagram). */
  bins: CalibrationBin[];
}

function checkBins(numBins: number): void {
  if (!Number.isInteger(numBins) || numBins < 1) {
    throw new Error(`collapse: calibration: numBins must be a positive integer, got ${numBins}`);
  }
}

/** The largest float32 value <= v. */
function f32Below(v: number): number {
  const f = Math.fround(v);
  if (f <= v) return f;
  const bits = new Float32Array([f]);
  const u = new Uint32Array(bits.buffer);
  u[0] += f < 0 ? 1 : -1; // one ulp towards -infinity (f > v > 0 here)
  return bits[0];
}

/**
 * The `numBins + 1` comparison thresholds for float32 confidences: t_0 = 0, t_b = the largest
 * float32 <= e_b with e_b = b * (1/B) the float64 edges of numpy's `linspace(0, 1, B + 1)`,
 * t_B = 1. For a float32 confidence c, `c > t_b` holds exactly when c > e_b in float64 (numpy's
 * comparison), so bin membership on the GPU, `(c > t_{b-1}) - (c > t_b)`, equals the official
 * binning bit for bit.
 */
export function calibrationEdges(numBins: number = DEFAULT_CALIBRATION_BINS): Float32Array {
  checkBins(numBins);
  const t = new Float32Array(numBins + 1);
  for (let b = 1; b < numBins; b++) t[b] = f32Below(b * (1 / numBins));
  t[numBins] = 1;
  return t;
}

/**
 * Finalises per-bin sums (examples, summed confidence, summed correct predictions, bin b at index
 * b-1) into ECE, MCE and the reliability diagram's bins.
 */
export function calibrationFromBins(
  counts: ArrayLike<number>,
  confidenceSums: ArrayLike<number>,
  correctSums: ArrayLike<number>,
): Calibration {
  const B = counts.length;
  checkBins(B);
  if (confidenceSums.length !== B || correctSums.length !== B) {
    throw new Error(
      `collapse: calibration: ${B} bin counts but ${confidenceSums.length} confidence and ` +
        `${correctSums.length} correct sums`,
    );
  }
  const bins: CalibrationBin[] = [];
  let n = 0, gapSum = 0, confSum = 0, mce = 0;
  for (let b = 0; b < B; b++) {
    const count = counts[b];
    const confidence = count > 0 ? confidenceSums[b] / count : 0;
    const accuracy = count > 0 ? correctSums[b] / count : 0;
    const gap = Math.abs(accuracy - confidence);
    n += count;
    gapSum += gap * count;
    confSum += confidenceSums[b];
    mce = Math.max(mce, gap);
    bins.push({
      lower: b * (1 / B),
      upper: b + 1 === B ? 1 : (b + 1) * (1 / B),
      count,
      confidence,
      accuracy,
    });
  }
  return {
    ece: n > 0 ? gapSum / n : NaN,
    mce: n > 0 ? mce : NaN,
    meanConfidence: n > 0 ? confSum / n : NaN,
    bins,
  };
}

/**
 * ECE of per-example confidences (the largest softmax probability), predictions and labels, as the
 * official code computes it (15 bins by default).
 *
 * @example
 * ```ts
 * import { expectedCalibrationError } from "./calibration.ts";
 * // Two examples at confidence 0.9, one right and one wrong: |0.5 - 0.9| = 0.4.
 * const c = expectedCalibrationError([0.9, 0.9], [1, 2], [1, 0]);
 * console.log(c.ece.toFixed(2)); // "0.40"
 * ```
 */
export function expectedCalibrationError(
  confidences: ArrayLike<number>,
  predictions: ArrayLike<number>,
  labels: ArrayLike<number>,
  numBins: number = DEFAULT_CALIBRATION_BINS,
): Calibration {
  checkBins(numBins);
  const N = confidences.length;
  if (predictions.length !== N || labels.length !== N) {
    throw new Error(
      `collapse: calibration: ${N} confidences, ${predictions.length} predictions, ` +
        `${labels.length} labels`,
    );
  }
  const counts = new Float64Array(numBins);
  const conf = new Float64Array(numBins);
  const hits = new Float64Array(numBins);
  for (let i = 0; i < N; i++) {
    const c = confidences[i];
    if (!(c > 0) || c > 1) continue; // numpy digitize(right=True): bins 0 and B+1 are dropped
    // The smallest b >= 1 with c <= edge_b, edges as numpy's linspace makes them (b * (1/B)).
    const step = 1 / numBins;
    let b = Math.min(numBins, Math.max(1, Math.ceil(c * numBins)));
    while (b > 1 && c <= (b - 1) * step) b--;
    while (b < numBins && c > b * step) b++;
    counts[b - 1]++;
    conf[b - 1] += c;
    if (predictions[i] === labels[i]) hits[b - 1]++;
  }
  return calibrationFromBins(counts, conf, hits);
}
