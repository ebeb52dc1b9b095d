/**
 * Image augmentation and normalisation on raw uint8 HWC pixels, writing float32 normalised HWC:
 * random crop with zero padding + horizontal flip (CIFAR), plain normalisation (SVHN, STL-10),
 * RandomResizedCrop + flip + ColorJitter (ImageNet, CUB) and resize + center crop (evaluation).
 *
 * Augmentations are described by plain, serialisable {@link AugmentSpec} objects (so a loader worker
 * can rebuild them) and built with {@link makeAugmenter}. All randomness comes from the {@link Rng}
 * passed to `apply`, so results are reproducible for a seed. The padding of the random crop is zero
 * in pixel space (like torchvision's `RandomCrop(32, padding=4)` before `Normalize`), i.e. -mean/std
 * after normalisation. Resizing is bilinear with half-pixel centres and no antialiasing.
 * @module
 */

import type { Rng } from "../gpu/rng.ts";
import type { ChannelStats } from "./normalize.ts";

/** Serialisable description of an augmentation pipeline. */
export type AugmentSpec =
  | ({ kind: "normalize" } & ChannelStats)
  | ({ kind: "crop_flip"; pad?: number; flip?: boolean } & ChannelStats)
  | (
    & {
      kind: "random_resized_crop";
      size: number;
      scale?: [number, number];
      ratio?: [number, number];
      flip?: boolean;
      /** ColorJitter strength for brightness, contrast and saturation (0 = off); default 0.4. */
      jitter?: number;
    }
    & ChannelStats
  )
  | ({ kind: "center_crop"; size: number; resize?: number } & ChannelStats);

/** A built augmentation: maps one uint8 HWC image to float32 normalised HWC. */
export interface Augmenter {
  /** The spec the augmenter was built from. */
  readonly spec: AugmentSpec;
  /** Output [height, width, channels] for an input of the given shape. */
  outputShape(height: number, width: number, channels: number): [number, number, number];
  /**
   * Augments `src` (height x width x channels uint8) into `out` starting at `outOffset`
   * (outputShape(...) floats).
   */
  apply(
    src: Uint8Array,
    height: number,
    width: number,
    channels: number,
    out: Float32Array,
    outOffset: number,
    rng: Rng,
  ): void;
}

/**
 * Builds an augmenter from its spec.
 *
 * @example
 * ```ts
 * import { makeAugmenter } from "./augment.ts";
 * import { DATASET_STATS } from "./normalize.ts";
 * import { Rng } from "../gpu/rng.ts";
 * const aug = makeAugmenter({ kind: "crop_flip", pad: 4, ...DATASET_STATS.cifar10 });
 * const img = new Uint8Array(32 * 32 * 3).fill(128);
 * const out = new Float32Array(32 * 32 * 3);
 * aug.apply(img, 32, 32, 3, out, 0, new Rng(1));
 * ```
 */
export function makeAugmenter(spec: AugmentSpec): Augmenter {
  switch (spec.kind) {
    case "normalize":
      return new CropFlip(spec, 0, false);
    case "crop_flip":
      return new CropFlip(spec, spec.pad ?? 4, spec.flip ?? true);
    case "random_resized_crop":
      return new RandomResizedCrop(spec);
    case "center_crop":
      return new CenterCrop(spec);
    default:
      throw new Error(`makeAugmenter: unknown kind "${(spec as { kind: string }).kind}"`);
  }
}

/** Lookup table: lut[c * 256 + v] = (v / 255 - mean[c]) / std[c]. */
export function normalizeLut(stats: ChannelStats, channels: number): Float32Array {
  if (stats.mean.length < channels || stats.std.length < channels) {
    throw new Error(`normalize: stats have ${stats.mean.length} channels, image has ${channels}`);
  }
  const lut = new Float32Array(channels * 256);
  for (let c = 0; c < channels; c++) {
    for (let v = 0; v < 256; v++) lut[c * 256 + v] = (v / 255 - stats.mean[c]) / stats.std[c];
  }
  return lut;
}

/** Random crop with zero padding + optional horizontal flip + normalisation (the hot 32x32 path). */
class CropFlip implements Augmenter {
  readonly spec: AugmentSpec;
  #pad: number;
  #flip: boolean;
  #lut: Float32Array | null = null;
  #lutChannels = 0;

  constructor(spec: AugmentSpec, pad: number, flip: boolean) {
    this.spec = spec;
    this.#pad = pad;
    this.#flip = flip;
  }

  outputShape(h: number, w: number, c: number): [number, number, number] {
    return [h, w, c];
  }

