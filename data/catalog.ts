// Owns the list of official dataset files: URLs, sizes and published checksums, plus the
// by-hand instructions for files that cannot be fetched automatically (ImageNet, ImageNet-LT).

import { ensureFile, type EnsureFileOptions } from "./download.ts";

/** One official file of a dataset. */
export interface CatalogEntry {
  /** File name in the cache (as distributed). */
  fileName: string;
  /** Official URL; "" when the file must be obtained by hand. */
  url: string;
  /** Published MD5 of the file (lowercase hex), if any. */
  md5?: string;
  /** SHA-256 of the file (lowercase hex), if known. */
  sha256?: string;
  /** Size in bytes, if known. */
  size?: number;
  /** Instructions for obtaining the file by hand. */
  manual?: string;
}

/**
 * Official files by id. Checksums are the ones published by the dataset authors or used by
 * torchvision; sizes are the archive sizes in bytes.
 */
export const CATALOG = {
  "cifar10": {
    fileName: "cifar-10-binary.tar.gz",
    url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    md5: "c32a1d4ab5d03f1284b67883e8d87530",
    size: 170052171,
  },
  "cifar100": {
    fileName: "cifar-100-binary.tar.gz",
    url: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
    md5: "03b5dce01913d631647c71ecec9e9cb8",
    size: 168513733,
  },
  "svhn-train": {
    fileName: "train_32x32.mat",
    url: "http://ufldl.stanford.edu/housenumbers/train_32x32.mat",
    md5: "e26dedcc434d2e4c54c9b2d4a06d8373",
    size: 182040794,
  },
  "svhn-test": {
    fileName: "test_32x32.mat",
    url: "http://ufldl.stanford.edu/housenumbers/test_32x32.mat",
    md5: "eb5a983be6a315427106f1b1b7ee9e7e",
    size: 64275384,
  },
  "svhn-extra": {
    fileName: "extra_32x32.mat",
    url: "http://ufldl.stanford.edu/housenumbers/extra_32x32.mat",
    md5: "a93ce644f1a588dc4d68dda5feec44a7",
    size: 1329278602,
  },
  "stl10": {
    fileName: "stl10_binary.tar.gz",
    url: "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",
    md5: "91f7769df0f17e558f3565bffb0c7dfb",
    size: 2640397119,
  },
  "cub200": {
    fileName: "CUB_200_2011.tgz",
    url: "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz",
    md5: "97eceeb196236b17998738112f37df78",
    size: 1150585339,
  },
  "imagenet-lt-train": {
    fileName: "ImageNet_LT_train.txt",
    url: "",
    manual: "ImageNet-LT split lists come from the OLTR project " +
      "(https://github.com/zhmiao/OpenLongTailRecognition-OLTR, Google Drive link in its README).",
  },
  "imagenet-lt-val": {
    fileName: "ImageNet_LT_val.txt",
    url: "",
    manual: "ImageNet-LT split lists come from the OLTR project " +
      "(https://github.com/zhmiao/OpenLongTailRecognition-OLTR, Google Drive link in its README).",
  },
  "imagenet-lt-test": {
    fileName: "ImageNet_LT_test.txt",
    url: "",
    manual: "ImageNet-LT split lists come from the OLTR project " +
      "(https://github.com/zhmiao/OpenLongTailRecognition-OLTR, Google Drive link in its README).",
  },
} as const satisfies Record<string, CatalogEntry>;

/** Ids of {@link CATALOG}. */
export type CatalogId = keyof typeof CATALOG;

/**
 * Returns the local path of an official file, downloading and verifying it when needed.
 *
 * @example
 * ```ts
 * const tgz = await fetchDataset("cifar10"); // ~/.cache/collapse/cifar-10-binary.tar.gz
 * ```
 */
export function fetchDataset(
  id: CatalogId,
  options: Omit<EnsureFileOptions, "url" | "md5" | "sha256" | "size" | "fileName"> = {},
): Promise<string> {
  const e: CatalogEntry = CATALOG[id];
  if (!e) throw new Error(`unknown dataset file "${id}"; known: ${Object.keys(CATALOG)}`);
  return ensureFile({ ...e, ...options });
}
