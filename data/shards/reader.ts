/**
 * Reads shard folders (see ./format.ts): the manifest, a streaming record iterator that holds one
 * decompressed shard at a time, random access by global index (one seek + read + inflate per record,
 * with a small LRU cache of shard indexes), and loading a whole raw dataset into an ImageArray.
 * Whole shards are checked against the manifest (size, CRC-32) and every record against its CRC-32;
 * a truncated or corrupted shard throws an Error naming the file and the record.
 * @module
 */

import { inflateSync } from "npm:fflate@^0.8.2";
import type { ImageArray } from "../types.ts";
import {
  crc32,
  decodeHeader,
  decodeIndex,
  indexBytes,
  MANIFEST_FILE,
  SHARD_FORMAT,
  type ShardEntry,
  type ShardIndex,
  type ShardManifest,
} from "./format.ts";

/** Reads and validates `DIR/manifest.json`. */
export async function readManifest(dir: string): Promise<ShardManifest> {
  const path = `${dir}/${MANIFEST_FILE}`;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`shards: ${path} not found (not a shard folder, or an unfinished write)`);
    }
    throw e;
  }
  const m = JSON.parse(text) as ShardManifest;
  if (m.format !== SHARD_FORMAT) {
    throw new Error(`shards: ${path} is not a ${SHARD_FORMAT} manifest`);
  }
  if (m.version !== 1) throw new Error(`shards: ${path} has unsupported version ${m.version}`);
  let next = 0;
  for (const s of m.shards) {
    if (s.firstIndex !== next) {
      throw new Error(`shards: ${path}: ${s.file} firstIndex ${s.firstIndex}, expected ${next}`);
    }
    next += s.records;
  }
  if (next !== m.total) {
    throw new Error(`shards: ${path}: shards hold ${next} records, total says ${m.total}`);
  }
  return m;
}

/** One decoded shard: labels and the records inflated into one buffer. */
export interface DecodedShard {
  entry: ShardEntry;
  labels: Int32Array;
  /** Byte offset of each record in `data`, plus the end (records + 1 entries). */
  offsets: Float64Array;
  data: Uint8Array;
}

/** Inflates record i (compressed bytes `z`) and checks it; `where` names the file. */
export function inflateRecord(
  z: Uint8Array,
  index: ShardIndex,
  i: number,
  firstIndex: number,
  where: string,
  out?: Uint8Array,
): Uint8Array {
  const g = firstIndex + i;
  if (z.length < index.clengths[i]) {
    throw new Error(
      `shard ${where}: record ${i} (global index ${g}) truncated (${z.length} of ${
        index.clengths[i]
      } compressed bytes)`,
    );
  }
  let data: Uint8Array;
  try {
    data = inflateSync(z, out ? { out } : undefined);
  } catch (e) {
    throw new Error(
      `shard ${where}: record ${i} (global index ${g}) corrupted (${(e as Error).message})`,
    );
  }
  if (data.length !== index.lengths[i] || crc32(data) !== index.crcs[i]) {
    throw new Error(
      `shard ${where}: record ${i} (global index ${g}) corrupted (CRC-32/length mismatch)`,
    );
  }
  return data;
}

/** Header + index of a shard file's bytes, checked against the manifest entry. */
function parseIndex(bytes: Uint8Array, entry: ShardEntry, where: string): ShardIndex {
  const header = decodeHeader(bytes, where);
  const n = header.records;
  if (n !== entry.records) {
    throw new Error(`shard ${where}: header says ${n} records, manifest ${entry.records}`);
  }
  if (bytes.length < indexBytes(n)) {
    throw new Error(
      `shard ${where}: truncated index (${bytes.length} bytes); records ${entry.firstIndex}..${
        entry.firstIndex + n - 1
      } unreadable`,
    );
  }
  return decodeIndex(bytes, n);
}

/**
 * Checks and decodes a whole shard file's bytes. `where` names the file in errors (e.g. its path).
 * Throws on truncation or corruption, naming the file and the first bad record.
 */
export function decodeShard(bytes: Uint8Array, entry: ShardEntry, where: string): DecodedShard {
  const index = parseIndex(bytes, entry, where);
  const n = entry.records;
  const fileOk = bytes.length === entry.bytes && crc32(bytes) === entry.crc32;
  const offsets = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) offsets[i + 1] = offsets[i] + index.lengths[i];
  const data = new Uint8Array(offsets[n]);
  for (let i = 0; i < n; i++) {
    if (index.offsets[i + 1] > bytes.length) {
      throw new Error(
        `shard ${where}: record ${i} (global index ${entry.firstIndex + i}) is missing: ` +
          `file truncated (${bytes.length} of ${entry.bytes} bytes)`,
      );
    }
    const z = bytes.subarray(index.offsets[i], index.offsets[i + 1]);
    const rec = data.subarray(offsets[i], offsets[i + 1]);
    const got = inflateRecord(z, index, i, entry.firstIndex, where, rec);
    if (got.buffer !== data.buffer) rec.set(got);
  }
  if (!fileOk) {
    const why = bytes.length !== entry.bytes
      ? `size ${bytes.length}, manifest says ${entry.bytes}`
      : "CRC-32 differs from the manifest's";
    throw new Error(
      `shard ${where}: file corrupted (${why}); records ${entry.firstIndex}..${
        entry.firstIndex + n - 1
      } suspect`,
    );
  }
  return { entry, labels: index.labels, offsets, data };
}