  apply(
    src: Uint8Array,
    h: number,
    w: number,
    c: number,
    out: Float32Array,
    o: number,
    rng: Rng,
  ): void {
    if (this.#lutChannels !== c) {
      this.#lut = normalizeLut(this.spec as ChannelStats, c);
      this.#lutChannels = c;
    }
    const lut = this.#lut!;
    const p = this.#pad;
    // torchvision order: crop offsets (top, left), then the flip coin.
    const oy = p > 0 ? rng.int(2 * p + 1) - p : 0;
    const ox = p > 0 ? rng.int(2 * p + 1) - p : 0;
    const flip = this.#flip && rng.next() < 0.5;
    // Output column x reads source column sx = x + ox (or w-1-x + ox flipped); valid x in [x0, x1).
    const x0 = flip ? Math.max(0, ox) : Math.max(0, -ox);
    const x1 = flip ? Math.min(w, w + ox) : Math.min(w, w - ox);
    const rowLen = w * c;
    if (c === 3) {
      const p0 = lut[0], p1 = lut[256], p2 = lut[512];
      for (let y = 0; y < h; y++) {
        const sy = y + oy;
        let q = o + y * rowLen;
        if (sy < 0 || sy >= h) {
          for (let x = 0; x < w; x++, q += 3) {
            out[q] = p0;
            out[q + 1] = p1;
            out[q + 2] = p2;
          }
          continue;
        }
        for (let x = 0; x < x0; x++, q += 3) {
          out[q] = p0;
          out[q + 1] = p1;
          out[q + 2] = p2;
        }
        const row = sy * rowLen;
        if (flip) {
          let s = row + (w - 1 - x0 + ox) * 3;
          for (let x = x0; x < x1; x++, q += 3, s -= 3) {
            out[q] = lut[src[s]];
            out[q + 1] = lut[256 + src[s + 1]];
            out[q + 2] = lut[512 + src[s + 2]];
          }
        } else {
          let s = row + (x0 + ox) * 3;
          for (let x = x0; x < x1; x++, q += 3, s += 3) {
            out[q] = lut[src[s]];
            out[q + 1] = lut[256 + src[s + 1]];
            out[q + 2] = lut[512 + src[s + 2]];
          }
        }
        for (let x = x1; x < w; x++, q += 3) {
          out[q] = p0;
          out[q + 1] = p1;
          out[q + 2] = p2;
        }
      }
      return;
    }
    for (let y = 0; y < h; y++) {
      const sy = y + oy;
      for (let x = 0; x < w; x++) {
        const sx = flip ? w - 1 - x + ox : x + ox;
        const q = o + y * rowLen + x * c;
        const inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
        const s = (sy * w + sx) * c;
        for (let ch = 0; ch < c; ch++) out[q + ch] = lut[ch * 256 + (inside ? src[s + ch] : 0)];
      }
    }
  }
}

/** Crop window in source pixels. */
export interface CropWindow {
  /** First row of the window. */
  top: number;
  /** First column of the window. */
  left: number;
  /** Rows in the window. */
  height: number;
  /** Columns in the window. */
  width: number;
}

/**
 * torchvision's RandomResizedCrop.get_params: up to 10 tries of a random area fraction in `scale`
 * and log-uniform aspect ratio in `ratio`, else a center crop with the ratio clamped.
 */
export function randomResizedCropWindow(
  height: number,
  width: number,
  scale: readonly [number, number],
  ratio: readonly [number, number],
  rng: Rng,
): CropWindow {
  const area = height * width;
  const logR0 = Math.log(ratio[0]), logR1 = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * (scale[0] + (scale[1] - scale[0]) * rng.next());
    const aspect = Math.exp(logR0 + (logR1 - logR0) * rng.next());
    const w = Math.round(Math.sqrt(target * aspect));
    const h = Math.round(Math.sqrt(target / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      return { top: rng.int(height - h + 1), left: rng.int(width - w + 1), height: h, width: w };
    }
  }
  const inRatio = width / height;
  let w = width, h = height;
  if (inRatio < ratio[0]) h = Math.round(w / ratio[0]);
  else if (inRatio > ratio[1]) w = Math.round(h * ratio[1]);
  return {
    top: Math.floor((height - h) / 2),
    left: Math.floor((width - w) / 2),
    height: h,
    width: w,
  };
}

/** Reusable per-axis bilinear sampling tables. */
class AxisTable {
  i0 = new Int32Array(0);
  i1 = new Int32Array(0);
  f = new Float32Array(0);

