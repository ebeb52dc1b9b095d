/**
 * Per-dataset recipes' data side: where each dataset's official files live (or are downloaded
 * from), how to read them, the long-tailed train subset at a ratio (the test split is the official
 * balanced one), the `--limit` cap, and the prepared splits cached as shards under the data folder
 * (`<data-dir>/prepared/<dataset>-r<ratio>-s<seed>-l<limit>[...]/{train,test}`), plus the
 * augmentation, normalisation and head/medium/tail grouping each dataset trains and reports with.
 *
 * Files the user put in the data folder are used as they are (the readers check their structure);
 * files this module downloads are verified against the published checksums. When a file is
 * missing and cannot be downloaded, {@linkcode DataUnavailableError} says what to fetch, from
 * where, and where to put it.
 *
 * @module
 */

import sharp from "npm:sharp@^0.34.5";
import type { AugmentSpec } from "../../data/augment.ts";
import { CATALOG, type CatalogEntry, type CatalogId } from "../../data/catalog.ts";
import { ensureFile } from "../../data/download.ts";
import { readCifar10, readCifar100 } from "../../data/formats/cifar.ts";
import { cubImages, readCubMetadata } from "../../data/formats/cub.ts";
import { imageNetLtImages, readImageNetLtList } from "../../data/formats/imagenet_lt.ts";
import { readStl10 } from "../../data/formats/stl10.ts";
import { readSvhn } from "../../data/formats/svhn.ts";
import { pathExists } from "../../data/path_exists.ts";
import {
  classCounts,
  exponentialCounts,
  longTailIndices,
  subsetImageArray,
} from "../../data/long_tail.ts";
import type { ChannelStats } from "../../data/normalize.ts";
import { DATASET_STATS } from "../../data/normalize.ts";
import { readManifest } from "../../data/shards/reader.ts";
import type { ShardManifest } from "../../data/shards/format.ts";
import { type ShardRecord, writeShards } from "../../data/shards/writer.ts";
import type { EncodedImage, ImageArray } from "../../data/types.ts";
import { defaultGroups, type GroupRule } from "../../nn/metrics/classification.ts";

/** The datasets the recipes train on. */
export type DatasetId = "cifar10" | "cifar100" | "svhn" | "stl10" | "cub" | "imagenet_lt";

/** How a dataset is read, augmented, normalised and grouped. */
export interface DatasetSpec {
  id: DatasetId;
  title: string;
  /** Side of the stored images (array datasets) or the default training side (JPEG datasets). */
  imageSize: number;
  /** JPEG datasets (CUB, ImageNet-LT) are stored as encoded shards and decoded per batch. */
  encoded: boolean;
  stats: ChannelStats;
  trainAugment(size: number): AugmentSpec;
  testAugment(size: number): AugmentSpec;
  /** Head/medium/tail classes, given the full training counts. */
  groups(trainCounts: readonly number[]): GroupRule;
  /** Catalog files needed and the extracted folder names accepted instead of each archive. */
  files: { id: CatalogId; folders: string[] }[];
}

/** The official code scales SVHN and STL-10 to [-1, 1] (mean 0.5, std 0.5). */
const HALF: ChannelStats = { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };

/** Stored side of JPEG datasets for training side `size` (torchvision's 256 for 224). */
export function storedSide(size: number): number {
  return Math.round(size * 256 / 224);
}

function jpegAugment(stats: ChannelStats) {
  return {
    train: (size: number): AugmentSpec => ({
      kind: "random_resized_crop",
      size,
      flip: true,
      jitter: 0.4,
      ...stats,
    }),
    test: (size: number): AugmentSpec => ({
      kind: "center_crop",
      size,
      resize: storedSide(size),
      ...stats,
    }),
  };
}

