/**
 * The on-disk shard format: a folder of compressed shard files plus `manifest.json`.
 *
 * ```
 * DIR/manifest.json        written last; its presence means the folder is complete
 * DIR/shard-00000.bin ...  one file per group of `recordsPerShard` consecutive records
 * ```
 *
 * **manifest.json** ({@link ShardManifest}): `format` = "collapse-shards", `version` = 1, `kind`
 * ("raw": every record is one H x W x C uint8 HWC image of the fixed `shape`; "encoded": every record
 * is the bytes of an encoded image file (JPEG/PNG) of any length, `shape` is null or a nominal shape),
 * `numClasses`, `classNames`, `total` records, `classCounts` per class, `compression` ("deflate"),
 * and `shards`: per file {`file`, `records`, `firstIndex` (global index of its first record),
 * `bytes` (file size), `crc32` (CRC-32 of the whole file, unsigned)}.
 *
 * **Shard file** (all integers little-endian):
 * ```
 * 0   4 bytes  magic "CLSH"
 * 4   u32      format version (1)
 * 8   u32      kind (0 = raw, 1 = encoded)
 * 12  u32      n, records in this shard
 * 16  u32      payload size uncompressed (sum of record lengths)
 * 20  u32      payload size compressed
 * 24  u32      reserved (0)
 * 28  u32      reserved (0)
 * 32  i32[n]   labels
 * ..  u32[n]   record lengths in bytes, uncompressed
 * ..  u32[n]   record lengths in bytes, compressed
 * ..  u32[n]   CRC-32 of each uncompressed record
 * 32+16n       payload: each record compressed on its own as raw DEFLATE (RFC 1951, fflate),
 *              concatenated in order (record i starts at the sum of the compressed lengths before it)
 * ```
 * The index is uncompressed, so labels are read without inflating, and each record compressed on
 * its own, so one record is read by seeking (random access with bounded memory, no shard thrashing)
 * at little cost in ratio (DEFLATE's window is 32 KiB anyway). Encoded (JPEG) records are stored
 * with level 0 by default: they do not compress. Readers check the file size and CRC-32 against the
 * manifest when reading whole shards, and each record's CRC-32 after inflating, and throw an Error
 * naming the file and the record on any mismatch or truncation.
 * @module
 */

/** Name of the manifest file inside a shard folder. */
export const MANIFEST_FILE = "manifest.json";
/** Value of the manifest's `format` field. */
export const SHARD_FORMAT = "collapse-shards";
/** Current format version (manifest and shard header). */
export const SHARD_VERSION = 1;
/** Shard file magic bytes. */
export const SHARD_MAGIC = "CLSH";
/** Fixed header size of a shard file, in bytes. */
export const HEADER_BYTES = 32;

/** What a record holds. */
export type ShardKind = "raw" | "encoded";

/** One shard file as listed in the manifest. */
export interface ShardEntry {
  /** The shard's file name in the folder. */
  file: string;
  /** Records in the shard. */
  records: number;
  /** Global index of the shard's first record. */
  firstIndex: number;
  /** Size of the shard file in bytes. */
  bytes: number;
  /** CRC-32 of the shard file. */
  crc32: number;
}

/** Contents of `manifest.json`. */
export interface ShardManifest {
  /** The format's identifier. */
  format: typeof SHARD_FORMAT;
  /** The format version. */
  version: number;
  /** What the records hold: raw pixels or encoded image files. */
  kind: ShardKind;
  /** [height, width, channels] of every record (raw) or a nominal shape / null (encoded). */
  shape: [number, number, number] | null;
  /** Number of classes. */
  numClasses: number;
  /** Class names, if known. */
  classNames?: string[];
  /** Records in the whole folder. */
  total: number;
  /** Records per class. */
  classCounts: number[];
  /** How records are compressed. */
  compression: "deflate";
  /** The shard files, in record order. */
  shards: ShardEntry[];
  /** Free-form provenance (dataset, split, source archive...). */
  meta?: Record<string, unknown>;
}

/** Decoded fixed header of a shard file. */
export interface ShardHeader {
  /** The format version. */
  version: number;
  /** What the records hold. */
  kind: ShardKind;
  /** Records in the shard. */
  records: number;
  /** Uncompressed bytes of all records. */
  rawBytes: number;
  /** Compressed bytes of all records. */
  compressedBytes: number;
}

/** Size of header + index for n records. */
export function indexBytes(n: number): number {
  return HEADER_BYTES + 16 * n;
}

/** Shard file name for shard number i. */
export function shardFileName(i: number): string {
  return `shard-${String(i).padStart(5, "0")}.bin`;
}