  /** Output o in [0, n) samples source start + (o + 0.5) * scale - 0.5, clamped to [lo, hi]. */
  fill(n: number, start: number, scale: number, lo: number, hi: number, reverse: boolean): void {
    if (this.i0.length < n) {
      this.i0 = new Int32Array(n);
      this.i1 = new Int32Array(n);
      this.f = new Float32Array(n);
    }
    for (let o = 0; o < n; o++) {
      const oo = reverse ? n - 1 - o : o;
      let s = start + (oo + 0.5) * scale - 0.5;
      if (s < lo) s = lo;
      if (s > hi) s = hi;
      const a = Math.floor(s);
      this.i0[o] = a;
      this.i1[o] = Math.min(a + 1, hi);
      this.f[o] = s - a;
    }
  }
}

/**
 * Bilinear resample of a window of `src` into `dst` (outH x outW x c floats in [0, 1] pixel/255),
 * optionally mirrored horizontally.
 */
function resampleWindow(
  src: Uint8Array,
  w: number,
  c: number,
  win: CropWindow,
  outH: number,
  outW: number,
  flip: boolean,
  ys: AxisTable,
  xs: AxisTable,
  dst: Float32Array,
): void {
  ys.fill(outH, win.top, win.height / outH, win.top, win.top + win.height - 1, false);
  xs.fill(outW, win.left, win.width / outW, win.left, win.left + win.width - 1, flip);
  resampleTables(src, w, c, outH, outW, ys, xs, dst);
}

/**
 * torchvision ColorJitter(b, b, b) on an RGB float image in [0, 1], in place: brightness, contrast
 * and saturation factors uniform in [1 - b, 1 + b], applied in a random order, clamped after each.
 */
export function colorJitter(img: Float32Array, pixels: number, strength: number, rng: Rng): void {
  if (strength <= 0) return;
  const order = [0, 1, 2];
  rng.shuffle(order);
  const lo = Math.max(0, 1 - strength);
  const factors = [0, 0, 0];
  for (let i = 0; i < 3; i++) factors[i] = lo + (1 + strength - lo) * rng.next();
  const n = pixels * 3;
  for (const op of order) {
    const f = factors[op];
    if (op === 0) { // brightness: blend with black
      for (let i = 0; i < n; i++) img[i] = Math.min(1, img[i] * f);
    } else if (op === 1) { // contrast: blend with the mean grey level
      let sum = 0;
      for (let i = 0; i < n; i += 3) {
        sum += 0.299 * img[i] + 0.587 * img[i + 1] + 0.114 * img[i + 2];
      }
      const m = (1 - f) * (sum / pixels);
      for (let i = 0; i < n; i++) img[i] = clamp01(f * img[i] + m);
    } else { // saturation: blend with the pixel's grey level
      for (let i = 0; i < n; i += 3) {
        const g = (1 - f) * (0.299 * img[i] + 0.587 * img[i + 1] + 0.114 * img[i + 2]);
        img[i] = clamp01(f * img[i] + g);
        img[i + 1] = clamp01(f * img[i + 1] + g);
        img[i + 2] = clamp01(f * img[i + 2] + g);
      }
    }
  }
}

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

/** Writes (img - mean) / std per channel into out at o. */
function normalizeInto(
  img: Float32Array,
  n: number,
  c: number,
  stats: ChannelStats,
  out: Float32Array,
  o: number,
): void {
  if (c === 3) {
    const m0 = stats.mean[0], m1 = stats.mean[1], m2 = stats.mean[2];
    const s0 = 1 / stats.std[0], s1 = 1 / stats.std[1], s2 = 1 / stats.std[2];
    for (let i = 0; i < n * 3; i += 3) {
      out[o + i] = (img[i] - m0) * s0;
      out[o + i + 1] = (img[i + 1] - m1) * s1;
      out[o + i + 2] = (img[i + 2] - m2) * s2;
    }
    return;
  }
  for (let ch = 0; ch < c; ch++) {
    const m = stats.mean[ch], s = 1 / stats.std[ch];
    for (let i = ch; i < n * c; i += c) out[o + i] = (img[i] - m) * s;
  }
}

/**
 * The crops that resample a window of the source to `size` x `size` (bilinear, into a reused float
 * buffer in [0, 1]) and then normalise it into the output.
 */
abstract class ResampledCrop<S extends AugmentSpec & { size: number }> implements Augmenter {
  readonly spec: S;
  protected ys = new AxisTable();
  protected xs = new AxisTable();
  #tmp = new Float32Array(0);

  constructor(spec: S) {
    this.spec = spec;
  }

  outputShape(_h: number, _w: number, c: number): [number, number, number] {
    return [this.spec.size, this.spec.size, c];
  }

  /** Fills `tmp` (size x size x c floats) from `src`. */
  protected abstract resample(
    src: Uint8Array,
    h: number,
    w: number,
    c: number,
    tmp: Float32Array,
    rng: Rng,
  ): void;

