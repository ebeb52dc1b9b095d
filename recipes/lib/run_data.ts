/**
 * A recipe run's data: the dataset options its flags give, the dataset prepared (found or
 * downloaded, verified, long-tailed, sharded) with its training and test loaders, and the test
 * split as an in-order data source for evaluation.
 *
 * @module
 */

import {
  type DatasetInfo,
  DatasetOptionsError,
  loadDataset,
  type LoadDatasetOptions,
  type LoadedDataset,
  prepareDataset,
} from "../../data/datasets/mod.ts";
import { Loader } from "../../data/loader.ts";
import { InstanceSampler } from "../../data/samplers.ts";
import type { DataSource } from "../../nn/training/state.ts";
import { datasetOptions } from "./dataset_flags.ts";
import { UsageError } from "./errors.ts";
import { extraNumber, extraString, type RecipeFlags, samplerKind } from "./flags.ts";
import type { RecipeSpec } from "./recipe_specs.ts";

/** `loadDataset`'s options for this recipe and these flags; `log` prints progress. */
function datasetLoadOptions(
  spec: RecipeSpec,
  flags: RecipeFlags,
  log: (line: string) => void,
): LoadDatasetOptions {
  return {
    dataDir: flags.dataDir,
    ratio: flags.ratio,
    seed: flags.seed,
    limit: flags.limit,
    imageSize: extraNumber(flags, "image-size"),
    imagenetDir: extraString(flags, "imagenet-dir"),
    ...datasetOptions(spec.dataset, flags),
    context: spec.name,
    log,
  };
}

/** The recipe's data, prepared (found or downloaded, verified, long-tailed, sharded). */
export async function prepareRunData(
  spec: RecipeSpec,
  flags: RecipeFlags,
  log: (line: string) => void,
): Promise<DatasetInfo> {
  return await prepareDataset(spec.dataset, datasetLoadOptions(spec, flags, log));
}

/**
 * The recipe's data with its training and test loaders. A batch larger than the training split
 * is a usage error, found from the counts before any shard is written.
 */
export async function loadRunData(
  spec: RecipeSpec,
  flags: RecipeFlags,
  log: (line: string) => void,
): Promise<LoadedDataset> {
  try {
    return await loadDataset(spec.dataset, {
      ...datasetLoadOptions(spec, flags, log),
      batchSize: flags.batchSize,
      sampler: samplerKind(flags.sampler),
      workers: flags.workers,
      totalEpochs: flags.epochs,
    });
  } catch (e) {
    if (e instanceof DatasetOptionsError && e.option === "batchSize") {
      throw new UsageError(
        `${
          e.message.replace(/^loadDataset: batchSize/, "--batch-size")
            .replace("with limit", "with --limit")
        }; lower it`,
      );
    }
    throw e;
  }
}

/** The test split in order, every image once, as a data source; `close` ends its loader. */
export async function testSource(
  flags: RecipeFlags,
  data: DatasetInfo,
): Promise<{ source: DataSource; close(): void }> {
  const loader = new Loader({
    source: data.testDir,
    sampler: new InstanceSampler(data.testSize, { shuffle: false }),
    batchSize: flags.batchSize,
    augment: data.testAugment,
    seed: flags.seed,
    workers: flags.workers,
  });
  try {
    const { sampler } = await loader.ready();
    const n = Math.ceil(sampler.length / flags.batchSize); // the last partial batch included
    const source: DataSource = { batches: (e) => loader.batches(e), batchesPerEpoch: () => n };
    return { source, close: () => loader.close() };
  } catch (e) {
    loader.close();
    throw e;
  }
}
