/**
 * Record types shared by the dataset readers, the shard format and the loader.
 *
 * Images are always channels-last (HWC, NHWC for batches), uint8 RGB, as stored on disk.
 * @module
 */

/** A whole split of a small dataset held in memory: N images of H x W x C uint8 pixels (HWC). */
export interface ImageArray {
  /** N*H*W*C bytes, image-major, then row, column, channel (NHWC). */
  images: Uint8Array;
  /** N labels in [0, numClasses). */
  labels: Int32Array;
  /** Image height in pixels. */
  height: number;
  /** Image width in pixels. */
  width: number;
  /** Channels per pixel (3 for RGB). */
  channels: number;
  /** Number of classes. */
  numClasses: number;
  /** Class names, index = label. */
  classNames?: string[];
}

/** One encoded (e.g. JPEG) image with its label, as streamed from large datasets (CUB, ImageNet). */
export interface EncodedImage {
  /** The image's class. */
  label: number;
  /** The file's bytes as found in the archive (JPEG). */
  bytes: Uint8Array;
  /** Path or name of the image inside its archive/folder, for error messages. */
  name: string;
}

/** A loader batch ready for upload: float32 NHWC images (normalised) and int32 labels. */
export interface Batch {
  /** batch*H*W*C normalised values (NHWC). */
  images: Float32Array;
  /** The label of each image. */
  labels: Int32Array;
  /** [batch, height, width, channels] */
  shape: [number, number, number, number];
}
