/**
 * Preparing a dataset: its official files found (or downloaded), verified against their published
 * MD5 (once; the digest is cached next to each file), read to their end, the long-tailed training
 * subset and the `limit` cap selected, the counts checked against the batch size, and both splits
 * written as shards under `<dataDir>/prepared/<key>/{train,test}` with `prepared.json` last.
 *
 * A prepared folder is reused only while it matches its sources (path, size, mtime and MD5 of every
 * file recorded in `prepared.json`) and every shard passes its CRC-32; otherwise it is rebuilt.
 * Temporaries left by killed runs (`*.tmp-<pid>-*`, `*.list-<pid>.txt`) are removed at start.
 * Processes preparing the same key take turns under an exclusive lock (`prepared/<key>.lock`).
 *
 * @module
 */

import { CATALOG, type CatalogEntry, type CatalogId } from "../catalog.ts";
import { dataDir as defaultDataDir } from "../download.ts";
import type { ChannelStats } from "../normalize.ts";
import type { AugmentSpec } from "../augment.ts";
import { pathExists } from "../path_exists.ts";
import { checkShardFolder, readManifest } from "../shards/reader.ts";
import { withFileLock } from "../file_lock.ts";
import { removeStaleTemps } from "../stale_temp.ts";
import { DatasetOptionsError, DataUnavailableError } from "./errors.ts";
import { type ClassGrouping, countGrouping, type NamedGrouping, rangeGrouping } from "./groups.ts";
import { findLocal, folderIdentity, locateFiles, type SourceFile } from "./locate.ts";
import {
  arrayPlan,
  cubPlan,
  imageNetLtPlan,
  type PlanSettings,
  type PreparePlan,
} from "./plans.ts";
import { DATASET_IDS, type DatasetId, DATASETS, type StatsChoice, storedSide } from "./registry.ts";
import { checkOfficial } from "./verify.ts";

/** Options of {@linkcode prepareDataset} (and of `loadDataset`). */
export interface PrepareOptions {
  /** Folder of the official files and of the prepared shards (default: $COLLAPSE_DATA_DIR, else ~/.cache/collapse). */
  dataDir?: string;
  /** Imbalance ratio n_min / n_max of the training split, in (0, 1] (default 1: as published). */
  ratio?: number;
  /** Seed of the long-tailed selection (default 0). */
  seed?: number;
  /** Cap on images per split, per class in proportion (quick runs; default none). */
  limit?: number;
  /** Training side of the JPEG datasets (default 224; their shards store 256/224 of it). */
  imageSize?: number;
  /** SVHN: add the extra split, long-tailed the same way, as the official protocol does (default true). */
  extra?: boolean;
  /**
   * Check every local archive against its published MD5 and refuse one that differs (default
   * true). `false` accepts it with a warning; the format's CRC and structure checks still apply.
   */
  verify?: boolean;
  /** Expected MD5 per catalog file, replacing the published one (a custom copy pinned by hash). */
  md5?: Partial<Record<CatalogId, string>>;
  /** Download missing files from the official URLs (default true). */
  download?: boolean;
  /** Normalisation: the statistics the official code uses (default) or the dataset's own. */
  stats?: StatsChoice;
  /** ImageNet-LT: the ImageNet folder holding train/ and val/ (default `<dataDir>/imagenet`). */
  imagenetDir?: string;
  /** Refuse (before writing anything) a training split with fewer images than this batch size. */
  batchSize?: number;
  /** Who needs the data, for messages (e.g. `"cifar10_lt"`). */
  context?: string;
  /** Progress and warning lines (default: to stderr). */
  log?: (line: string) => void;
}

