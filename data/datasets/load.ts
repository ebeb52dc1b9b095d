/**
 * Datasets in one call, as `torchvision.datasets` or `tfds.load` give them: the official files
 * found or downloaded and verified, the long-tailed training split prepared and cached as shards,
 * and two ready {@linkcode Loader}s with the dataset's augmentation and normalisation, plus a
 * {@linkcode DatasetInfo} with the counts, class names and head/medium/tail groupings.
 *
 * @module
 */

import { Loader } from "../loader.ts";
import { InstanceSampler, type SamplerKind } from "../samplers.ts";
import { DatasetOptionsError } from "./errors.ts";
import {
  type DatasetInfo,
  type PrepareOptions,
  prepareResolved,
  resolvePrepareOptions,
} from "./prepare.ts";
import type { DatasetId } from "./registry.ts";

/** Options of {@linkcode loadDataset}: the preparation's, then the loaders'. */
export interface LoadDatasetOptions extends PrepareOptions {
  /** Training batch size (default 128); a training split smaller than it is refused. */
  batchSize?: number;
  /** Test batch size (default: `batchSize`). */
  testBatchSize?: number;
  /** Training sampler (default "instance": a plain shuffle, as the paper trains). */
  sampler?: SamplerKind;
  /**
   * Drop the last incomplete training batch (default false: it is kept, as the official loader
   * does; CIFAR-10-LT at batch 128 then has 96 full steps and one of 118 images per epoch).
   */
  dropLast?: boolean;
  /** 0: make batches in the calling thread; 1 (default): in a prefetching worker. */
  workers?: 0 | 1;
  /** Batches in flight with a worker (default 3). */
  prefetch?: number;
  /** Total epochs, for the "progressive" sampler (default 200). */
  totalEpochs?: number;
}

/** What {@linkcode loadDataset} returns. Close it (or `using` it) to stop the loaders' workers. */
export interface LoadedDataset {
  /** Shuffled, augmented training batches (`batches(epoch)`, `batchesPerEpoch()`). */
  train: Loader;
  /** The whole test split in order, normalised, the last batch possibly smaller. */
  test: Loader;
  /** Counts, class names, groupings, sources and notes of the prepared data. */
  info: DatasetInfo;
  /** Stops both loaders' workers. */
  close(): void;
  /** Same as {@linkcode LoadedDataset.close}, for `using`. */
  [Symbol.dispose](): void;
}

const LOADER_KEYS = ["testBatchSize", "sampler", "dropLast", "workers", "prefetch", "totalEpochs"];
const SAMPLERS: readonly SamplerKind[] = ["instance", "class", "sqrt", "progressive"];

function checkLoaderOptions(o: LoadDatasetOptions): void {
  const int = (k: "testBatchSize" | "prefetch" | "totalEpochs") => {
    const v = o[k];
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= 1)) {
      throw new DatasetOptionsError(`loadDataset: ${k} must be an integer >= 1, got ${v}`, k);
    }
  };
  int("testBatchSize");
  int("prefetch");
  int("totalEpochs");
  if (o.sampler !== undefined && !SAMPLERS.includes(o.sampler)) {
    throw new DatasetOptionsError(
      `loadDataset: sampler must be one of ${SAMPLERS.join(", ")}; got ${
        JSON.stringify(o.sampler)
      }`,
      "sampler",
    );
  }
  if (o.workers !== undefined && o.workers !== 0 && o.workers !== 1) {
    throw new DatasetOptionsError(
      `loadDataset: workers must be 0 or 1, got ${o.workers}`,
      "workers",
    );
  }
  if (o.dropLast !== undefined && typeof o.dropLast !== "boolean") {
    throw new DatasetOptionsError("loadDataset: dropLast must be a boolean", "dropLast");
  }
}

/**
 * Loads a dataset in one call: finds its official files in `dataDir` (or downloads them from the
 * official URLs), checks them against their published MD5 (once; `verify: false` accepts a copy
 * that is not the official release), prepares the training split long-tailed at `ratio` and
 * capped at `limit` (cached as shards under `<dataDir>/prepared/`), and returns ready training and
 * test {@linkcode Loader}s with the dataset's augmentation and normalisation.
 *
 * Errors say what to do: `DataUnavailableError` (which files to fetch from where, and where to
 * put them), `DataVerificationError` (the file is not the official release; `--no-verify` /
 * `verify: false`), {@linkcode DatasetOptionsError} (a bad option, or a batch larger than the
 * training split), all thrown before anything is written.
 *
 * @example
 * ```ts ignore
 * import { loadDataset } from "./load.ts";
 * const { train, test, info } = await loadDataset("cifar10", { ratio: 0.01, batchSize: 128 });
 * console.log(info.trainCounts); // [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
 * console.log(train.batchesPerEpoch()); // 97: 96 full batches and one of 118 images
 * for await (const batch of train.batches(0)) console.log(batch.shape); // [128, 32, 32, 3] ...
 * train.close();
 * test.close();
 * ```
 */
export async function loadDataset(
  id: DatasetId,
  options: LoadDatasetOptions = {},
): Promise<LoadedDataset> {
  const o = resolvePrepareOptions(id, options, LOADER_KEYS);
  checkLoaderOptions(options);
  const batchSize = o.batchSize ?? 128;
  const info = await prepareResolved(id, { ...o, batchSize });
  const workers = options.workers ?? 1;
  const train = new Loader({
    source: info.trainDir,
    sampler: options.sampler ?? "instance",
    batchSize,
    dropLast: options.dropLast ?? false,
    augment: info.trainAugment,
    seed: o.seed,
    workers,
    prefetch: options.prefetch,
    totalEpochs: options.totalEpochs,
  });
  const test = new Loader({
    source: info.testDir,
    sampler: new InstanceSampler(info.testSize, { shuffle: false }),
    batchSize: options.testBatchSize ?? batchSize,
    augment: info.testAugment,
    seed: o.seed,
    workers,
    prefetch: options.prefetch,
  });
  await Promise.all([train.ready(), test.ready()]);
  const close = () => {
    train.close();
    test.close();
  };
  return { train, test, info, close, [Symbol.dispose]: close };
}
