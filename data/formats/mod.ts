// Owns the public surface of data/formats: official dataset readers, the MAT v5 reader, image
// decoding, plus the archive helpers, download and catalog they rely on.
/** @module */
export { chwToHwc, readCifar10, readCifar100 } from "./cifar.ts";
export type { Cifar100Options, Split } from "./cifar.ts";
export { mat5Variables, MI, MX_CLASS, readMat5 } from "./mat5.ts";
export type { MatArray, MatVariable, NumericArray } from "./mat5.ts";
export { readSvhn, svhnToHwc } from "./svhn.ts";
export { readStl10, readStl10Splits, stl10ToHwc } from "./stl10.ts";
export { cubImages, readCubMetadata } from "./cub.ts";
export type { CubImage, CubMetadata, CubOptions } from "./cub.ts";
export {
  classCounts as imageNetLtClassCounts,
  imageNetLtImages,
  parseImageNetLtList,
  readImageNetLtList,
} from "./imagenet_lt.ts";
export type { ImageNetLtOptions, ListedImage } from "./imagenet_lt.ts";
export { decodeImage, decodeResized, encodeJpeg, resizeShorterSide } from "./jpeg.ts";
export type { ResizeOptions, RgbImage } from "./jpeg.ts";
export { basename, datasetMembers, lines } from "./members.ts";
export type { Member } from "./members.ts";
export * from "../archive/mod.ts";
export { dataDir, ensureFile } from "../download.ts";
export type { EnsureFileOptions } from "../download.ts";
export { CATALOG, fetchDataset } from "../catalog.ts";
export type { CatalogEntry, CatalogId } from "../catalog.ts";