/** Everything known about a prepared dataset. */
export interface DatasetInfo {
  /** The dataset's id, e.g. "cifar10". */
  id: DatasetId;
  /** e.g. "CIFAR-10". */
  title: string;
  /** Cache key: the folder name under `<dataDir>/prepared`. */
  key: string;
  /** The prepared folder `<dataDir>/prepared/<key>`. */
  dir: string;
  /** The training split's shard folder. */
  trainDir: string;
  /** The test split's shard folder. */
  testDir: string;
  /** Number of classes K (labels are 0..K-1). */
  numClasses: number;
  /** Class names by label. */
  classNames: string[];
  /** Training images per class (after the long tail and `limit`). */
  trainCounts: number[];
  /** Training images per class after the long tail, before `limit`. */
  fullTrainCounts: number[];
  /** Test images per class (after `limit`). */
  testCounts: number[];
  /** Training images in all. */
  trainSize: number;
  /** Test images in all. */
  testSize: number;
  /** Model input [height, width, channels]. */
  inputShape: [number, number, number];
  /** Normalisation statistics (per-channel mean and std on [0, 1] pixels). */
  stats: ChannelStats;
  /** Whether `stats` are the official code's or the dataset's own. */
  statsChoice: StatsChoice;
  /** The training loader's augmentation (with the normalisation). */
  trainAugment: AugmentSpec;
  /** The test loader's preprocessing (with the normalisation). */
  testAugment: AugmentSpec;
  /** The grouping the paper reports as head/medium/tail. */
  groups: ClassGrouping;
  /** Every grouping worth reporting; the first is {@linkcode DatasetInfo.groups}. */
  groupings: NamedGrouping[];
  /** The official files used, with their identity (size, mtime, MD5). */
  sources: SourceFile[];
  /** True when the shards were already there. */
  reused: boolean;
  /** Remarks a report on this data should carry. */
  notes: string[];
}

/** `prepared.json`: what a prepared folder was made from. */
interface PreparedRecord {
  format: typeof PREPARED_FORMAT;
  key: string;
  dataset: DatasetId;
  sources: SourceFile[];
  fullTrainCounts: number[];
  notes: string[];
  createdAt: string;
}

const PREPARED_FORMAT = "collapse-prepared-2";
const PREPARED_FILE = "prepared.json";

const OPTION_KEYS: readonly (keyof PrepareOptions)[] = [
  "dataDir",
  "ratio",
  "seed",
  "limit",
  "imageSize",
  "extra",
  "verify",
  "md5",
  "download",
  "stats",
  "imagenetDir",
  "batchSize",
  "context",
  "log",
];

/** {@linkcode PrepareOptions} with the defaults filled in. */
export type ResolvedPrepareOptions =
  & Required<Omit<PrepareOptions, "limit" | "md5" | "imagenetDir" | "batchSize">>
  & {
    limit?: number;
    md5: Partial<Record<CatalogId, string>>;
    imagenetDir?: string;
    batchSize?: number;
  };

function fail(option: string, message: string): never {
  throw new DatasetOptionsError(`loadDataset: ${message}`, option);
}

const positiveInt = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 1;

