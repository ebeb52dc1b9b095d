/**
 * The datasets {@linkcode loadDataset} serves and what is known about each: its official files
 * (and the extracted folders accepted instead of an archive), its image size, the normalisation
 * the official code uses and the dataset's own statistics, the train/test augmentation, and the
 * remarks a report of a run on it must carry.
 *
 * @module
 */

import type { AugmentSpec } from "../augment.ts";
import type { CatalogId } from "../catalog.ts";
import { type ChannelStats, DATASET_STATS } from "../normalize.ts";

/** The datasets {@linkcode loadDataset} serves. */
export type DatasetId = "cifar10" | "cifar100" | "svhn" | "stl10" | "cub" | "imagenet_lt";

/** Which normalisation statistics: the ones the official code uses, or the dataset's own. */
export type StatsChoice = "official" | "dataset";

/** One official file of a dataset, with the extracted folder names accepted instead of it. */
export interface DatasetFile {
  /** The file's catalog entry (URL, size, published MD5). */
  id: CatalogId;
  /** Names of the extracted folder accepted instead of the archive. */
  folders: readonly string[];
  /** SVHN's extra split: needed only with `extra: true`. */
  extraSplit?: boolean;
}

/** How a dataset is read, normalised and augmented. */
export interface DatasetSpec {
  /** The dataset's id. */
  id: DatasetId;
  /** Display name, e.g. `"CIFAR-10"`. */
  title: string;
  /** Side of the stored images (array datasets) or the default training side (JPEG datasets). */
  imageSize: number;
  /** JPEG datasets (CUB, ImageNet-LT) are stored as encoded shards and decoded per batch. */
  encoded: boolean;
  /** The statistics the official ImbalancedLearning code normalises with. */
  officialStats: ChannelStats;
  /** The dataset's own per-channel mean and standard deviation. */
  ownStats: ChannelStats;
  /** Training augmentation at side `size` with statistics `stats`. */
  trainAugment(size: number, stats: ChannelStats): AugmentSpec;
  /** Test preprocessing at side `size` with statistics `stats`. */
  testAugment(size: number, stats: ChannelStats): AugmentSpec;
  /** The official files. */
  files: readonly DatasetFile[];
}

/** The official code scales SVHN and STL-10 to [-1, 1] (mean 0.5, std 0.5). */
const HALF: ChannelStats = { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };

/**
 * Stored side of the JPEG datasets' shards for training side `size` (torchvision's 256 for 224).
 *
 * @example
 * ```ts
 * import { storedSide } from "./registry.ts";
 * console.log(storedSide(224)); // 256
 * ```
 */
export function storedSide(size: number): number {
  return Math.round(size * 256 / 224);
}

const cifarTrain = (_: number, s: ChannelStats): AugmentSpec => ({
  kind: "crop_flip",
  pad: 4,
  flip: true,
  ...s,
});
const plain = (_: number, s: ChannelStats): AugmentSpec => ({ kind: "normalize", ...s });
const jpegTrain = (size: number, s: ChannelStats): AugmentSpec => ({
  kind: "random_resized_crop",
  size,
  flip: true,
  jitter: 0.4,
  ...s,
});
const jpegTest = (size: number, s: ChannelStats): AugmentSpec => ({
  kind: "center_crop",
  size,
  resize: storedSide(size),
  ...s,
});

/** Every dataset's spec. */
export const DATASETS: Readonly<Record<DatasetId, DatasetSpec>> = {
  cifar10: {
    id: "cifar10",
    title: "CIFAR-10",
    imageSize: 32,
    encoded: false,
    officialStats: DATASET_STATS.cifar10,
    ownStats: DATASET_STATS.cifar10,
    trainAugment: cifarTrain,
    testAugment: plain,
    files: [{ id: "cifar10", folders: ["cifar-10-batches-bin"] }],
  },
  cifar100: {
    id: "cifar100",
    title: "CIFAR-100",
    imageSize: 32,
    encoded: false,
    // The official code normalises CIFAR-100 with the CIFAR-10 statistics.
    officialStats: DATASET_STATS.cifar10,
    ownStats: DATASET_STATS.cifar100,
    trainAugment: cifarTrain,
    testAugment: plain,
    files: [{ id: "cifar100", folders: ["cifar-100-binary"] }],
  },
  svhn: {
    id: "svhn",
    title: "SVHN",
    imageSize: 32,
    encoded: false,
    officialStats: HALF,
    ownStats: DATASET_STATS.svhn,
    trainAugment: plain,
    testAugment: plain,
    files: [
      { id: "svhn-train", folders: [] },
      { id: "svhn-extra", folders: [], extraSplit: true },
      { id: "svhn-test", folders: [] },
    ],
  },
  stl10: {
    id: "stl10",
    title: "STL-10",
    imageSize: 96,
    encoded: false,
    officialStats: HALF,
    ownStats: DATASET_STATS.stl10,
    trainAugment: plain,
    testAugment: plain,
    files: [{ id: "stl10", folders: ["stl10_binary"] }],
  },
  cub: {
    id: "cub",
    title: "CUB-200-2011",
    imageSize: 224,
    encoded: true,
    officialStats: DATASET_STATS.imagenet,
    ownStats: DATASET_STATS.cub,
    trainAugment: jpegTrain,
    testAugment: jpegTest,
    files: [{ id: "cub200", folders: ["CUB_200_2011"] }],
  },
  imagenet_lt: {
    id: "imagenet_lt",
    title: "ImageNet-LT",
    imageSize: 224,
    encoded: true,
    officialStats: DATASET_STATS.imagenet,
    ownStats: DATASET_STATS.imagenet,
    trainAugment: jpegTrain,
    testAugment: jpegTest,
    files: [
      { id: "imagenet-lt-train", folders: [] },
      { id: "imagenet-lt-test", folders: [] },
    ],
  },
};

/** The dataset ids, for messages and option checks. */
export const DATASET_IDS: readonly DatasetId[] = Object.keys(DATASETS) as DatasetId[];