/** Reads and checks shard `i` of the folder. */
export async function readShard(
  dir: string,
  manifest: ShardManifest,
  i: number,
): Promise<DecodedShard> {
  const entry = manifest.shards[i];
  const path = `${dir}/${entry.file}`;
  return decodeShard(await readFileNamed(path, entry), entry, path);
}

async function readFileNamed(path: string, entry: ShardEntry): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    throw new Error(
      `shard ${path}: cannot read (${(e as Error).message}); records ${entry.firstIndex}..${
        entry.firstIndex + entry.records - 1
      } unavailable`,
    );
  }
}

/** A record with its global index. */
export interface IndexedRecord {
  index: number;
  label: number;
  data: Uint8Array;
}

/**
 * Streams every record in order, holding one decompressed shard at a time. The `data` views are
 * valid until the next shard is loaded: copy them to keep them.
 *
 * @example
 * ```ts
 * import { streamShards } from "./reader.ts";
 * import { writeShards } from "./writer.ts";
 * import { syntheticDataset } from "../synthetic.ts";
 * const dir = `${await Deno.makeTempDir()}/test`;
 * await writeShards(dir, syntheticDataset({ testPerClass: 20 }).test, { kind: "raw", numClasses: 10 });
 * for await (const { index, label, data } of streamShards(dir)) {
 *   console.log(index, label, data.length);
 * }
 * ```
 */
export async function* streamShards(dir: string): AsyncGenerator<IndexedRecord> {
  const manifest = await readManifest(dir);
  for (let s = 0; s < manifest.shards.length; s++) {
    const shard = await readShard(dir, manifest, s);
    for (let i = 0; i < shard.labels.length; i++) {
      yield {
        index: shard.entry.firstIndex + i,
        label: shard.labels[i],
        data: shard.data.subarray(shard.offsets[i], shard.offsets[i + 1]),
      };
    }
  }
}

/** Reads `len` bytes at `pos` of an open file (fewer at end of file). */
async function readAt(f: Deno.FsFile, pos: number, len: number): Promise<Uint8Array> {
  await f.seek(pos, Deno.SeekMode.Start);
  const buf = new Uint8Array(len);
  let got = 0;
  while (got < len) {
    const r = await f.read(buf.subarray(got));
    if (r === null) break;
    got += r;
  }
  return buf.subarray(0, got);
}

/** Reads and checks the header + index of one shard file (not its payload). */
export async function readShardIndex(path: string, entry: ShardEntry): Promise<ShardIndex> {
  const f = await Deno.open(path);
  try {
    const buf = await readAt(f, 0, indexBytes(entry.records));
    return parseIndex(buf, entry, path);
  } finally {
    f.close();
  }
}

/** All labels of a shard folder, read from the uncompressed shard indexes (no inflating). */
export async function readShardLabels(dir: string, manifest?: ShardManifest): Promise<Int32Array> {
  const m = manifest ?? await readManifest(dir);
  const out = new Int32Array(m.total);
  for (const entry of m.shards) {
    out.set((await readShardIndex(`${dir}/${entry.file}`, entry)).labels, entry.firstIndex);
  }
  return out;
}

/**
 * Random access to the records of a shard folder by global index: each `get` seeks to the record,
 * reads its compressed bytes and inflates and checks them, so memory stays bounded whatever the
 * access order. Shard indexes are kept in a small LRU cache.
 *
 * @example
 * ```ts
 * import { ShardReader } from "./reader.ts";
 * import { writeShards } from "./writer.ts";
 * import { syntheticDataset } from "../synthetic.ts";
 * const dir = `${await Deno.makeTempDir()}/test`;
 * await writeShards(dir, syntheticDataset({ testPerClass: 20 }).test, { kind: "raw", numClasses: 10 });
 * const reader = await ShardReader.open(dir);
 * const { label, data } = await reader.get(123);
 * console.log(label, data.length);
 * ```
 */
export class ShardReader {
  readonly dir: string;
  readonly manifest: ShardManifest;
  readonly labels: Int32Array;
  #cacheShards: number;
  #indexes = new Map<number, Promise<ShardIndex>>();

  private constructor(dir: string, manifest: ShardManifest, labels: Int32Array, cache: number) {
    this.dir = dir;
    this.manifest = manifest;
    this.labels = labels;
    this.#cacheShards = Math.max(1, cache);
  }

  /** Opens a folder: reads the manifest and the labels (not the payloads). */
  static async open(dir: string, opts: { cacheShards?: number } = {}): Promise<ShardReader> {
    const manifest = await readManifest(dir);
    const labels = await readShardLabels(dir, manifest);
    return new ShardReader(dir, manifest, labels, opts.cacheShards ?? 64);
  }

