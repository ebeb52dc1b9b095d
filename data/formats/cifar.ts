// Owns the CIFAR-10 and CIFAR-100 readers for the official *binary* distributions
// (cifar-10-binary.tar.gz, cifar-100-binary.tar.gz, or their extracted folders). Records are
// label byte(s) + 3072 bytes CHW (R, G, B planes of 32x32, row-major); output is HWC.

import type { ImageArray } from "../types.ts";
import { forEachRecord } from "../archive/byte_reader.ts";
import { datasetMembers, lines, type Member } from "./members.ts";

/** Which split of a dataset to read. */
export type Split = "train" | "test";

const PIXELS = 32 * 32;
const IMAGE = PIXELS * 3;

/** Transposes one 32x32 CHW image (3 planes) into HWC at out[offset]. */
export function chwToHwc(src: Uint8Array, out: Uint8Array, offset: number, pixels = PIXELS): void {
  const g = pixels, b = 2 * pixels;
  for (let p = 0, o = offset; p < pixels; p++, o += 3) {
    out[o] = src[p];
    out[o + 1] = src[g + p];
    out[o + 2] = src[b + p];
  }
}

interface BatchSpec {
  /** Basenames of the batch files, in the order their records appear in the output. */
  files: string[];
  /** Bytes before the pixels in each record. */
  labelBytes: number;
  /** Which label byte to use. */
  labelIndex: number;
  numClasses: number;
  /** Basename of the class-name list. */
  namesFile: string;
  /** Folder name the files live in (inside the archive). */
  dir: string;
}

async function readBatches(path: string, spec: BatchSpec): Promise<ImageArray> {
  const recordSize = spec.labelBytes + IMAGE;
  let perBatch = -1;
  let images = new Uint8Array(0);
  let labels = new Int32Array(0);
  const seen = new Set<string>();
  let classNames: string[] | undefined;
  const inDir = (m: Member) => m.name === m.basename || m.name.split("/").includes(spec.dir);
  for await (const m of datasetMembers(path)) {
    if (!inDir(m)) continue;
    if (m.basename === spec.namesFile) {
      classNames = lines(await m.text());
    } else if (spec.files.includes(m.basename) && !seen.has(m.basename)) {
      const where = `${path}: ${m.name}`;
      if (m.size % recordSize !== 0) {
        throw new Error(
          `${where}: size ${m.size} is not a multiple of the ${recordSize}-byte record`,
        );
      }
      const n = m.size / recordSize;
      if (perBatch < 0) {
        perBatch = n;
        images = new Uint8Array(n * spec.files.length * IMAGE);
        labels = new Int32Array(n * spec.files.length);
      } else if (n !== perBatch) {
        throw new Error(`${where}: ${n} records, but other batches have ${perBatch}`);
      }
      const base = spec.files.indexOf(m.basename) * perBatch;
      const got = await forEachRecord(m.chunks(), recordSize, (rec, i) => {
        const label = rec[spec.labelIndex];
        if (label >= spec.numClasses) {
          throw new Error(`${where}: record ${i} has label ${label} >= ${spec.numClasses}`);
        }
        labels[base + i] = label;
        chwToHwc(rec.subarray(spec.labelBytes), images, (base + i) * IMAGE);
      }, where);
      if (got !== n) throw new Error(`${where}: truncated: ${got} of ${n} records`);
      seen.add(m.basename);
    }
    if (seen.size === spec.files.length && classNames) break; // skip the rest of the archive
  }
  const missing = spec.files.filter((f) => !seen.has(f));
  if (missing.length) {
    throw new Error(`${path}: missing ${missing.map((f) => `${spec.dir}/${f}`).join(", ")}`);
  }
  return {
    images,
    labels,
    height: 32,
    width: 32,
    channels: 3,
    numClasses: spec.numClasses,
    classNames,
  };
}

/**
 * Reads a CIFAR-10 split from `cifar-10-binary.tar.gz` (or the extracted `cifar-10-batches-bin`
 * folder): train = data_batch_1..5 in order (50000 images), test = test_batch (10000).
 *
 * @example
 * ```ts
 * const train = await readCifar10("cifar-10-binary.tar.gz", "train");
 * console.log(train.labels.length, train.classNames);
 * ```
 */
export function readCifar10(path: string, split: Split): Promise<ImageArray> {
  return readBatches(path, {
    files: split === "train"
      ? [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`)
      : ["test_batch.bin"],
    labelBytes: 1,
    labelIndex: 0,
    numClasses: 10,
    namesFile: "batches.meta.txt",
    dir: "cifar-10-batches-bin",
  });
}

/** Options for {@link readCifar100}. */
export interface Cifar100Options {
  /** "fine" (100 classes, default) or "coarse" (20 superclasses). */
  labels?: "fine" | "coarse";
}

/**
 * Reads a CIFAR-100 split from `cifar-100-binary.tar.gz` (or the extracted `cifar-100-binary`
 * folder): train.bin (50000) or test.bin (10000), with fine or coarse labels.
 *
 * @example
 * ```ts
 * const test = await readCifar100("cifar-100-binary.tar.gz", "test", { labels: "fine" });
 * ```
 */
export function readCifar100(
  path: string,
  split: Split,
  options: Cifar100Options = {},
): Promise<ImageArray> {
  const fine = (options.labels ?? "fine") === "fine";
  return readBatches(path, {
    files: [split === "train" ? "train.bin" : "test.bin"],
    labelBytes: 2,
    labelIndex: fine ? 1 : 0,
    numClasses: fine ? 100 : 20,
    namesFile: fine ? "fine_label_names.txt" : "coarse_label_names.txt",
    dir: "cifar-100-binary",
  });
}
