// Owns the ImageNet-LT reader: the OLTR split lists (ImageNet_LT_{train,val,test}.txt, lines
// "train/n01440764/n01440764_10026.JPEG 0") resolved against a local ImageNet folder, streamed as
// EncodedImage records with a few reads in flight.

import type { EncodedImage } from "../types.ts";
import { lines } from "./members.ts";

/** One line of a split list. */
export interface ListedImage {
  /** Path relative to the ImageNet root. */
  path: string;
  /** The class index on the line. */
  label: number;
}

/** Parses a split list's text; throws on malformed lines, naming the file and line. */
export function parseImageNetLtList(text: string, file = "list"): ListedImage[] {
  return lines(text).map((l, i) => {
    const m = /^(\S+)\s+(\d+)$/.exec(l);
    if (!m) throw new Error(`${file}: line ${i + 1} is not "<path> <label>": "${l}"`);
    return { path: m[1], label: Number(m[2]) };
  });
}

/** Reads a split list file. */
export async function readImageNetLtList(listFile: string): Promise<ListedImage[]> {
  return parseImageNetLtList(await Deno.readTextFile(listFile), listFile);
}

/** Options for {@link imageNetLtImages}. */
export interface ImageNetLtOptions {
  /** Concurrent file reads (default 8). */
  concurrency?: number;
  /** Number of classes (default 1000): labels must lie below it. */
  numClasses?: number;
}

/**
 * Streams the images of an ImageNet-LT split, in list order, from `root` (the folder that holds
 * train/ and val/). A missing file throws an Error naming it.
 *
 * @example
 * ```ts
 * for await (const im of imageNetLtImages("ImageNet_LT_train.txt", "imagenet")) {
 *   console.log(im.name, im.label);
 * }
 * ```
 */
export async function* imageNetLtImages(
  listFile: string,
  root: string,
  options: ImageNetLtOptions = {},
): AsyncGenerator<EncodedImage> {
  const list = await readImageNetLtList(listFile);
  const k = options.numClasses ?? 1000;
  const bad = list.find((e) => e.label >= k);
  if (bad) throw new Error(`${listFile}: label ${bad.label} of ${bad.path} is >= ${k}`);
  const depth = Math.max(1, options.concurrency ?? 8);
  const read = (e: ListedImage) => {
    const p = Deno.readFile(`${root}/${e.path}`).catch((err) => {
      throw new Error(`${listFile}: cannot read ${root}/${e.path}: ${err.message}`, {
        cause: err,
      });
    });
    // A read still in flight when an earlier one fails (or the consumer stops) is never awaited:
    // mark it handled so its rejection is not reported as uncaught; awaiting `p` still throws.
    p.catch(() => {});
    return p;
  };
  const inflight: Promise<Uint8Array>[] = [];
  for (let i = 0; i < Math.min(depth, list.length); i++) inflight.push(read(list[i]));
  for (let i = 0; i < list.length; i++) {
    const bytes = await inflight.shift()!;
    if (i + depth < list.length) inflight.push(read(list[i + depth]));
    yield { label: list[i].label, bytes, name: list[i].path };
  }
}

/** Per-class image counts of a list (index = label). */
export function classCounts(list: ListedImage[], numClasses = 1000): Int32Array {
  const c = new Int32Array(numClasses);
  for (const e of list) c[e.label]++;
  return c;
}