/** Checks the options (unknown keys, types, ranges) and fills in the defaults. */
export function resolvePrepareOptions(
  id: DatasetId,
  o: PrepareOptions,
  extraKeys: readonly string[] = [],
): ResolvedPrepareOptions {
  if (!DATASET_IDS.includes(id)) {
    fail("dataset", `unknown dataset "${id}"; known: ${DATASET_IDS.join(", ")}`);
  }
  for (const k of Object.keys(o)) {
    if (!(OPTION_KEYS as readonly string[]).includes(k) && !extraKeys.includes(k)) {
      fail(k, `unknown option "${k}"; known: ${[...OPTION_KEYS, ...extraKeys].join(", ")}`);
    }
  }
  const ratio = o.ratio ?? 1;
  if (!(typeof ratio === "number" && ratio > 0 && ratio <= 1)) {
    fail("ratio", `ratio must be in (0, 1], got ${ratio}`);
  }
  if (o.seed !== undefined && !Number.isSafeInteger(o.seed)) {
    fail("seed", `seed must be an integer, got ${o.seed}`);
  }
  for (const k of ["limit", "batchSize"] as const) {
    if (o[k] !== undefined && !positiveInt(o[k])) {
      fail(k, `${k} must be an integer >= 1, got ${o[k]}`);
    }
  }
  const size = o.imageSize ?? DATASETS[id].imageSize;
  if (!(Number.isInteger(size) && size >= 16 && size <= 1024)) {
    fail("imageSize", `imageSize must be an integer in [16, 1024], got ${o.imageSize}`);
  }
  if (
    o.imageSize !== undefined && !DATASETS[id].encoded && o.imageSize !== DATASETS[id].imageSize
  ) {
    fail("imageSize", `${DATASETS[id].title} is stored at ${DATASETS[id].imageSize} pixels`);
  }
  if (o.stats !== undefined && o.stats !== "official" && o.stats !== "dataset") {
    fail("stats", `stats must be "official" or "dataset", got ${JSON.stringify(o.stats)}`);
  }
  for (const k of ["extra", "verify", "download"] as const) {
    if (o[k] !== undefined && typeof o[k] !== "boolean") fail(k, `${k} must be a boolean`);
  }
  return {
    dataDir: o.dataDir ?? defaultDataDir(),
    ratio,
    seed: o.seed ?? 0,
    limit: o.limit,
    imageSize: size,
    extra: o.extra ?? true,
    verify: o.verify ?? true,
    md5: o.md5 ?? {},
    download: o.download ?? true,
    stats: o.stats ?? "official",
    imagenetDir: o.imagenetDir,
    batchSize: o.batchSize,
    context: o.context ?? id,
    log: o.log ?? ((line: string) => console.error(line)),
  };
}

/**
 * The cache key of a prepared dataset: `<id>-r<ratio>-s<seed>-l<limit|all>`, plus `-px<side>`
 * for JPEG datasets and `-extra` for SVHN with its extra split.
 *
 * @example
 * ```ts
 * import { preparedKey } from "./prepare.ts";
 * console.log(preparedKey("cifar10", { ratio: 0.01 })); // "cifar10-r0.01-s0-lall"
 * ```
 */
export function preparedKey(id: DatasetId, o: PrepareOptions): string {
  const parts = [id, `r${o.ratio ?? 1}`, `s${o.seed ?? 0}`, `l${o.limit ?? "all"}`];
  if (DATASETS[id].encoded) parts.push(`px${storedSide(o.imageSize ?? DATASETS[id].imageSize)}`);
  if (id === "svhn" && (o.extra ?? true)) parts.push("extra");
  return parts.join("-");
}

/** The groupings of a dataset with K classes and the given training counts. */
export function datasetGroupings(
  id: DatasetId,
  numClasses: number,
  fullTrainCounts: readonly number[],
): NamedGrouping[] {
  if (id === "imagenet_lt") {
    return [
      {
        name: "index ranges",
        description: "many/medium/few = classes 0-389 / 390-834 / 835-999 by descending training " +
          "count (the official ranges)",
        rule: { kind: "ranges", head: [0, 389], medium: [390, 834], tail: [835, 999] },
      },
      {
        name: "train count",
        description: "many/medium/few = more than 100 / 20-100 / fewer than 20 training images",
        rule: countGrouping(fullTrainCounts, 100, 20),
      },
    ];
  }
  const rule = rangeGrouping(numClasses);
  const r = rule.kind === "ranges" ? rule : null;
  return [{
    name: "index ranges",
    description: r
      ? `head/medium/tail = classes ${r.head.join("-")} / ${r.medium.join("-")} / ${
        r.tail.join("-")
      }`
      : "",
    rule,
  }];
}

async function readRecord(dir: string): Promise<PreparedRecord | null> {
  try {
    const r = JSON.parse(await Deno.readTextFile(`${dir}/${PREPARED_FILE}`)) as PreparedRecord;
    return r && typeof r === "object" ? r : null;
  } catch {
    return null;
  }
}

