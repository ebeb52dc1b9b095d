/**
 * The recipes' dataset flags and how they map onto `loadDataset`'s options: `--no-verify` (every
 * recipe: accept a local copy that is not the official release, with a warning), `--no-extra`
 * (SVHN: leave out extra_32x32.mat, which the official protocol trains on) and `--dataset-stats`
 * (CIFAR-100, SVHN, STL-10: normalise with the dataset's own mean/std instead of the official
 * code's statistics).
 *
 * @module
 */

import type { DatasetId, LoadDatasetOptions } from "../../data/datasets/mod.ts";
import type { ExtraFlag, RecipeFlags } from "./flags.ts";

const VERIFY: ExtraFlag = {
  name: "verify",
  type: "boolean",
  help: "check local archives against their published MD5; --no-verify accepts a copy that is " +
    "not the official release (re-encoded, custom) with a warning",
  default: true,
};

const SVHN_EXTRA: ExtraFlag = {
  name: "extra",
  type: "boolean",
  help: "also train on extra_32x32.mat, long-tailed the same way, as the official protocol " +
    "(1.3 GB download); --no-extra drops it",
  default: true,
};

const OWN_STATS: ExtraFlag = {
  name: "dataset-stats",
  type: "boolean",
  help: "normalise with the dataset's own mean/std instead of the statistics the official code " +
    "uses",
  default: false,
};

/** The dataset flags of a recipe on dataset `id`. */
export function datasetFlags(id: DatasetId): ExtraFlag[] {
  const flags = [VERIFY];
  if (id === "svhn") flags.push(SVHN_EXTRA);
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
    verify: x.verify !== false,
    ...(id === "svhn" ? { extra: x.extra !== false } : {}),
    stats: x["dataset-stats"] === true ? "dataset" : "official",
  };
}
