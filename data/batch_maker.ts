/**
 * Random-access image sources and batch assembly, shared by the loader (inline mode) and its worker:
 * gathers the images of one batch (in memory, raw shards, or JPEG shards decoded with sharp),
 * augments each into a float32 NHWC buffer and returns a {@link Batch}. Augmentation randomness is
 * seeded by (seed, epoch, batch number), so a batch is identical whichever thread makes it.
 * @module
 */

import { decodeImage as decodeRgb } from "./formats/jpeg.ts";
import type { Batch, ImageArray } from "./types.ts";
import { Rng } from "../gpu/rng.ts";
import { type Augmenter, type AugmentSpec, makeAugmenter } from "./augment.ts";
import { mixSeed } from "./samplers.ts";
import { ShardReader } from "./shards/reader.ts";

/**
 * Serialisable description of a source (what the loader sends its worker). A memory source is an
 * {@link ImageArray} without class names, whose `images` may be backed by a SharedArrayBuffer to
 * share with a worker without copying.
 */
export type SourceSpec =
  | ({ kind: "memory" } & Omit<ImageArray, "classNames">)
  | { kind: "shards"; dir: string; cacheShards?: number };

/** A decoded image (uint8 HWC). */
export interface RawImage {
  /** H*W*C bytes, row-major, channels last. */
  data: Uint8Array;
  /** Rows. */
  height: number;
  /** Columns. */
  width: number;
  /** Channels (3 for RGB). */
  channels: number;
}

/** Random access to the images and labels of a dataset. */
export interface ImageSource {
  /** Number of images. */
  readonly length: number;
  /** The label of every image, in index order. */
  readonly labels: Int32Array;
  /** Number of classes. */
  readonly numClasses: number;
  /** Images at `indices[start..end)`, decoded. */
  images(indices: Int32Array, start: number, end: number): Promise<RawImage[]> | RawImage[];
}

/** In-memory source over an ImageArray. */
export class MemorySource implements ImageSource {
  /** Number of images. */
  readonly length: number;
  /** The label of every image, in index order. */
  readonly labels: Int32Array;
  /** Number of classes. */
  readonly numClasses: number;
  /** The images and labels served. */
  readonly array: ImageArray;
  /** Bytes per image (H*W*C). */
  readonly stride: number;

  /** A source over `array` (checks that its byte count matches its shape). */
  constructor(array: ImageArray) {
    this.array = array;
    this.labels = array.labels;
    this.length = array.labels.length;
    this.numClasses = array.numClasses;
    this.stride = array.height * array.width * array.channels;
    if (array.images.length !== this.length * this.stride) {
      throw new Error(
        `MemorySource: ${array.images.length} bytes for ${this.length} images of ${this.stride} bytes`,
      );
    }
  }

  images(indices: Int32Array, start: number, end: number): RawImage[] {
    const a = this.array, out: RawImage[] = [];
    for (let i = start; i < end; i++) {
      const j = indices[i];
      out.push({
        data: a.images.subarray(j * this.stride, (j + 1) * this.stride),
        height: a.height,
        width: a.width,
        channels: a.channels,
      });
    }
    return out;
  }
}

/** Decodes an encoded image (JPEG, PNG...) to uint8 RGB HWC with sharp. `name` is for errors. */
export async function decodeImage(bytes: Uint8Array, name: string): Promise<RawImage> {
  const { data, width, height } = await decodeRgb(bytes, name);
  return { data, height, width, channels: 3 };
}

/** A shard folder source: raw records of the manifest's shape, or encoded images decoded by sharp. */
export class ShardSource implements ImageSource {
  /** The shard folder's reader. */
  readonly reader: ShardReader;
  /** Number of records. */
  readonly length: number;
  /** The label of every record, in index order. */
  readonly labels: Int32Array;
  /** Number of classes (from the manifest). */
  readonly numClasses: number;

  /** A source over an open shard reader. */
  constructor(reader: ShardReader) {
    this.reader = reader;
    this.length = reader.length;
    this.labels = reader.labels;
    this.numClasses = reader.manifest.numClasses;
  }

  /** Opens the shard folder `dir`, caching up to `cacheShards` decompressed shards. */
  static async open(dir: string, cacheShards = 4): Promise<ShardSource> {
    return new ShardSource(await ShardReader.open(dir, { cacheShards }));
  }

  async images(indices: Int32Array, start: number, end: number): Promise<RawImage[]> {
    const m = this.reader.manifest;
    const recs = [];
    // Sequential reads keep the shard cache effective; decoding then runs concurrently (libvips pool).
    for (let i = start; i < end; i++) {
      const r = await this.reader.get(indices[i]);
      recs.push(r.data);
    }
    if (m.kind === "raw") {
      const [h, w, c] = m.shape!;
      return recs.map((data) => ({ data, height: h, width: w, channels: c }));
    }
    return await Promise.all(
      recs.map((bytes, k) => decodeImage(bytes, `${this.reader.dir} record ${indices[start + k]}`)),
    );
  }
}

/** Builds a source from its spec. */
export async function openSource(spec: SourceSpec): Promise<ImageSource> {
  if (spec.kind === "memory") return new MemorySource(spec);
  return await ShardSource.open(spec.dir, spec.cacheShards);
}

/** Makes augmented batches from a source. */
export class BatchMaker {
  /** Where the images come from. */
  readonly source: ImageSource;
  /** The augmentation applied to every image. */
  readonly augmenter: Augmenter;
  /** The seed of the per-image augmentation randomness. */
  readonly seed: number;

  /** Batches of `source` augmented by `augment`, with randomness from `seed`. */
  constructor(source: ImageSource, augment: AugmentSpec, seed: number) {
    this.source = source;
    this.augmenter = makeAugmenter(augment);
    this.seed = seed;
  }

  /**
   * Batch number `batchNo` of an epoch: the images at indices[start..start+count).
   * `out` may supply a reusable image buffer of the right size.
   */
  async make(
    indices: Int32Array,
    start: number,
    count: number,
    epoch: number,
    batchNo: number,
    out?: Float32Array,
  ): Promise<Batch> {
    const imgs = await this.source.images(indices, start, start + count);
    const first = imgs[0];
    const [oh, ow, oc] = this.augmenter.outputShape(first.height, first.width, first.channels);
    const per = oh * ow * oc;
    const images = out && out.length === count * per ? out : new Float32Array(count * per);
    const labels = new Int32Array(count);
    const rng = new Rng(mixSeed(this.seed, 0xba7c, epoch, batchNo));
    for (let k = 0; k < count; k++) {
      const im = imgs[k];
      const [h2, w2, c2] = this.augmenter.outputShape(im.height, im.width, im.channels);
      if (h2 !== oh || w2 !== ow || c2 !== oc) {
        throw new Error(
          `batch ${batchNo}: image ${indices[start + k]} augments to ${h2}x${w2}x${c2}, ` +
            `not ${oh}x${ow}x${oc} (use a cropping augmentation for images of varying size)`,
        );
      }
      this.augmenter.apply(im.data, im.height, im.width, im.channels, images, k * per, rng);
      labels[k] = this.source.labels[indices[start + k]];
    }
    return { images, labels, shape: [count, oh, ow, oc] };
  }
}
