/**
 * Per-dataset channel means and standard deviations (RGB, on pixel values scaled to [0, 1]), as used
 * by the paper's official code and torchvision recipes.
 * @module
 */

/** Mean and standard deviation per channel. */
export interface ChannelStats {
  /** Per-channel mean, in [0, 1] pixel units. */
  mean: readonly number[];
  /** Per-channel standard deviation, in [0, 1] pixel units. */
  std: readonly number[];
}

/** Normalisation constants by dataset name. */
export const DATASET_STATS: Readonly<Record<string, ChannelStats>> = {
  cifar10: { mean: [0.4914, 0.4822, 0.4465], std: [0.2023, 0.1994, 0.2010] },
  cifar100: { mean: [0.5071, 0.4865, 0.4409], std: [0.2673, 0.2564, 0.2762] },
  svhn: { mean: [0.4377, 0.4438, 0.4728], std: [0.198, 0.201, 0.197] },
  stl10: { mean: [0.4467, 0.4398, 0.4066], std: [0.2603, 0.2566, 0.2713] },
  imagenet: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  cub: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  /** Maps [0, 255] to [-1, 1]; used by the synthetic dataset. */
  synthetic: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
};

/** The stats of a dataset by name (case-insensitive; "cifar-10", "CIFAR10" and "cifar10" match). */
export function datasetStats(name: string): ChannelStats {
  const key = name.toLowerCase().replace(/[-_ ]/g, "").replace(/lt$/, "");
  const s = DATASET_STATS[key];
  if (!s) {
    throw new Error(
      `datasetStats: no stats for "${name}" (known: ${Object.keys(DATASET_STATS).join(", ")})`,
    );
  }
  return s;
}
