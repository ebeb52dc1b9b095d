/**
 * Datasets in one call: {@linkcode loadDataset} (ready loaders and a {@linkcode DatasetInfo}),
 * {@linkcode prepareDataset} (the prepared shards only), the dataset registry, the head/medium/tail
 * groupings, the long-tail selection and the errors that say what to do.
 *
 * @example
 * ```ts ignore
 * import { loadDataset } from "./mod.ts";
 * const { train, test, info } = await loadDataset("cifar100", { ratio: 0.01, batchSize: 128 });
 * console.log(info.title, info.trainSize, info.groups);
 * ```
 *
 * @module
 */

export { loadDataset, type LoadDatasetOptions, type LoadedDataset } from "./load.ts";
export {
  datasetGroupings,
  type DatasetInfo,
  prepareDataset,
  preparedKey,
  type PrepareOptions,
} from "./prepare.ts";
export {
  DATASET_IDS,
  type DatasetFile,
  type DatasetId,
  DATASETS,
  type DatasetSpec,
  type StatsChoice,
  storedSide,
} from "./registry.ts";
export {
  type ClassGrouping,
  countGrouping,
  describeGrouping,
  type NamedGrouping,
  rangeGrouping,
} from "./groups.ts";
export {
  capPerClass,
  type LongTailSelection,
  longTailSelection,
  longTailSubset,
} from "./selection.ts";
export { DatasetOptionsError, DataUnavailableError, DataVerificationError } from "./errors.ts";
export type { SourceFile } from "./locate.ts";
export { checkOfficial, type FileIdentity, fileIdentity, type OfficialCheck } from "./verify.ts";
export { SVHN_LABEL_NOTE } from "./plans.ts";
