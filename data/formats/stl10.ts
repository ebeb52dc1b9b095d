// Owns the STL-10 reader for the official binary archive (stl10_binary.tar.gz or the extracted
// stl10_binary folder): X is uint8 N x 3 x 96 x 96 with each channel stored column-major,
// y is uint8 labels 1..10 (mapped to 0..9). The unlabeled split is skipped (but a gzipped archive
// is still read to its end, so its CRC is checked).

import type { ImageArray } from "../types.ts";
import type { Split } from "./cifar.ts";
import { forEachRecord } from "../archive/byte_reader.ts";
import { datasetMembers, lines } from "./members.ts";

const SIDE = 96;
const PLANE = SIDE * SIDE;
const IMAGE = PLANE * 3;

/** Transposes one STL-10 image (3 column-major 96x96 planes) into HWC at out[offset]. */
export function stl10ToHwc(src: Uint8Array, out: Uint8Array, offset: number): void {
  for (let c = 0; c < 3; c++) {
    for (let w = 0; w < SIDE; w++) {
      const s = c * PLANE + w * SIDE;
      let o = offset + w * 3 + c;
      for (let h = 0; h < SIDE; h++, o += SIDE * 3) out[o] = src[s + h];
    }
  }
}

/**
 * Reads an STL-10 labelled split (train 5000 / test 8000 images of 96x96) into HWC. The archive
 * is read to its end (its gzip CRC checked) before the split is returned; to read both splits
 * in one pass use {@linkcode readStl10Splits}.
 *
 * @example
 * ```ts ignore
 * const train = await readStl10("stl10_binary.tar.gz", "train");
 * ```
 */
export async function readStl10(path: string, split: Split): Promise<ImageArray> {
  return (await readStl10Splits(path, [split]))[split]!;
}

/**
 * Reads several STL-10 labelled splits in one pass over the archive (or the extracted folder).
 *
 * @example
 * ```ts ignore
 * const { train, test } = await readStl10Splits("stl10_binary.tar.gz", ["train", "test"]);
 * ```
 */
export async function readStl10Splits(
  path: string,
  splits: readonly Split[] = ["train", "test"],
): Promise<Partial<Record<Split, ImageArray>>> {
  const images = new Map<Split, Uint8Array>();
  const raw = new Map<Split, Uint8Array>();
  let classNames: string[] | undefined;
  const want = new Map<string, { split: Split; x: boolean }>();
  for (const s of splits) {
    want.set(`${s}_X.bin`, { split: s, x: true });
    want.set(`${s}_y.bin`, { split: s, x: false });
  }
  for await (const m of datasetMembers(path)) {
    const where = `${path}: ${m.name}`;
    const w = want.get(m.basename);
    if (w?.x) {
      if (m.size % IMAGE !== 0) {
        throw new Error(`${where}: size ${m.size} is not a multiple of ${IMAGE}`);
      }
      const out = new Uint8Array(m.size);
      await forEachRecord(m.chunks(), IMAGE, (rec, i) => stl10ToHwc(rec, out, i * IMAGE), where);
      images.set(w.split, out);
    } else if (w) {
      raw.set(w.split, await m.bytes());
    } else if (m.basename === "class_names.txt") {
      classNames = lines(await m.text());
    }
    if (images.size + raw.size === want.size && classNames) break;
  }
  const out: Partial<Record<Split, ImageArray>> = {};
  for (const split of splits) {
    const xName = `${split}_X.bin`, yName = `${split}_y.bin`;
    const x = images.get(split), y = raw.get(split);
    if (!x || !y) throw new Error(`${path}: missing stl10_binary/${x ? yName : xName}`);
    const n = x.length / IMAGE;
    if (y.length !== n) {
      throw new Error(`${path}: ${yName} has ${y.length} labels for ${n} images`);
    }
    const labels = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      if (y[i] < 1 || y[i] > 10) {
        throw new Error(`${path}: ${yName} label ${y[i]} of image ${i} is outside 1..10`);
      }
      labels[i] = y[i] - 1;
    }
    out[split] = {
      images: x,
      labels,
      height: SIDE,
      width: SIDE,
      channels: 3,
      numClasses: 10,
      classNames,
    };
  }
  return out;
}
