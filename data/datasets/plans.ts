/**
 * What a prepared dataset holds, worked out from its official files before anything is written:
 * the selected training images (long tail, then `limit`) and test images (official split, then
 * `limit`), their per-class counts and class names, and how to write both splits as shards. Array
 * datasets (CIFAR-10/100, SVHN, STL-10) are read into memory; JPEG datasets (CUB-200-2011,
 * ImageNet-LT) are planned from their metadata and re-encoded image by image when written.
 *
 * @module
 */

import { cubImages, readCubMetadata } from "../formats/cub.ts";
import { readCifar10, readCifar100 } from "../formats/cifar.ts";
import { imageNetLtImages, type ListedImage, readImageNetLtList } from "../formats/imagenet_lt.ts";
import { resizeShorterSide } from "../formats/jpeg.ts";
import { readStl10Splits } from "../formats/stl10.ts";
import { readSvhn } from "../formats/svhn.ts";
import { classCounts, subsetImageArray } from "../long_tail.ts";
import { type ShardRecord, writeShards } from "../shards/writer.ts";
import type { EncodedImage, ImageArray } from "../types.ts";
import type { DatasetId } from "./registry.ts";
import { capPerClass, longTailSubset } from "./selection.ts";

/** The settings a plan depends on. */
export interface PlanSettings {
  ratio: number;
  seed: number;
  limit?: number;
  /** SVHN: add the extra split. */
  extra: boolean;
  /** Stored side of JPEG datasets. */
  side: number;
  log: (line: string) => void;
}

/** A dataset's prepared contents, before they are written. */
export interface PreparePlan {
  numClasses: number;
  classNames: string[];
  /** Training images per class after the long tail, before `limit` (for count groupings). */
  fullTrainCounts: number[];
  /** Training and test images per class that will be written. */
  trainCounts: number[];
  testCounts: number[];
  /** Remarks about the selection (e.g. SVHN classes that kept fewer images than asked). */
  notes: string[];
  /** Writes both splits as shard folders (test first, then train). */
  write(trainDir: string, testDir: string, meta: Record<string, unknown>): Promise<void>;
}

/**
 * The official SVHN-LT code's label shift, which this implementation does not reproduce; reports of
 * SVHN runs carry it.
 */
export const SVHN_LABEL_NOTE: string =
  "SVHN-LT follows the official protocol: train_32x32.mat and " +
  "extra_32x32.mat are each made long-tailed (n_max = len(split) / 10) and concatenated, a class " +
  "with fewer images than its count keeping all it has. The official code then appends the " +
  "requested number of labels for such a class (`new_targets.extend([c] * the_img_num)`), which " +
  "shifts the labels of the classes after it; the published SVHN numbers were made with that " +
  "bug, which is not reproduced here.";

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

function shortClasses(file: string, requested: number[], kept: number[]): string[] {
  return kept.flatMap((k, c) =>
    k < requested[c] ? [`${file} class ${c}: ${k} of ${requested[c]}`] : []
  );
}

/** Plan of an array dataset: `paths` maps catalog ids to local paths. */
export async function arrayPlan(
  id: DatasetId,
  paths: ReadonlyMap<string, string>,
  s: PlanSettings,
): Promise<PreparePlan> {
  const at = (k: string) => paths.get(k)!;
  const notes: string[] = [];
  const lt = (a: ImageArray, file: string) => {
    const sel = longTailSubset(a.labels, a.numClasses, s.ratio, s.seed);
    const short = s.ratio < 1 ? shortClasses(file, sel.requested, sel.kept) : [];
    if (short.length) {
      notes.push(
        `classes with fewer images than their long-tail count kept all they have: ${
          short.join("; ")
        }`,
      );
    }
    return subsetImageArray(a, sel.indices);
  };
  let train: ImageArray, test: ImageArray;
  switch (id) {
    case "cifar10":
      train = lt(await readCifar10(at("cifar10"), "train"), "train");
      test = await readCifar10(at("cifar10"), "test");
      break;
    case "cifar100":
      train = lt(await readCifar100(at("cifar100"), "train"), "train");
      test = await readCifar100(at("cifar100"), "test");
      break;
    case "svhn": {
      const parts = [lt(await readSvhn(at("svhn-train")), "train_32x32.mat")];
      if (s.extra) parts.push(lt(await readSvhn(at("svhn-extra")), "extra_32x32.mat"));
      if (s.ratio < 1) notes.unshift(SVHN_LABEL_NOTE);
      train = concatArrays(parts);
      test = await readSvhn(at("svhn-test"));
      break;
    }
    case "stl10": {
      const both = await readStl10Splits(at("stl10"), ["train", "test"]);
      train = lt(both.train!, "train");
      test = both.test!;
      break;
    }
    default:
      throw new Error(`collapse: ${id} is not an array dataset`);
  }
  const k = train.numClasses;
  const tr = subsetImageArray(train, capPerClass(train.labels, k, s.limit));
  const te = subsetImageArray(test, capPerClass(test.labels, k, s.limit));
  const classNames = train.classNames ?? test.classNames ??
    Array.from({ length: k }, (_, i) => String(i));
  return {
    numClasses: k,
    classNames,
    fullTrainCounts: classCounts(train.labels, k),
    trainCounts: classCounts(tr.labels, k),
    testCounts: classCounts(te.labels, k),
    notes,
    async write(trainDir, testDir, meta) {
      const opts = (split: string) => ({
        kind: "raw" as const,
        numClasses: k,
        classNames,
        overwrite: true,
        meta: { ...meta, split },
      });
      await writeShards(testDir, te, opts("test"));
      await writeShards(trainDir, tr, opts("train"));
    },
  };
}

