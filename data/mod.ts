/**
 * The data pipeline: datasets in one call (`loadDataset`), record types, compressed shards,
 * long-tailed subsets, samplers, augmentation, the prefetching loader, a synthetic dataset, and
 * the official dataset readers, downloads and archive helpers underneath.
 *
 * @example
 * ```ts
 * import { DATASET_STATS, Loader, syntheticDataset } from "./mod.ts";
 * const { train } = syntheticDataset({ ratio: 0.01 });
 * const loader = new Loader({
 *   source: train,
 *   batchSize: 128,
 *   augment: { kind: "crop_flip", pad: 4, ...DATASET_STATS.synthetic },
 * });
 * for await (const batch of loader.batches(0)) console.log(batch.shape);
 * loader.close();
 * ```
 * @module
 */

export type { Batch, EncodedImage, ImageArray } from "./types.ts";
export * from "./long_tail.ts";
export * from "./samplers.ts";
export * from "./normalize.ts";
export * from "./augment.ts";
export * from "./synthetic.ts";
export * from "./shards/format.ts";
export * from "./shards/writer.ts";
export * from "./shards/reader.ts";
export {
  BatchMaker,
  type ImageSource,
  MemorySource,
  openSource,
  type RawImage,
  ShardSource,
  type SourceSpec,
} from "./batch_maker.ts";
export * from "./loader.ts";
export * from "./formats/mod.ts";
export * from "./datasets/mod.ts";
export { isProcessAlive, removeStaleTemps } from "./stale_temp.ts";
