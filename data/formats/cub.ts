// Owns the CUB-200-2011 reader over the official CUB_200_2011.tgz (or its extracted folder):
// metadata (images.txt, image_class_labels.txt, train_test_split.txt, classes.txt) first, then
// the JPEGs streamed one at a time as EncodedImage records of the requested split. When the
// metadata come after the images in the archive, the archive is read twice.

import type { EncodedImage } from "../types.ts";
import { datasetMembers, lines, type Member } from "./members.ts";

/** One image of CUB as listed by the metadata files. */
export interface CubImage {
  /** The image's id in images.txt (1-based). */
  id: number;
  /** Path relative to CUB_200_2011/images, e.g. "001.Black_footed_Albatross/x.jpg". */
  path: string;
  /** 0-based class. */
  label: number;
  /** Whether train_test_split.txt puts the image in the training split. */
  isTrain: boolean;
}

/** CUB's metadata. */
export interface CubMetadata {
  /** 200 class names (e.g. "001.Black_footed_Albatross"), index = 0-based label. */
  classNames: string[];
  /** Every image, in images.txt order. */
  images: CubImage[];
}

const META = ["images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt"];

function pairs(text: string, file: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const l of lines(text)) {
    const sp = l.indexOf(" ");
    const id = Number(l.slice(0, sp));
    if (sp < 0 || !Number.isInteger(id)) throw new Error(`${file}: malformed line "${l}"`);
    out.set(id, l.slice(sp + 1).trim());
  }
  return out;
}

function buildMetadata(texts: Map<string, string>, where: string): CubMetadata {
  const paths = pairs(texts.get("images.txt")!, `${where} images.txt`);
  const labels = pairs(texts.get("image_class_labels.txt")!, `${where} image_class_labels.txt`);
  const split = pairs(texts.get("train_test_split.txt")!, `${where} train_test_split.txt`);
  const classes = pairs(texts.get("classes.txt")!, `${where} classes.txt`);
  const classNames = [...classes.keys()].sort((a, b) => a - b).map((k) => classes.get(k)!);
  const images: CubImage[] = [];
  for (const [id, path] of paths) {
    const label = Number(labels.get(id)) - 1;
    const s = split.get(id);
    if (!(label >= 0 && label < classNames.length) || (s !== "0" && s !== "1")) {
      throw new Error(`${where}: image ${id} (${path}) lacks a valid label or split`);
    }
    images.push({ id, path, label, isTrain: s === "1" });
  }
  return { classNames, images };
}

/** Options for {@link cubImages}. */
export interface CubOptions {
  /** Which images: the official training split, the test split, or all of them. */
  split: "train" | "test" | "all";
  /** Metadata from {@link readCubMetadata}, to skip the metadata pass. */
  metadata?: CubMetadata;
}

/**
 * Reads only CUB's metadata files (one pass; stops as soon as all four are found).
 */
export async function readCubMetadata(path: string): Promise<CubMetadata> {
  const texts = new Map<string, string>();
  for await (const m of datasetMembers(path)) {
    if (META.includes(m.basename) && isMeta(m)) texts.set(m.basename, await m.text());
    if (texts.size === META.length) break;
  }
  const missing = META.filter((f) => !texts.has(f));
  if (missing.length) throw new Error(`${path}: missing CUB_200_2011/${missing.join(", ")}`);
  return buildMetadata(texts, path);
}

/** Metadata live directly in the CUB_200_2011 folder (not in subfolders like attributes/). */
function isMeta(m: Member): boolean {
  const parts = m.name.split("/");
  return parts.length <= 2;
}

function imageKey(name: string): string | null {
  const i = name.lastIndexOf("images/");
  return i < 0 ? null : name.slice(i + "images/".length);
}

/**
 * Streams the JPEGs of a CUB split in archive order as EncodedImage (labels 0..199), holding
 * one image at a time. Metadata found before the first image are used in the same pass;
 * otherwise a first pass reads them.
 *
 * @example
 * ```ts
 * for await (const img of cubImages("CUB_200_2011.tgz", { split: "train" })) {
 *   console.log(img.name, img.label, img.bytes.length);
 * }
 * ```
 */
export async function* cubImages(
  path: string,
  options: CubOptions,
): AsyncGenerator<EncodedImage> {
  let meta = options.metadata;
  const texts = new Map<string, string>();
  let table: Map<string, CubImage> | undefined;
  const wanted = (im: CubImage) =>
    options.split === "all" || im.isTrain === (options.split === "train");
  const index = (md: CubMetadata) => new Map(md.images.map((im) => [im.path, im]));
  if (meta) table = index(meta);
  let yielded = 0, expected = 0;
  let sawImageFirst = false;
  for await (const m of datasetMembers(path)) {
    if (!table && META.includes(m.basename) && isMeta(m)) {
      texts.set(m.basename, await m.text());
      if (texts.size === META.length) {
        meta = buildMetadata(texts, path);
        table = index(meta);
      }
      continue;
    }
    const key = imageKey(m.name);
    if (key === null || !/\.jpe?g$/i.test(key)) continue;
    if (!table) {
      sawImageFirst = true; // metadata come later: read them, then a second pass
      continue;
    }
    if (sawImageFirst) continue;
    const im = table.get(key);
    if (!im || !wanted(im)) continue;
    yield { label: im.label, bytes: await m.bytes(), name: key };
    yielded++;
  }
  if (!meta) throw new Error(`${path}: missing CUB_200_2011 metadata (${META.join(", ")})`);
  if (sawImageFirst) {
    yield* cubImages(path, { split: options.split, metadata: meta });
    return;
  }
  expected = meta.images.filter(wanted).length;
  if (yielded !== expected) {
    throw new Error(`${path}: found ${yielded} of the ${expected} ${options.split} images listed`);
  }
}