/** Every dataset's spec. */
export const DATASETS: Readonly<Record<DatasetId, DatasetSpec>> = {
  cifar10: {
    id: "cifar10",
    title: "CIFAR-10",
    imageSize: 32,
    encoded: false,
    stats: DATASET_STATS.cifar10,
    trainAugment: () => ({ kind: "crop_flip", pad: 4, flip: true, ...DATASET_STATS.cifar10 }),
    testAugment: () => ({ kind: "normalize", ...DATASET_STATS.cifar10 }),
    groups: () => defaultGroups(10),
    files: [{ id: "cifar10", folders: ["cifar-10-batches-bin"] }],
  },
  cifar100: {
    id: "cifar100",
    title: "CIFAR-100",
    imageSize: 32,
    encoded: false,
    stats: DATASET_STATS.cifar100,
    trainAugment: () => ({ kind: "crop_flip", pad: 4, flip: true, ...DATASET_STATS.cifar100 }),
    testAugment: () => ({ kind: "normalize", ...DATASET_STATS.cifar100 }),
    groups: () => defaultGroups(100),
    files: [{ id: "cifar100", folders: ["cifar-100-binary"] }],
  },
  svhn: {
    id: "svhn",
    title: "SVHN",
    imageSize: 32,
    encoded: false,
    stats: HALF,
    trainAugment: () => ({ kind: "normalize", ...HALF }),
    testAugment: () => ({ kind: "normalize", ...HALF }),
    groups: () => defaultGroups(10),
    files: [{ id: "svhn-train", folders: [] }, { id: "svhn-test", folders: [] }],
  },
  stl10: {
    id: "stl10",
    title: "STL-10",
    imageSize: 96,
    encoded: false,
    stats: HALF,
    trainAugment: () => ({ kind: "normalize", ...HALF }),
    testAugment: () => ({ kind: "normalize", ...HALF }),
    groups: () => defaultGroups(10),
    files: [{ id: "stl10", folders: ["stl10_binary"] }],
  },
  cub: {
    id: "cub",
    title: "CUB-200-2011",
    imageSize: 224,
    encoded: true,
    stats: DATASET_STATS.cub,
    trainAugment: jpegAugment(DATASET_STATS.cub).train,
    testAugment: jpegAugment(DATASET_STATS.cub).test,
    groups: (counts) => defaultGroups(counts.length),
    files: [{ id: "cub200", folders: ["CUB_200_2011"] }],
  },
  imagenet_lt: {
    id: "imagenet_lt",
    title: "ImageNet-LT",
    imageSize: 224,
    encoded: true,
    stats: DATASET_STATS.imagenet,
    trainAugment: jpegAugment(DATASET_STATS.imagenet).train,
    testAugment: jpegAugment(DATASET_STATS.imagenet).test,
    groups: (counts) => ({ kind: "train-count", trainCounts: [...counts], many: 100, few: 20 }),
    files: [
      { id: "imagenet-lt-train", folders: [] },
      { id: "imagenet-lt-test", folders: [] },
    ],
  },
};

/** Data that cannot be found or downloaded; the message says what to do. No stack trace needed. */
export class DataUnavailableError extends Error {
  override name = "DataUnavailableError";
}

/** What {@linkcode prepareDataset} needs. */
export interface PrepareOptions {
  /** Folder of the official files and of the prepared shards. */
  dataDir: string;
  /** Imbalance ratio of the train split (1 = as published). */
  ratio: number;
  /** Seed of the long-tailed selection. */
  seed: number;
  /** Cap on images per split. */
  limit?: number;
  /** Training side of JPEG datasets (default the dataset's). */
  imageSize?: number;
  /** SVHN: add the extra split. */
  svhnExtra?: boolean;
  /** ImageNet-LT: the ImageNet folder with train/ and val/ (default `<dataDir>/imagenet`). */
  imagenetDir?: string;
  /** Recipe name, for messages. */
  recipe?: string;
  /** Progress messages (default: to stderr). */
  log?: (line: string) => void;
}

/** An official file as found or fetched. */
export interface SourceFile {
  id: string;
  path: string;
  /** "local": found in the data folder; "downloaded": fetched and verified now. */
  origin: "local" | "downloaded";
}

