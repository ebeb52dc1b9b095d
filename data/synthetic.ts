/**
 * A small procedurally generated long-tailed image dataset for a no-download quickstart and tests.
 *
 * Each class is an oriented sinusoidal grating with a class-specific orientation and spatial
 * frequency under a Gaussian window, drawn in a class-typical colour over a random background. Every
 * image has a random phase, window position/size, orientation and frequency jitter, often a random
 * colour (so colour alone does not identify the class) and pixel noise: learnable, but not trivially.
 * The train split follows the exponential long-tail profile; the test split is balanced.
 * @module
 */

import type { ImageArray } from "./types.ts";
import { Rng } from "../gpu/rng.ts";
import { longTailCounts, type LongTailProfile } from "./long_tail.ts";
import { mixSeed } from "./samplers.ts";

/** Options of {@link syntheticDataset}. */
export interface SyntheticOptions {
  /** Classes (default 10). */
  numClasses?: number;
  /** Image side in pixels (default 32). */
  size?: number;
  /** Train images of the largest class (default 500). */
  nMax?: number;
  /** Imbalance ratio n_min / n_max of the train split (default 0.01; 1 = balanced). */
  ratio?: number;
  /** Long-tail profile (default "exp"). */
  profile?: LongTailProfile;
  /** Test images per class (default 100). */
  testPerClass?: number;
  /** Seed (default 0): the same seed gives the same bytes. */
  seed?: number;
}

/**
 * Train (long-tailed) and test (balanced) splits of the synthetic dataset, as uint8 HWC ImageArrays.
 *
 * @example
 * ```ts
 * import { syntheticDataset } from "./synthetic.ts";
 * const { train, test } = syntheticDataset({ ratio: 0.1, seed: 1 });
 * console.log(train.labels.length, test.labels.length); // 2,040 and 1,000
 * ```
 */
export function syntheticDataset(
  opts: SyntheticOptions = {},
): { train: ImageArray; test: ImageArray } {
  const k = opts.numClasses ?? 10;
  const size = opts.size ?? 32;
  const seed = opts.seed ?? 0;
  const trainCounts = longTailCounts(
    opts.profile ?? "exp",
    opts.nMax ?? 500,
    k,
    opts.ratio ?? 0.01,
  );
  const testCounts = new Array<number>(k).fill(opts.testPerClass ?? 100);
  return {
    train: syntheticSplit(trainCounts, size, new Rng(mixSeed(seed, 0x7a11))),
    test: syntheticSplit(testCounts, size, new Rng(mixSeed(seed, 0x7e57))),
  };
}

/** A split with counts[c] images of class c, in a random order. */
export function syntheticSplit(counts: readonly number[], size: number, rng: Rng): ImageArray {
  const k = counts.length;
  const n = counts.reduce((a, b) => a + b, 0);
  const labels = new Int32Array(n);
  let j = 0;
  for (let c = 0; c < k; c++) for (let i = 0; i < counts[c]; i++) labels[j++] = c;
  rng.shuffle(labels);
  const stride = size * size * 3;
  const images = new Uint8Array(n * stride);
  for (let i = 0; i < n; i++) {
    drawSyntheticImage(labels[i], k, size, rng, images.subarray(i * stride, (i + 1) * stride));
  }
  return {
    images,
    labels,
    height: size,
    width: size,
    channels: 3,
    numClasses: k,
    classNames: Array.from({ length: k }, (_, c) => `pattern_${c}`),
  };
}

/** HSV (h in [0, 1), s = v = 1 scaled) to RGB in [0, 1]. */
function hueToRgb(h: number, s: number, v: number): [number, number, number] {
  const i = Math.floor(h * 6) % 6, f = h * 6 - Math.floor(h * 6);
  const p = v * (1 - s), q = v * (1 - f * s), t = v * (1 - (1 - f) * s);
  return ([[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]] as const)[i]
    .slice() as [
      number,
      number,
      number,
    ];
}

/** Draws one image of class `c` (HWC uint8, size x size x 3) into `out`. */
export function drawSyntheticImage(
  c: number,
  numClasses: number,
  size: number,
  rng: Rng,
  out: Uint8Array,
): void {
  const step = Math.PI / numClasses;
  const theta = c * step + 0.3 * step * rng.normal();
  // Frequencies in cycles per image: two bands, so neighbouring orientations also differ by frequency.
  const cycles = (c % 2 === 0 ? 2.5 : 4.5) * (1 + 0.12 * (2 * rng.next() - 1)) * (size / 32);
  const freq = (2 * Math.PI * cycles) / size;
  const phase = 2 * Math.PI * rng.next();
  const cx = size / 2 + (rng.next() - 0.5) * size * 0.4;
  const cy = size / 2 + (rng.next() - 0.5) * size * 0.4;
  const sigma = size * (0.22 + 0.15 * rng.next());
  const hue = rng.next() < 0.6
    ? ((c * 3) % numClasses) / numClasses + 0.04 * rng.normal()
    : rng.next();
  const fg = hueToRgb(((hue % 1) + 1) % 1, 0.5 + 0.5 * rng.next(), 0.6 + 0.4 * rng.next());
  const bgLevel = 0.15 + 0.5 * rng.next();
  const bg = [0, 1, 2].map(() => bgLevel + 0.1 * (rng.next() - 0.5));
  const noise = 0.04 + 0.06 * rng.next();
  const ct = Math.cos(theta), st = Math.sin(theta);
  const inv2s2 = 1 / (2 * sigma * sigma);
  let q = 0;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const dx = x - cx, dy = y - cy;
      const env = Math.exp(-(dx * dx + dy * dy) * inv2s2);
      const wave = 0.5 + 0.5 * Math.cos(freq * (dx * ct + dy * st) + phase);
      const a = env * wave;
      for (let ch = 0; ch < 3; ch++) {
        const v = bg[ch] + a * (fg[ch] - bg[ch]) + noise * rng.normal();
        out[q++] = v <= 0 ? 0 : v >= 1 ? 255 : Math.round(v * 255);
      }
    }
  }
}