/** Why a prepared folder no longer matches its sources, or null when it does. */
function staleReason(record: PreparedRecord, sources: readonly SourceFile[]): string | null {
  if (record.format !== PREPARED_FORMAT) return "it was made by an older version";
  const before = new Map((record.sources ?? []).map((s) => [s.id, s]));
  if (before.size !== sources.length) return "its source files differ";
  for (const s of sources) {
    const b = before.get(s.id);
    if (!b) return `${s.path} was not among its sources`;
    if (b.path !== s.path) return `its ${s.id} source was ${b.path}, now ${s.path}`;
    if (b.size !== s.size || b.mtimeMs !== s.mtimeMs || b.md5 !== s.md5 || b.files !== s.files) {
      return `${s.path} changed since the shards were made`;
    }
  }
  return null;
}

/** Fills in the identity of each source (size, mtime, MD5) and checks files against the catalog. */
async function identify(sources: SourceFile[], o: ResolvedPrepareOptions): Promise<void> {
  for (const s of sources) {
    if (s.kind === "folder") {
      Object.assign(s, await folderIdentity(s.path));
      continue;
    }
    const entry: CatalogEntry = CATALOG[s.id as CatalogId];
    const c = await checkOfficial(s.path, entry, {
      verify: o.verify,
      expectedMd5: o.md5[s.id as CatalogId],
      log: o.log,
    });
    Object.assign(s, { size: c.size, mtimeMs: c.mtimeMs, md5: c.md5 });
    if (entry.md5 || o.md5[s.id as CatalogId]) s.official = c.official;
  }
}

function checkBatch(o: ResolvedPrepareOptions, trainSize: number): void {
  if (o.batchSize !== undefined && o.batchSize > trainSize) {
    throw new DatasetOptionsError(
      `loadDataset: batchSize ${o.batchSize} is larger than the training split (${trainSize} ` +
        `images${o.limit !== undefined ? ` with limit ${o.limit}` : ""})`,
      "batchSize",
    );
  }
}

/** Removes the temporaries of dead processes in `<dataDir>/prepared` and in every folder there. */
async function cleanTemps(root: string, log: (l: string) => void): Promise<void> {
  const removed = await removeStaleTemps(root);
  const folders = await Array.fromAsync(Deno.readDir(root)).catch(() => [] as Deno.DirEntry[]);
  for (const e of folders) {
    if (e.isDirectory) removed.push(...await removeStaleTemps(`${root}/${e.name}`));
  }
  if (removed.length) {
    log(`collapse: removed ${removed.length} temporary file(s) left by killed runs in ${root}`);
  }
}

async function imagenetRoot(o: ResolvedPrepareOptions): Promise<SourceFile> {
  const root = o.imagenetDir ?? `${o.dataDir}/imagenet`;
  if (!(await pathExists(`${root}/train`)) && !(await pathExists(`${root}/val`))) {
    throw new DataUnavailableError(
      `${o.context} needs the ImageNet (ILSVRC-2012) images: no train/ or val/ folder in ` +
        `${root}.\nImageNet cannot be downloaded automatically: register at ` +
        `https://image-net.org/download.php, download ILSVRC2012_img_train.tar and ` +
        `ILSVRC2012_img_val.tar, and extract them as ${root}/train/<wnid>/*.JPEG and ` +
        `${root}/val/<wnid>/*.JPEG (the layout the ImageNet-LT lists name), or pass ` +
        `--imagenet-dir DIR (the imagenetDir option).`,
    );
  }
  return { id: "imagenet", path: root, origin: "local", kind: "folder" };
}