/** The prepared splits of a run. */
export interface PreparedData {
  dataset: DatasetId;
  title: string;
  /** Cache key (folder name under `<dataDir>/prepared`). */
  key: string;
  dir: string;
  trainDir: string;
  testDir: string;
  numClasses: number;
  classNames: string[];
  /** Training images per class (after long tail and limit). */
  trainCounts: number[];
  testCounts: number[];
  /** Model input [height, width, channels]. */
  inputShape: [number, number, number];
  trainAugment: AugmentSpec;
  testAugment: AugmentSpec;
  groups: GroupRule;
  sources: SourceFile[];
  /** True when the shards were already there. */
  reused: boolean;
}

function mib(bytes: number | undefined): string {
  return bytes === undefined ? "" : ` (${Math.round(bytes / 2 ** 20).toLocaleString("en-US")} MiB)`;
}

/**
 * The local path of an official file: `<dataDir>/<fileName>` or an extracted folder there, else
 * a verified download into `dataDir`. Throws {@linkcode DataUnavailableError} with instructions.
 */
export async function locateFile(
  dataDir: string,
  id: CatalogId,
  folders: readonly string[] = [],
  context = "",
): Promise<SourceFile> {
  const entry: CatalogEntry = CATALOG[id];
  for (const name of [entry.fileName, ...folders]) {
    const p = `${dataDir}/${name}`;
    if (await pathExists(p)) return { id, path: p, origin: "local" };
  }
  try {
    const path = await ensureFile({ ...entry, cacheDir: dataDir });
    return { id, path, origin: "downloaded" };
  } catch (e) {
    const alt = folders.length
      ? `The extracted folder ${folders.map((f) => `${dataDir}/${f}/`).join(" or ")} works too. `
      : "";
    throw new DataUnavailableError(
      `${context ? `${context}: ` : ""}${entry.fileName}${mib(entry.size)} is not in ${dataDir}` +
        ` and could not be downloaded.\n${(e as Error).message}\n` +
        `${alt}Or point --data-dir at a folder that holds it.`,
    );
  }
}

/**
 * Indices of at most `limit` items, per class in proportion to the class counts (every non-empty
 * class keeps at least one while the budget allows), the first ones of each class in order.
 */
export function capPerClass(
  labels: ArrayLike<number>,
  numClasses: number,
  limit: number | undefined,
): Int32Array {
  const n = labels.length;
  if (limit === undefined || limit >= n) return Int32Array.from({ length: n }, (_, i) => i);
  const counts = classCounts(labels, numClasses);
  const take = new Array<number>(numClasses).fill(0);
  const order = counts.map((c, k) => [c, k]).filter(([c]) => c > 0).sort((a, b) =>
    b[0] - a[0] || a[1] - b[1]
  );
  let left = limit;
  for (const [, k] of order) {
    if (left === 0) break;
    take[k] = 1;
    left--;
  }
  if (left > 0) {
    const rest = order.map(([c, k]) => [c - take[k], k]);
    const total = rest.reduce((s, [c]) => s + c, 0);
    const quota = rest.map(([c, k]) => ({ k, q: left * c / total, c }));
    let used = 0;
    for (const e of quota) {
      const f = Math.min(e.c, Math.floor(e.q));
      take[e.k] += f;
      used += f;
    }
    quota.sort((a, b) => (b.q - Math.floor(b.q)) - (a.q - Math.floor(a.q)) || a.k - b.k);
    for (const e of quota) {
      if (used >= left) break;
      if (take[e.k] < counts[e.k]) {
        take[e.k]++;
        used++;
      }
    }
  }
  const out: number[] = [];
  const seen = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < n; i++) {
    const y = labels[i];
    if (seen[y] < take[y]) {
      seen[y]++;
      out.push(i);
    }
  }
  return Int32Array.from(out);
}

/** Indices of the exponential long-tailed subset of a balanced split (n_max = smallest class). */
export function longTailSelection(
  labels: ArrayLike<number>,
  numClasses: number,
  ratio: number,
  seed: number,
): Int32Array {
  if (ratio >= 1) return Int32Array.from({ length: labels.length }, (_, i) => i);
  const have = classCounts(labels, numClasses);
  const nMax = Math.max(1, Math.min(...have));
  return longTailIndices(labels, exponentialCounts(nMax, numClasses, ratio), seed);
}

