// Owns JPEG (and PNG/WebP) decoding and resizing to raw RGB uint8 HWC with sharp (libvips), for
// CUB/ImageNet shards and the loader. Greyscale/CMYK/alpha inputs come out as 3-channel sRGB.
// sharp is loaded on the first JPEG only, through an import Deno's module graph cannot see, so that
// a process that never reads a JPEG (CIFAR, SVHN, STL-10, importing mod.ts) neither downloads sharp
// and its platform binaries (~45 MB) nor loads its native add-on.

/** The npm specifier of sharp (the one place that names its version). */
const SHARP = "npm:sharp@^0.34.5";

/**
 * The part of sharp's pipeline API this file calls, typed here rather than imported from sharp's
 * declarations, so that type-checking or documenting the library resolves no sharp package either.
 */
interface SharpPipeline {
  resize(
    width: number,
    height: number,
    options: { fit: "fill" | "cover" | "outside"; position?: "centre"; kernel?: string },
  ): SharpPipeline;
  rotate(): SharpPipeline;
  removeAlpha(): SharpPipeline;
  toColourspace(space: "srgb"): SharpPipeline;
  raw(): SharpPipeline;
  jpeg(options: { quality: number }): SharpPipeline;
  metadata(): Promise<{ width?: number; height?: number }>;
  toBuffer(): Promise<Uint8Array>;
  toBuffer(options: { resolveWithObject: true }): Promise<{
    data: Uint8Array;
    info: { width: number; height: number; channels: number };
  }>;
}

/** sharp's default export: a pipeline over encoded bytes, or over raw pixels with `raw`. */
type Sharp = (
  input: Uint8Array,
  options: { failOn: "error" } | { raw: { width: number; height: number; channels: 3 } },
) => SharpPipeline;

let sharpModule: Promise<Sharp> | null = null;

/**
 * `import()` of a specifier held in a variable inside a function body: neither `deno run`'s module
 * graph (which would prefetch a literal `import("npm:...")`) nor `deno publish`'s analysis sees it.
 */
const importLazily = new Function("specifier", "return import(specifier)") as (
  specifier: string,
) => Promise<{ default: unknown }>;

/** Loads sharp (libvips) on first use, so importing the library does not fetch or load it. */
export function loadSharp(): Promise<Sharp> {
  sharpModule ??= importLazily(SHARP).then(
    (m) => m.default as Sharp,
    (e) => {
      sharpModule = null;
      throw new Error(
        `collapse: reading JPEG datasets needs ${SHARP}, which could not be loaded ` +
          `(${(e as Error).message}). Run once with network access, or fetch it with ` +
          `\`deno cache ${SHARP}\`.`,
        { cause: e },
      );
    },
  );
  return sharpModule;
}

/** Whether sharp has been loaded in this thread (nothing read a JPEG yet when false). */
export function sharpLoaded(): boolean {
  return sharpModule !== null;
}

/** Raw decoded pixels, HWC uint8 RGB. */
export interface RgbImage {
  /** width * height * 3 bytes, row-major RGB. */
  data: Uint8Array;
  /** Columns. */
  width: number;
  /** Rows. */
  height: number;
}

/** How to size the output. */
export interface ResizeOptions {
  /** Output width in pixels. */
  width: number;
  /** Output height in pixels. */
  height: number;
  /**
   * "cover" (default): scale so the image covers width x height, then centre-crop.
   * "fill": stretch to width x height, ignoring aspect ratio.
   */
  fit?: "cover" | "fill";
  /**
   * With fit "cover": first resize so the shorter side is this long, then centre-crop
   * width x height (torchvision's Resize(256) + CenterCrop(224)).
   */
  resizeShorter?: number;
  /** Resampling kernel (default "lanczos3"; "linear" or "nearest" are faster). */
  kernel?: "nearest" | "linear" | "cubic" | "mitchell" | "lanczos2" | "lanczos3";
}

async function raw(img: SharpPipeline, where: string): Promise<RgbImage> {
  try {
    const { data, info } = await img.removeAlpha().toColourspace("srgb").raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels`);
    return {
      data: new Uint8Array(data.buffer, data.byteOffset, data.length),
      width: info.width,
      height: info.height,
    };
  } catch (e) {
    throw new Error(`${where}: cannot decode image: ${(e as Error).message}`, { cause: e });
  }
}

/** Decodes an encoded image at its own size to RGB HWC. */
export async function decodeImage(bytes: Uint8Array, name = "image"): Promise<RgbImage> {
  const sharp = await loadSharp();
  return raw(sharp(bytes, { failOn: "error" }), name);
}

/**
 * Decodes and resizes an encoded image to exactly width x height RGB HWC.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { decodeResized } from "@collapse/collapse/data";
 *
 * const jpegBytes = await Deno.readFile("image.jpg");
 * const { data } = await decodeResized(jpegBytes, { width: 224, height: 224, resizeShorter: 256 });
 * assertEquals(data.length, 224 * 224 * 3); // RGB, row-major
 * ```
 */
export async function decodeResized(
  bytes: Uint8Array,
  options: ResizeOptions,
  name = "image",
): Promise<RgbImage> {
  const { width, height } = options;
  const kernel = options.kernel ?? "lanczos3";
  const sharp = await loadSharp();
  let img = sharp(bytes, { failOn: "error" });
  if ((options.fit ?? "cover") === "fill") {
    img = img.resize(width, height, { fit: "fill", kernel });
  } else if (options.resizeShorter) {
    const meta = await img.metadata().catch((e) => {
      throw new Error(`${name}: cannot decode image: ${e.message}`, { cause: e });
    });
    const w0 = meta.width ?? 0, h0 = meta.height ?? 0;
    const s = options.resizeShorter / Math.min(w0, h0);
    const w1 = Math.max(width, Math.round(w0 * s)), h1 = Math.max(height, Math.round(h0 * s));
    const resized = await raw(img.resize(w1, h1, { fit: "fill", kernel }), name);
    const left = Math.floor((w1 - width) / 2), top = Math.floor((h1 - height) / 2);
    const out = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) {
      const src = ((top + y) * w1 + left) * 3;
      out.set(resized.data.subarray(src, src + width * 3), y * width * 3);
    }
    return { data: out, width, height };
  } else {
    img = img.resize(width, height, { fit: "cover", position: "centre", kernel });
  }
  const out = await raw(img, name);
  return out;
}

/** Encodes RGB HWC pixels as JPEG (tests, previews). */
export async function encodeJpeg(
  data: Uint8Array,
  width: number,
  height: number,
  quality = 90,
): Promise<Uint8Array> {
  const sharp = await loadSharp();
  const b = await sharp(data, { raw: { width, height, channels: 3 } }).jpeg({ quality })
    .toBuffer();
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

/**
 * Re-encodes an image as a JPEG (quality 90) whose shorter side is `side` (aspect kept, EXIF
 * orientation applied), for compact training shards. `name` is for errors.
 *
 * @example
 * ```ts
 * import { decodeImage, resizeShorterSide } from "@collapse/collapse/data";
 *
 * const jpegBytes = await Deno.readFile("image.jpg");
 * const small = await resizeShorterSide(jpegBytes, 32, "image.jpg");
 * const { width, height } = await decodeImage(small);
 * console.log(width, height); // the shorter side is 32, the aspect ratio kept
 * ```
 */
export async function resizeShorterSide(
  bytes: Uint8Array,
  side: number,
  name = "image",
): Promise<Uint8Array> {
  const sharp = await loadSharp();
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