async function makePlan(
  id: DatasetId,
  sources: SourceFile[],
  o: ResolvedPrepareOptions,
): Promise<PreparePlan> {
  const paths = new Map(sources.map((s) => [s.id, s.path]));
  const s: PlanSettings = {
    ratio: o.ratio,
    seed: o.seed,
    limit: o.limit,
    extra: o.extra,
    side: storedSide(o.imageSize),
    log: o.log,
  };
  if (id === "cub") return await cubPlan(paths.get("cub200")!, s);
  if (id === "imagenet_lt") {
    return await imageNetLtPlan(
      paths.get("imagenet-lt-train")!,
      paths.get("imagenet-lt-test")!,
      paths.get("imagenet")!,
      s,
    );
  }
  return await arrayPlan(id, paths, s);
}

/**
 * Finds (or downloads) a dataset's official files, verifies them, and writes its prepared train
 * split (long-tailed at `ratio`, capped at `limit`) and test split (official, capped) as shards,
 * or reuses them while they still match their sources. Throws {@linkcode DataUnavailableError}
 * (what to fetch and where), `DataVerificationError` (not the official release) or
 * {@linkcode DatasetOptionsError} (e.g. a batch larger than the training split) before anything
 * is written.
 *
 * @example
 * ```ts ignore
 * const info = await prepareDataset("cifar10", { ratio: 0.01 });
 * console.log(info.trainCounts); // [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
 * ```
 */
export async function prepareDataset(
  id: DatasetId,
  options: PrepareOptions = {},
): Promise<DatasetInfo> {
  return await prepareResolved(id, resolvePrepareOptions(id, options));
}

/** {@linkcode prepareDataset} with checked options. */
export async function prepareResolved(
  id: DatasetId,
  o: ResolvedPrepareOptions,
): Promise<DatasetInfo> {
  const key = preparedKey(id, o);
  const root = `${o.dataDir}/prepared`;
  const dir = `${root}/${key}`;
  await cleanTemps(root, o.log);
  await Deno.mkdir(root, { recursive: true }).catch(() => {}); // a read-only data folder is fine
  // Runs sharing a data folder (a sweep's parallel runs) take turns on one key: the second finds
  // the first's shards and reuses them instead of writing the same folder at the same time.
  return await withFileLock(`${root}/${key}.lock`, () => prepareUnderLock(id, o, key, dir), {
    onWait: () => o.log(`collapse: waiting for another process preparing ${dir}`),
  });
}

async function prepareUnderLock(
  id: DatasetId,
  o: ResolvedPrepareOptions,
  key: string,
  dir: string,
): Promise<DatasetInfo> {
  const spec = DATASETS[id];
  const trainDir = `${dir}/train`, testDir = `${dir}/test`;
  const files = spec.files.filter((f) => !f.extraSplit || o.extra);
  const ctx = `${o.context} needs ${spec.title}`;

  const local = await Promise.all(files.map((f) => findLocal(o.dataDir, f)));
  const record = await readRecord(dir);
  let sources: SourceFile[];
  let reuse: PreparedRecord | null = null;
  if (local.every((s) => s !== null)) {
    sources = local as SourceFile[];
  } else if (record?.format === PREPARED_FORMAT && await shardsIntact(trainDir, testDir)) {
    // The archives are gone (space freed?) but the shards made from them are intact: use them.
    const missing = files.filter((_, i) => !local[i]).map((f) => CATALOG[f.id].fileName);
    o.log(
      `collapse: ${missing.join(", ")} not in ${o.dataDir}; using the shards prepared from ` +
        `${missing.length === 1 ? "it" : "them"} in ${dir}`,
    );
    sources = record.sources;
    reuse = record;
  } else {
    sources = await locateFiles(o.dataDir, files, { download: o.download, context: ctx });
  }
  if (!reuse) {
    if (id === "imagenet_lt") sources.push(await imagenetRoot(o));
    await identify(sources.filter((s) => s.id !== "imagenet"), o);
    const imagenet = sources.find((s) => s.id === "imagenet");
    if (imagenet) imagenet.mtimeMs = (await Deno.stat(imagenet.path)).mtime?.getTime() ?? 0;
    if (record) {
      let why = staleReason(record, sources);
      if (!why) {
        const problems = [...await checkShardFolder(trainDir), ...await checkShardFolder(testDir)];
        if (problems.length) why = `a shard failed its check (${problems[0]})`;
      }
      if (why) o.log(`collapse: rebuilding ${dir}: ${why}`);
      else reuse = record;
    }
  }

  if (!reuse) {
    await Deno.remove(`${dir}/${PREPARED_FILE}`).catch(() => {});
    o.log(`collapse: preparing ${spec.title} (${key}) in ${dir}`);
    const plan = await makePlan(id, sources, o);
    checkBatch(o, sum(plan.trainCounts));
    await Deno.mkdir(dir, { recursive: true });
    await plan.write(trainDir, testDir, {
      dataset: id,
      ratio: o.ratio,
      seed: o.seed,
      limit: o.limit ?? null,
    });
    const rec: PreparedRecord = {
      format: PREPARED_FORMAT,
      key,
      dataset: id,
      sources,
      fullTrainCounts: plan.fullTrainCounts,
      notes: plan.notes,
      createdAt: new Date().toISOString(),
    };
    const tmp = `${dir}/${PREPARED_FILE}.tmp-${Deno.pid}`;
    await Deno.writeTextFile(tmp, JSON.stringify(rec, null, 1) + "\n");
    await Deno.rename(tmp, `${dir}/${PREPARED_FILE}`);
    return await info(id, o, dir, rec, sources, false);
  }
  const result = await info(id, o, dir, reuse, sources, true);
  checkBatch(o, result.trainSize);
  return result;
}