function concatArrays(parts: ImageArray[]): ImageArray {
  if (parts.length === 1) return parts[0];
  const n = parts.reduce((s, p) => s + p.labels.length, 0);
  const stride = parts[0].height * parts[0].width * parts[0].channels;
  const images = new Uint8Array(n * stride);
  const labels = new Int32Array(n);
  let o = 0;
  for (const p of parts) {
    images.set(p.images, o * stride);
    labels.set(p.labels, o);
    o += p.labels.length;
  }
  return { ...parts[0], images, labels };
}

/** The cache key of a prepared dataset. */
export function preparedKey(id: DatasetId, o: PrepareOptions): string {
  const parts = [id, `r${o.ratio}`, `s${o.seed}`, `l${o.limit ?? "all"}`];
  if (DATASETS[id].encoded) parts.push(`px${storedSide(o.imageSize ?? DATASETS[id].imageSize)}`);
  if (id === "svhn" && o.svhnExtra) parts.push("extra");
  return parts.join("-");
}

async function readArrays(
  id: DatasetId,
  o: PrepareOptions,
  sources: SourceFile[],
): Promise<{ train: ImageArray; test: ImageArray }> {
  const ctx = `${o.recipe ?? id} needs ${DATASETS[id].title}`;
  const get = async (cid: CatalogId, folders: string[] = []) => {
    const f = await locateFile(o.dataDir, cid, folders, ctx);
    sources.push(f);
    return f.path;
  };
  const lt = (a: ImageArray) =>
    subsetImageArray(a, longTailSelection(a.labels, a.numClasses, o.ratio, o.seed));
  switch (id) {
    case "cifar10": {
      const p = await get("cifar10", ["cifar-10-batches-bin"]);
      return { train: lt(await readCifar10(p, "train")), test: await readCifar10(p, "test") };
    }
    case "cifar100": {
      const p = await get("cifar100", ["cifar-100-binary"]);
      return { train: lt(await readCifar100(p, "train")), test: await readCifar100(p, "test") };
    }
    case "svhn": {
      const tr = await get("svhn-train");
      const te = await get("svhn-test");
      const ex = o.svhnExtra ? await get("svhn-extra") : null;
      const parts = [lt(await readSvhn(tr))];
      if (ex) parts.push(lt(await readSvhn(ex)));
      return { train: concatArrays(parts), test: await readSvhn(te) };
    }
    case "stl10": {
      const p = await get("stl10", ["stl10_binary"]);
      return { train: lt(await readStl10(p, "train")), test: await readStl10(p, "test") };
    }
    default:
      throw new Error(`collapse: ${id} is not an in-memory dataset`);
  }
}

/** Re-encodes a JPEG with its shorter side `side` (aspect kept), for compact training shards. */
export async function resizeJpeg(bytes: Uint8Array, side: number, name: string) {
  try {
    const b = await sharp(bytes, { failOn: "error" })
      .rotate()
      .resize(side, side, { fit: "outside" })
      .jpeg({ quality: 90 })
      .toBuffer();
    return new Uint8Array(b.buffer, b.byteOffset, b.length);
  } catch (e) {
    throw new Error(`${name}: cannot decode image: ${(e as Error).message}`, { cause: e });
  }
}

async function* resized(
  images: AsyncIterable<EncodedImage>,
  keep: (im: EncodedImage) => boolean,
  side: number,
  expected: number,
  log: (s: string) => void,
  what: string,
): AsyncGenerator<ShardRecord> {
  let done = 0;
  let last = Date.now();
  for await (const im of images) {
    if (!keep(im)) continue;
    yield { label: im.label, data: await resizeJpeg(im.bytes, side, im.name) };
    done++;
    if (Date.now() - last > 5000) {
      log(`  ${what}: ${done}/${expected} images`);
      last = Date.now();
    }
  }
  if (done !== expected) {
    throw new Error(`collapse: ${what}: found ${done} of the ${expected} selected images`);
  }
}

interface EncodedPlan {
  numClasses: number;
  classNames: string[];
  /** Full training counts (before limit), for the grouping. */
  fullTrainCounts: number[];
  write(split: "train" | "test", dir: string, side: number): Promise<void>;
}

