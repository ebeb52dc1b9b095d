// Owns the SVHN reader for the official cropped-digit files (train_32x32.mat, test_32x32.mat,
// extra_32x32.mat): X is uint8 32x32x3xN column-major, y is Nx1 with 10 meaning digit 0.
// X is streamed record by record straight into the HWC output (one copy in memory).

import type { ImageArray } from "../types.ts";
import { forEachRecord } from "../archive/byte_reader.ts";
import { mat5Variables } from "./mat5.ts";

const IMAGE = 32 * 32 * 3;

/** Transposes one column-major 32x32x3 SVHN image ([c][w][h]) into HWC at out[offset]. */
export function svhnToHwc(src: Uint8Array, out: Uint8Array, offset: number): void {
  for (let c = 0; c < 3; c++) {
    for (let w = 0; w < 32; w++) {
      const s = c * 1024 + w * 32;
      let o = offset + w * 3 + c;
      for (let h = 0; h < 32; h++, o += 96) out[o] = src[s + h];
    }
  }
}

/**
 * Reads an official SVHN `*_32x32.mat` file (compressed or not) into an HWC ImageArray with
 * labels 0..9 (the file's label 10 is digit 0).
 *
 * @example
 * ```ts
 * const test = await readSvhn("test_32x32.mat"); // 26032 images in the official file
 * ```
 */
export async function readSvhn(path: string): Promise<ImageArray> {
  let images: Uint8Array | undefined;
  let raw: Float64Array | undefined;
  for await (const v of mat5Variables(path)) {
    if (v.name === "X") {
      const [h, w, c, n = 1] = v.dims;
      if (h !== 32 || w !== 32 || c !== 3 || v.dims.length > 4) {
        throw new Error(`${path}: X has dims ${v.dims.join("x")}, expected 32x32x3xN`);
      }
      if (v.className !== "uint8" || v.dataType !== 2 || v.byteLength !== n * IMAGE) {
        throw new Error(`${path}: X must be uint8 with ${n * IMAGE} bytes (${v.className})`);
      }
      const out = new Uint8Array(n * IMAGE);
      const got = await forEachRecord(
        v.chunks(),
        IMAGE,
        (rec, i) => svhnToHwc(rec, out, i * IMAGE),
        `${path}: X`,
      );
      if (got !== n) throw new Error(`${path}: X truncated: ${got} of ${n} images`);
      images = out;
    } else if (v.name === "y") {
      raw = await v.toFloat64();
    }
    if (images && raw) break;
  }
  if (!images || !raw) throw new Error(`${path}: missing variable ${images ? "y" : "X"}`);
  const n = images.length / IMAGE;
  if (raw.length !== n) throw new Error(`${path}: ${raw.length} labels for ${n} images`);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const l = raw[i];
    if (!(l >= 1 && l <= 10 && Number.isInteger(l))) {
      throw new Error(`${path}: label ${l} of image ${i} is outside 1..10`);
    }
    labels[i] = l % 10;
  }
  return {
    images,
    labels,
    height: 32,
    width: 32,
    channels: 3,
    numClasses: 10,
    classNames: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
  };
}