/** Encodes header + index into a new buffer of {@link indexBytes}(n) bytes. */
export function encodeIndex(
  kind: ShardKind,
  labels: ArrayLike<number>,
  lengths: ArrayLike<number>,
  clengths: ArrayLike<number>,
  crcs: ArrayLike<number>,
  rawBytes: number,
  compressedBytes: number,
): Uint8Array {
  const n = labels.length;
  const buf = new Uint8Array(indexBytes(n));
  const dv = new DataView(buf.buffer);
  buf.set(new TextEncoder().encode(SHARD_MAGIC), 0);
  dv.setUint32(4, SHARD_VERSION, true);
  dv.setUint32(8, kind === "raw" ? 0 : 1, true);
  dv.setUint32(12, n, true);
  dv.setUint32(16, rawBytes, true);
  dv.setUint32(20, compressedBytes, true);
  for (let i = 0; i < n; i++) {
    dv.setInt32(HEADER_BYTES + 4 * i, labels[i], true);
    dv.setUint32(HEADER_BYTES + 4 * n + 4 * i, lengths[i], true);
    dv.setUint32(HEADER_BYTES + 8 * n + 4 * i, clengths[i], true);
    dv.setUint32(HEADER_BYTES + 12 * n + 4 * i, crcs[i], true);
  }
  return buf;
}

/** Parses the fixed header; `file` names the file in errors. */
export function decodeHeader(bytes: Uint8Array, file: string): ShardHeader {
  if (bytes.length < HEADER_BYTES) {
    throw new Error(`shard ${file}: truncated header (${bytes.length} of ${HEADER_BYTES} bytes)`);
  }
  const magic = String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3]);
  if (magic !== SHARD_MAGIC) throw new Error(`shard ${file}: bad magic "${magic}", not a shard`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint32(4, true);
  if (version !== SHARD_VERSION) throw new Error(`shard ${file}: unsupported version ${version}`);
  const k = dv.getUint32(8, true);
  if (k > 1) throw new Error(`shard ${file}: bad kind ${k}`);
  return {
    version,
    kind: k === 0 ? "raw" : "encoded",
    records: dv.getUint32(12, true),
    rawBytes: dv.getUint32(16, true),
    compressedBytes: dv.getUint32(20, true),
  };
}

/** The decoded index of a shard file. */
export interface ShardIndex {
  /** The label of each record. */
  labels: Int32Array;
  /** Uncompressed record lengths. */
  lengths: Uint32Array;
  /** Compressed record lengths. */
  clengths: Uint32Array;
  /** CRC-32 of each uncompressed record. */
  crcs: Uint32Array;
  /** File offset of each compressed record, plus the end of the last (n + 1 entries). */
  offsets: Float64Array;
}

/** The index arrays of a shard (bytes must hold at least indexBytes(n)). */
export function decodeIndex(
  bytes: Uint8Array,
  n: number,
): ShardIndex {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const labels = new Int32Array(n), lengths = new Uint32Array(n);
  const clengths = new Uint32Array(n), crcs = new Uint32Array(n);
  const offsets = new Float64Array(n + 1);
  offsets[0] = indexBytes(n);
  for (let i = 0; i < n; i++) {
    labels[i] = dv.getInt32(HEADER_BYTES + 4 * i, true);
    lengths[i] = dv.getUint32(HEADER_BYTES + 4 * n + 4 * i, true);
    clengths[i] = dv.getUint32(HEADER_BYTES + 8 * n + 4 * i, true);
    crcs[i] = dv.getUint32(HEADER_BYTES + 12 * n + 4 * i, true);
    offsets[i + 1] = offsets[i] + clengths[i];
  }
  return { labels, lengths, clengths, crcs, offsets };
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256 * 4);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    for (let s = 1; s < 4; s++) {
      t[s * 256 + n] = (t[(s - 1) * 256 + n] >>> 8) ^ t[t[(s - 1) * 256 + n] & 255];
    }
  }
  return t;
})();

/** CRC-32 (IEEE, as in zlib/gzip) of `data`, unsigned; pass a previous result to continue it. */
export function crc32(data: Uint8Array, previous = 0): number {
  const t = CRC_TABLE;
  let c = ~previous;
  let i = 0;
  const n = data.length, n4 = n - (n % 4);
  for (; i < n4; i += 4) {
    c ^= data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
    c = t[768 + (c & 255)] ^ t[512 + ((c >>> 8) & 255)] ^ t[256 + ((c >>> 16) & 255)] ^ t[c >>> 24];
  }
  for (; i < n; i++) c = t[(c ^ data[i]) & 255] ^ (c >>> 8);
  return ~c >>> 0;
}