/** Re-encoded JPEG records of the selected images, with progress lines every 5 s. */
async function* resized(
  images: AsyncIterable<EncodedImage>,
  keep: (im: EncodedImage) => boolean,
  s: PlanSettings,
  expected: number,
  what: string,
): AsyncGenerator<ShardRecord> {
  let done = 0;
  let last = Date.now();
  for await (const im of images) {
    if (!keep(im)) continue;
    yield { label: im.label, data: await resizeShorterSide(im.bytes, s.side, im.name) };
    done++;
    if (Date.now() - last > 5000) {
      s.log(`  ${what}: ${done}/${expected} images`);
      last = Date.now();
    }
  }
  if (done !== expected) {
    throw new Error(`collapse: ${what}: found ${done} of the ${expected} selected images`);
  }
}

/** Plan of CUB-200-2011 from its archive or extracted folder. */
export async function cubPlan(path: string, s: PlanSettings): Promise<PreparePlan> {
  const meta = await readCubMetadata(path);
  const k = meta.classNames.length;
  const listOf = (split: "train" | "test") =>
    meta.images.filter((im) => im.isTrain === (split === "train"));
  const trainList = listOf("train"), testList = listOf("test");
  const trainLabels = trainList.map((im) => im.label);
  const lt = longTailSubset(trainLabels, k, s.ratio, s.seed).indices;
  const ltLabels = Array.from(lt, (i) => trainLabels[i]);
  const trainIdx = Array.from(capPerClass(ltLabels, k, s.limit), (j) => lt[j]);
  const testIdx = Array.from(capPerClass(testList.map((im) => im.label), k, s.limit));
  const trainSel = new Set(trainIdx.map((i) => trainList[i].path));
  const testSel = new Set(testIdx.map((i) => testList[i].path));
  return {
    numClasses: k,
    classNames: meta.classNames,
    fullTrainCounts: classCounts(ltLabels, k),
    trainCounts: classCounts(trainIdx.map((i) => trainList[i].label), k),
    testCounts: classCounts(testIdx.map((i) => testList[i].label), k),
    notes: [],
    async write(trainDir, testDir, metaInfo) {
      for (
        const [split, dir, sel] of [["test", testDir, testSel], [
          "train",
          trainDir,
          trainSel,
        ]] as const
      ) {
        const records = resized(
          cubImages(path, { split, metadata: meta }),
          (im) => sel.has(im.name),
          s,
          sel.size,
          `CUB ${split}`,
        );
        await writeShards(dir, records, {
          kind: "encoded",
          numClasses: k,
          classNames: meta.classNames,
          overwrite: true,
          meta: { ...metaInfo, split, side: s.side },
        });
      }
    },
  };
}

/**
 * ImageNet-LT's classes re-indexed by descending training count (ties by the original label), as
 * the official code orders them: `order[new] = old`.
 */
export function countOrder(trainLabels: ArrayLike<number>, numClasses: number): number[] {
  const counts = classCounts(trainLabels, numClasses);
  return counts.map((_, c) => c).sort((a, b) => counts[b] - counts[a] || a - b);
}

/** Plan of ImageNet-LT from its split lists and the ImageNet folder `root`. */
export async function imageNetLtPlan(
  trainListPath: string,
  testListPath: string,
  root: string,
  s: PlanSettings,
): Promise<PreparePlan> {
  const k = 1000;
  const lists = {
    train: await readImageNetLtList(trainListPath),
    test: await readImageNetLtList(testListPath),
  };
  for (const [split, list] of Object.entries(lists)) {
    const bad = list.find((e) => !(e.label >= 0 && e.label < k));
    if (bad) {
      throw new Error(
        `${split === "train" ? trainListPath : testListPath}: label ${bad.label} of ${bad.path} ` +
          `is outside [0, ${k})`,
      );
    }
  }
  const order = countOrder(lists.train.map((e) => e.label), k);
  const newLabel = new Int32Array(k);
  order.forEach((old, i) => newLabel[old] = i);
  const wnid = new Map<number, string>();
  for (const e of [...lists.train, ...lists.test]) {
    const m = /(?:^|\/)(n\d{8})\//.exec(e.path);
    if (m && !wnid.has(e.label)) wnid.set(e.label, m[1]);
  }
  const classNames = order.map((old) => wnid.get(old) ?? String(old));
  const remap = (l: ListedImage[]) => l.map((e) => ({ path: e.path, label: newLabel[e.label] }));
  const chosen = (list: ListedImage[]) => {
    const r = remap(list);
    return Array.from(capPerClass(r.map((e) => e.label), k, s.limit), (i) => r[i]);
  };
  const train = chosen(lists.train), test = chosen(lists.test);
  return {
    numClasses: k,
    classNames,
    fullTrainCounts: classCounts(remap(lists.train).map((e) => e.label), k),
    trainCounts: classCounts(train.map((e) => e.label), k),
    testCounts: classCounts(test.map((e) => e.label), k),
    notes: [],
    async write(trainDir, testDir, meta) {
      for (
        const [split, dir, list] of [["test", testDir, test], ["train", trainDir, train]] as const
      ) {
        const tmpList = `${dir}.list-${Deno.pid}.txt`;
        await Deno.writeTextFile(tmpList, list.map((e) => `${e.path} ${e.label}\n`).join(""));
        try {
          const records = resized(
            imageNetLtImages(tmpList, root, { numClasses: k }),
            () => true,
            s,
            list.length,
            `ImageNet-LT ${split}`,
          );
          await writeShards(dir, records, {
            kind: "encoded",
            numClasses: k,
            classNames,
            overwrite: true,
            meta: { ...meta, split, side: s.side },
          });
        } finally {
          await Deno.remove(tmpList).catch(() => {});
        }
      }
    },
  };
}