async function planCub(o: PrepareOptions, sources: SourceFile[]): Promise<EncodedPlan> {
  const f = await locateFile(
    o.dataDir,
    "cub200",
    ["CUB_200_2011"],
    `${o.recipe ?? "cub"} needs CUB-200-2011`,
  );
  sources.push(f);
  const meta = await readCubMetadata(f.path);
  const k = meta.classNames.length;
  const log = o.log ?? ((s: string) => console.error(s));
  const chosen = (split: "train" | "test") => {
    const list = meta.images.filter((im) => im.isTrain === (split === "train"));
    const labels = list.map((im) => im.label);
    let idx = split === "train"
      ? longTailSelection(labels, k, o.ratio, o.seed)
      : Int32Array.from(list.keys());
    const sub = Array.from(idx, (i) => labels[i]);
    idx = Int32Array.from(capPerClass(sub, k, o.limit), (j) => idx[j]);
    return new Set(Array.from(idx, (i) => list[i].path));
  };
  const trainSel = chosen("train");
  const fullTrainCounts = classCounts(
    meta.images.filter((im) => im.isTrain).map((im) => im.label),
    k,
  );
  return {
    numClasses: k,
    classNames: meta.classNames,
    fullTrainCounts,
    async write(split, dir, side) {
      const sel = split === "train" ? trainSel : chosen("test");
      const records = resized(
        cubImages(f.path, { split, metadata: meta }),
        (im) => sel.has(im.name),
        side,
        sel.size,
        log,
        `CUB ${split}`,
      );
      await writeShards(dir, records, {
        kind: "encoded",
        numClasses: k,
        classNames: meta.classNames,
        overwrite: true,
        meta: { dataset: "cub", split, side, source: f.path },
      });
    },
  };
}

async function planImageNetLt(o: PrepareOptions, sources: SourceFile[]): Promise<EncodedPlan> {
  const ctx = `${o.recipe ?? "imagenet_lt"} needs the ImageNet-LT split lists`;
  const trainList = await locateFile(o.dataDir, "imagenet-lt-train", [], ctx);
  const testList = await locateFile(o.dataDir, "imagenet-lt-test", [], ctx);
  sources.push(trainList, testList);
  const root = o.imagenetDir ?? `${o.dataDir}/imagenet`;
  if (!(await pathExists(`${root}/train`)) && !(await pathExists(`${root}/val`))) {
    throw new DataUnavailableError(
      `${o.recipe ?? "imagenet_lt"} needs the ImageNet (ILSVRC-2012) images: no train/ or val/ ` +
        `folder in ${root}.\nImageNet cannot be downloaded automatically: register at ` +
        `https://image-net.org/download.php, download ILSVRC2012_img_train.tar and ` +
        `ILSVRC2012_img_val.tar, and extract them as ${root}/train/<wnid>/*.JPEG and ` +
        `${root}/val/<wnid>/*.JPEG (the layout the ImageNet-LT lists name), or pass ` +
        `--imagenet-dir DIR.`,
    );
  }
  sources.push({ id: "imagenet", path: root, origin: "local" });
  const lists = {
    train: await readImageNetLtList(trainList.path),
    test: await readImageNetLtList(testList.path),
  };
  const k = 1000;
  const log = o.log ?? ((s: string) => console.error(s));
  return {
    numClasses: k,
    classNames: Array.from({ length: k }, (_, i) => String(i)),
    fullTrainCounts: classCounts(lists.train.map((e) => e.label), k),
    async write(split, dir, side) {
      const list = lists[split];
      const idx = capPerClass(list.map((e) => e.label), k, o.limit);
      const chosen = Array.from(idx, (i) => list[i]);
      const tmpList = `${dir}.list-${Deno.pid}.txt`;
      await Deno.mkdir(dir.slice(0, dir.lastIndexOf("/")), { recursive: true });
      await Deno.writeTextFile(tmpList, chosen.map((e) => `${e.path} ${e.label}\n`).join(""));
      try {
        const records = resized(
          imageNetLtImages(tmpList, root, { numClasses: k }),
          () => true,
          side,
          chosen.length,
          log,
          `ImageNet-LT ${split}`,
        );
        await writeShards(dir, records, {
          kind: "encoded",
          numClasses: k,
          overwrite: true,
          meta: { dataset: "imagenet_lt", split, side, source: root },
        });
      } finally {
        await Deno.remove(tmpList).catch(() => {});
      }
    },
  };
}