  /** Number of records. */
  get length(): number {
    return this.manifest.total;
  }

  /** Shard number holding global index i. */
  shardOf(i: number): number {
    const s = this.manifest.shards;
    let lo = 0, hi = s.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (s[mid].firstIndex <= i) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  #index(s: number): Promise<ShardIndex> {
    let p = this.#indexes.get(s);
    if (p) {
      this.#indexes.delete(s); // re-insert: Map order is the LRU order
      this.#indexes.set(s, p);
      return p;
    }
    const entry = this.manifest.shards[s];
    p = readShardIndex(`${this.dir}/${entry.file}`, entry);
    p.catch(() => this.#indexes.delete(s));
    this.#indexes.set(s, p);
    while (this.#indexes.size > this.#cacheShards) {
      this.#indexes.delete(this.#indexes.keys().next().value!);
    }
    return p;
  }

  /** Record at global index i, inflated and checked. */
  async get(i: number): Promise<{ label: number; data: Uint8Array }> {
    if (!(Number.isInteger(i) && i >= 0 && i < this.length)) {
      throw new Error(`ShardReader: index ${i} outside [0, ${this.length})`);
    }
    const s = this.shardOf(i);
    const entry = this.manifest.shards[s];
    const index = await this.#index(s);
    const j = i - entry.firstIndex;
    const path = `${this.dir}/${entry.file}`;
    const f = await Deno.open(path);
    let z: Uint8Array;
    try {
      z = await readAt(f, index.offsets[j], index.clengths[j]);
    } finally {
      f.close();
    }
    return { label: index.labels[j], data: inflateRecord(z, index, j, entry.firstIndex, path) };
  }
}

/**
 * Loads a whole "raw" shard folder into one ImageArray (fine for 32x32 datasets).
 *
 * @example
 * ```ts
 * import { loadShardsToMemory } from "./reader.ts";
 * import { writeShards } from "./writer.ts";
 * import { syntheticDataset } from "../synthetic.ts";
 * const dir = `${await Deno.makeTempDir()}/test`;
 * await writeShards(dir, syntheticDataset({ testPerClass: 20 }).test, { kind: "raw", numClasses: 10 });
 * const test = await loadShardsToMemory(dir);
 * console.log(test.labels.length, test.height, test.width); // 200 32 32
 * ```
 */
export async function loadShardsToMemory(dir: string): Promise<ImageArray> {
  const m = await readManifest(dir);
  if (m.kind !== "raw" || !m.shape) {
    throw new Error(`loadShardsToMemory: ${dir} holds "${m.kind}" records; only "raw" loads`);
  }
  const [h, w, c] = m.shape;
  const stride = h * w * c;
  const images = new Uint8Array(m.total * stride);
  const labels = new Int32Array(m.total);
  for (let s = 0; s < m.shards.length; s++) {
    const shard = await readShard(dir, m, s);
    const first = shard.entry.firstIndex;
    if (shard.data.length !== shard.labels.length * stride) {
      throw new Error(`shard ${dir}/${shard.entry.file}: records are not ${h}x${w}x${c}`);
    }
    images.set(shard.data, first * stride);
    labels.set(shard.labels, first);
  }
  return {
    images,
    labels,
    height: h,
    width: w,
    channels: c,
    numClasses: m.numClasses,
    ...(m.classNames ? { classNames: m.classNames } : {}),
  };
}

/**
 * Checks every shard file of a folder against its manifest (size and CRC-32 of the whole file),
 * streaming each file once. Returns the problems found (empty when the folder is intact); a
 * missing or unreadable manifest is a problem too.
 *
 * @example
 * ```ts
 * import { checkShardFolder } from "./reader.ts";
 * import { writeShards } from "./writer.ts";
 * import { syntheticDataset } from "../synthetic.ts";
 * const dir = `${await Deno.makeTempDir()}/test`;
 * await writeShards(dir, syntheticDataset({ testPerClass: 4 }).test, { kind: "raw", numClasses: 10 });
 * console.log(await checkShardFolder(dir)); // []
 * ```
 */
export async function checkShardFolder(dir: string): Promise<string[]> {
  let m: ShardManifest;
  try {
    m = await readManifest(dir);
  } catch (e) {
    return [(e as Error).message];
  }
  const problems: string[] = [];
  for (const entry of m.shards) {
    const path = `${dir}/${entry.file}`;
    let crc = 0, size = 0;
    try {
      const f = await Deno.open(path);
      for await (const chunk of f.readable) { // the stream closes the file at its end
        crc = crc32(chunk, crc);
        size += chunk.length;
      }
    } catch (e) {
      problems.push(`shard ${path}: cannot read (${(e as Error).message})`);
      continue;
    }
    if (size !== entry.bytes) {
      problems.push(`shard ${path}: ${size} bytes, the manifest says ${entry.bytes}`);
    } else if (crc !== entry.crc32) {
      problems.push(`shard ${path}: CRC-32 differs from the manifest's`);
    }
  }
  return problems;
}
