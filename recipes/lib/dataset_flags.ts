/**
 * The recipes' dataset flags and how they map onto `loadDataset`'s options: `--no-verify` (every
 * recipe: accept a local copy that is not the official release, with a warning; the formats' CRC
 * and structure checks still apply), `--no-extra`
 * (SVHN: leave out extra_32x32.mat, which the official protocol trains on) and `--dataset-stats`
 * (CIFAR-100, SVHN, STL-10: normalise with the dataset's own mean/std instead of the official
 * code's statistics).
 *
 * @module
 */

import type { DatasetId, LoadDatasetOptions } from "../../data/datasets/mod.ts";
import type { ExtraFlag, RecipeFlags } from "./flags.ts";

// Named for what they turn off (default false): a boolean flag absent from the command line
// parses as false.
const NO_VERIFY: ExtraFlag = {
  name: "no-verify",
  type: "boolean",
  help: "accept archives that are not the official release (MD5 differs), with a warning",
  default: false,
};

const NO_EXTRA: ExtraFlag = {
  name: "no-extra",
  type: "boolean",
  help: "leave out extra_32x32.mat (1.3 GB), which the official protocol also trains on",
  default: false,
};

const OWN_STATS: ExtraFlag = {
  name: "dataset-stats",
  type: "boolean",
  help: "normalise with the dataset's own mean/std, not the official code's",
  default: false,
};

/** The dataset flags of a recipe on dataset `id`. */
export function datasetFlags(id: DatasetId): ExtraFlag[] {
  const flags = [NO_VERIFY];
  if (id === "svhn") flags.push(NO_EXTRA);
  if (id === "cifar100" || id === "svhn" || id === "stl10") flags.push(OWN_STATS);
  return flags;
}

/** `loadDataset` options from the parsed dataset flags. */
export function datasetOptions(
  id: DatasetId,
  flags: RecipeFlags,
): Pick<LoadDatasetOptions, "verify" | "extra" | "stats"> {
  const x = flags.extra;
  return {
    verify: x["no-verify"] !== true,
    ...(id === "svhn" ? { extra: x["no-extra"] !== true } : {}),
    stats: x["dataset-stats"] === true ? "dataset" : "official",
  };
}