async function shardsIntact(trainDir: string, testDir: string): Promise<boolean> {
  return (await checkShardFolder(trainDir)).length === 0 &&
    (await checkShardFolder(testDir)).length === 0;
}

const sum = (a: readonly number[]) => a.reduce((s, v) => s + v, 0);

async function info(
  id: DatasetId,
  o: ResolvedPrepareOptions,
  dir: string,
  rec: PreparedRecord,
  sources: SourceFile[],
  reused: boolean,
): Promise<DatasetInfo> {
  const spec = DATASETS[id];
  const trainDir = `${dir}/train`, testDir = `${dir}/test`;
  const trainM = await readManifest(trainDir);
  const testM = await readManifest(testDir);
  const k = trainM.numClasses;
  const classNames = trainM.classNames ?? Array.from({ length: k }, (_, i) => String(i));
  const size = spec.encoded ? o.imageSize : spec.imageSize;
  const stats = o.stats === "dataset" ? spec.ownStats : spec.officialStats;
  const fullTrainCounts = rec.fullTrainCounts ?? trainM.classCounts;
  const groupings = datasetGroupings(id, k, fullTrainCounts);
  const notes = [...(rec.notes ?? [])];
  if (id === "cifar100") {
    notes.push(
      o.stats === "dataset"
        ? "normalised with CIFAR-100's own mean/std (the official code uses CIFAR-10's)"
        : "normalised with the CIFAR-10 mean/std, as the official code does",
    );
  }
  for (const s of sources.filter((s) => s.official === false)) {
    notes.push(`${s.path} is not the official release (MD5 ${s.md5}); accepted with --no-verify`);
  }
  return {
    id,
    title: spec.title,
    key: rec.key,
    dir,
    trainDir,
    testDir,
    numClasses: k,
    classNames,
    trainCounts: trainM.classCounts,
    fullTrainCounts,
    testCounts: testM.classCounts,
    trainSize: trainM.total,
    testSize: testM.total,
    inputShape: [size, size, 3],
    stats,
    statsChoice: o.stats,
    trainAugment: spec.trainAugment(size, stats),
    testAugment: spec.testAugment(size, stats),
    groups: groupings[0].rule,
    groupings,
    sources,
    reused,
    notes,
  };
}