  apply(
    src: Uint8Array,
    h: number,
    w: number,
    c: number,
    out: Float32Array,
    o: number,
    rng: Rng,
  ): void {
    const pixels = this.spec.size * this.spec.size;
    if (this.#tmp.length < pixels * c) this.#tmp = new Float32Array(pixels * c);
    this.resample(src, h, w, c, this.#tmp, rng);
    normalizeInto(this.#tmp, pixels, c, this.spec, out, o);
  }
}

/** RandomResizedCrop(size, scale, ratio) + horizontal flip + ColorJitter + normalisation. */
class RandomResizedCrop extends ResampledCrop<AugmentSpec & { kind: "random_resized_crop" }> {
  protected resample(
    src: Uint8Array,
    h: number,
    w: number,
    c: number,
    tmp: Float32Array,
    rng: Rng,
  ): void {
    const s = this.spec, size = s.size;
    const win = randomResizedCropWindow(h, w, s.scale ?? [0.08, 1], s.ratio ?? [3 / 4, 4 / 3], rng);
    const flip = (s.flip ?? true) && rng.next() < 0.5;
    resampleWindow(src, w, c, win, size, size, flip, this.ys, this.xs, tmp);
    const jitter = s.jitter ?? 0.4;
    if (jitter > 0) {
      if (c !== 3) throw new Error(`ColorJitter needs RGB images, got ${c} channels`);
      colorJitter(tmp, size * size, jitter, rng);
    }
  }
}

/** Resize (shorter side to `resize`, default size / 0.875) + center crop `size` + normalisation. */
class CenterCrop extends ResampledCrop<AugmentSpec & { kind: "center_crop" }> {
  protected resample(
    src: Uint8Array,
    h: number,
    w: number,
    c: number,
    tmp: Float32Array,
    _rng: Rng,
  ): void {
    const size = this.spec.size;
    const resize = this.spec.resize ?? Math.round(size / 0.875);
    // torchvision Resize(int): the shorter side becomes `resize`, the longer int(resize * long / short).
    const rh = h <= w ? resize : Math.floor(resize * h / w);
    const rw = h <= w ? Math.floor(resize * w / h) : resize;
    if (rh < size || rw < size) throw new Error(`center_crop: resize ${resize} < size ${size}`);
    const top = Math.round((rh - size) / 2), left = Math.round((rw - size) / 2);
    // The window of the source that maps onto the crop of the resized image.
    const sy = h / rh, sx = w / rw;
    const win = { top: top * sy, left: left * sx, height: size * sy, width: size * sx };
    this.ys.fill(size, win.top, sy, 0, h - 1, false);
    this.xs.fill(size, win.left, sx, 0, w - 1, false);
    resampleTables(src, w, c, size, size, this.ys, this.xs, tmp);
  }
}

function resampleTables(
  src: Uint8Array,
  w: number,
  c: number,
  outH: number,
  outW: number,
  ys: AxisTable,
  xs: AxisTable,
  dst: Float32Array,
): void {
  const k = 1 / 255;
  let q = 0;
  if (c === 3) {
    const x0 = xs.i0, x1 = xs.i1, fxs = xs.f;
    for (let oy = 0; oy < outH; oy++) {
      const r0 = ys.i0[oy] * w * 3, r1 = ys.i1[oy] * w * 3, fy = ys.f[oy];
      for (let ox = 0; ox < outW; ox++) {
        const a = r0 + x0[ox] * 3, b = r0 + x1[ox] * 3, d = r1 + x0[ox] * 3, e = r1 + x1[ox] * 3;
        const fx = fxs[ox];
        for (let ch = 0; ch < 3; ch++) {
          const top = src[a + ch] + fx * (src[b + ch] - src[a + ch]);
          const bot = src[d + ch] + fx * (src[e + ch] - src[d + ch]);
          dst[q++] = (top + fy * (bot - top)) * k;
        }
      }
    }
    return;
  }
  for (let oy = 0; oy < outH; oy++) {
    const r0 = ys.i0[oy] * w * c, r1 = ys.i1[oy] * w * c, fy = ys.f[oy];
    for (let ox = 0; ox < outW; ox++) {
      const c0 = xs.i0[ox] * c, c1 = xs.i1[ox] * c, fx = xs.f[ox];
      const w00 = (1 - fy) * (1 - fx) * k, w01 = (1 - fy) * fx * k;
      const w10 = fy * (1 - fx) * k, w11 = fy * fx * k;
      for (let ch = 0; ch < c; ch++) {
        dst[q++] = w00 * src[r0 + c0 + ch] + w01 * src[r0 + c1 + ch] +
          w10 * src[r1 + c0 + ch] + w11 * src[r1 + c1 + ch];
      }
    }
  }
}