/**
 * Finds (or downloads) a dataset's official files and writes its prepared train (long-tailed at
 * `ratio`, capped at `limit`) and test (official, capped) splits as shards, or reuses them.
 *
 * @example
 * ```ts ignore
 * const data = await prepareDataset("cifar10", { dataDir: "data", ratio: 0.01, seed: 0 });
 * console.log(data.trainCounts); // [5000, 2997, ..., 50]
 * ```
 */
export async function prepareDataset(id: DatasetId, o: PrepareOptions): Promise<PreparedData> {
  const spec = DATASETS[id];
  const log = o.log ?? ((s: string) => console.error(s));
  const key = preparedKey(id, o);
  const dir = `${o.dataDir}/prepared/${key}`;
  const trainDir = `${dir}/train`;
  const testDir = `${dir}/test`;
  const size = spec.encoded ? (o.imageSize ?? spec.imageSize) : spec.imageSize;
  const infoPath = `${dir}/prepared.json`;
  let sources: SourceFile[] = [];
  let reused = false;
  let fullTrainCounts: number[] | undefined;
  if (
    await pathExists(`${trainDir}/manifest.json`) && await pathExists(`${testDir}/manifest.json`) &&
    await pathExists(infoPath)
  ) {
    const info = JSON.parse(await Deno.readTextFile(infoPath));
    sources = info.sources ?? [];
    fullTrainCounts = info.fullTrainCounts;
    reused = true;
  } else {
    log(`collapse: preparing ${spec.title} (${key}) in ${dir}`);
    if (spec.encoded) {
      const plan = id === "cub" ? await planCub(o, sources) : await planImageNetLt(o, sources);
      await Deno.mkdir(dir, { recursive: true });
      const side = storedSide(size);
      await plan.write("test", testDir, side);
      await plan.write("train", trainDir, side);
      fullTrainCounts = plan.fullTrainCounts;
    } else {
      const { train, test } = await readArrays(id, o, sources);
      await Deno.mkdir(dir, { recursive: true });
      fullTrainCounts = classCounts(train.labels, train.numClasses);
      const tr = subsetImageArray(train, capPerClass(train.labels, train.numClasses, o.limit));
      const te = subsetImageArray(test, capPerClass(test.labels, test.numClasses, o.limit));
      const names = train.classNames ?? test.classNames;
      const opts = (split: string) => ({
        kind: "raw" as const,
        numClasses: train.numClasses,
        classNames: names,
        overwrite: true,
        meta: { dataset: id, split, ratio: o.ratio, seed: o.seed, limit: o.limit ?? null },
      });
      await writeShards(testDir, te, opts("test"));
      await writeShards(trainDir, tr, opts("train"));
    }
    const info = {
      key,
      dataset: id,
      sources,
      fullTrainCounts,
      createdAt: new Date().toISOString(),
    };
    await Deno.writeTextFile(`${infoPath}.tmp`, JSON.stringify(info, null, 1) + "\n");
    await Deno.rename(`${infoPath}.tmp`, infoPath);
  }
  const trainM: ShardManifest = await readManifest(trainDir);
  const testM: ShardManifest = await readManifest(testDir);
  const k = trainM.numClasses;
  const classNames = trainM.classNames ?? Array.from({ length: k }, (_, i) => String(i));
  const counts = fullTrainCounts ?? trainM.classCounts;
  return {
    dataset: id,
    title: spec.title,
    key,
    dir,
    trainDir,
    testDir,
    numClasses: k,
    classNames,
    trainCounts: trainM.classCounts,
    testCounts: testM.classCounts,
    inputShape: [size, size, 3],
    trainAugment: spec.trainAugment(size),
    testAugment: spec.testAugment(size),
    groups: id === "imagenet_lt" ? spec.groups(counts) : spec.groups(trainM.classCounts),
    sources,
    reused,
  };
}
