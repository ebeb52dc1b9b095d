// Owns the STL-10 reader for the official binary archive (stl10_binary.tar.gz or the extracted
// stl10_binary folder): X is uint8 N x 3 x 96 x 96 with each channel stored column-major,
// y is uint8 labels 1..10 (mapped to 0..9). The unlabeled split is skipped.

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
 * Reads an STL-10 labelled split (train 5000 / test 8000 images of 96x96) into HWC.
 * Stops reading the archive once the split's files are found.
 *
 * @example
 * ```ts ignore
 * const train = await readStl10("stl10_binary.tar.gz", "train");
 * ```
 */
export async function readStl10(path: string, split: Split): Promise<ImageArray> {
  const xName = `${split}_X.bin`, yName = `${split}_y.bin`;
  let images: Uint8Array | undefined;
  let raw: Uint8Array | undefined;
  let classNames: string[] | undefined;
  for await (const m of datasetMembers(path)) {
    const where = `${path}: ${m.name}`;
    if (m.basename === xName) {
      if (m.size % IMAGE !== 0) {
        throw new Error(`${where}: size ${m.size} is not a multiple of ${IMAGE}`);
      }
      const out = new Uint8Array(m.size);
      await forEachRecord(m.chunks(), IMAGE, (rec, i) => stl10ToHwc(rec, out, i * IMAGE), where);
      images = out;
    } else if (m.basename === yName) {
      raw = await m.bytes();
    } else if (m.basename === "class_names.txt") {
      classNames = lines(await m.text());
    }
    if (images && raw && classNames) break;
  }
  if (!images || !raw) {
    throw new Error(`${path}: missing stl10_binary/${images ? yName : xName}`);
  }
  const n = images.length / IMAGE;
  if (raw.length !== n) {
    throw new Error(`${path}: ${yName} has ${raw.length} labels for ${n} images`);
  }
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    if (raw[i] < 1 || raw[i] > 10) {
      throw new Error(`${path}: ${yName} label ${raw[i]} of image ${i} is outside 1..10`);
    }
    labels[i] = raw[i] - 1;
  }
  return { images, labels, height: SIDE, width: SIDE, channels: 3, numClasses: 10, classNames };
}
