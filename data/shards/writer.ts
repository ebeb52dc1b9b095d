/**
 * Writes a dataset as compressed shards (see ./format.ts), atomically: everything goes into a
 * temporary sibling folder, the manifest last, and the folder is renamed into place at the end, so a
 * crash never leaves a folder that looks complete.
 * @module
 */

import { deflateSync } from "npm:fflate@^0.8.2";
import { pathExists } from "../path_exists.ts";
import type { ImageArray } from "../types.ts";
import {
  crc32,
  encodeIndex,
  MANIFEST_FILE,
  SHARD_FORMAT,
  SHARD_VERSION,
  type ShardEntry,
  shardFileName,
  type ShardKind,
  type ShardManifest,
} from "./format.ts";

/** One record to write: a label and its bytes (HWC pixels for "raw", a file's bytes for "encoded"). */
export interface ShardRecord {
  /** The record's class. */
  label: number;
  /** The record's bytes. */
  data: Uint8Array;
}

/** Options of {@link writeShards}. */
export interface WriteShardsOptions {
  /** What the records hold: "raw" pixels or "encoded" image files. */
  kind: ShardKind;
  /** [height, width, channels]: required for "raw" (every record must have h*w*c bytes). */
  shape?: [number, number, number] | null;
  /** Records per shard file (default: 10,000 raw, 1,000 encoded). */
  recordsPerShard?: number;
  /** Number of classes. */
  numClasses: number;
  /** Class names, stored in the manifest. */
  classNames?: string[];
  /** DEFLATE level 0-9 (default 6 raw, 0 = stored for encoded: JPEG bytes do not compress). */
  level?: number;
  /** Replace `dir` if it exists (default false: throw). */
  overwrite?: boolean;
  /** Free-form provenance stored in the manifest. */
  meta?: Record<string, unknown>;
}

/**
 * Writes `records` (any iterable/async iterable of {label, data}, or an ImageArray) as shards in `dir`
 * and returns the manifest.
 *
 * @example
 * ```ts
 * import { writeShards } from "./writer.ts";
 * import { loadShardsToMemory } from "./reader.ts";
 * import { syntheticDataset } from "../synthetic.ts";
 * const { test } = syntheticDataset({ testPerClass: 20 });
 * const dir = await Deno.makeTempDir();
 * await writeShards(`${dir}/test`, test, { kind: "raw", numClasses: 10, recordsPerShard: 64 });
 * const back = await loadShardsToMemory(`${dir}/test`);
 * console.log(back.labels.length); // 200
 * ```
 */
export async function writeShards(
  dir: string,
  records: AsyncIterable<ShardRecord> | Iterable<ShardRecord> | ImageArray,
  opts: WriteShardsOptions,
): Promise<ShardManifest> {
  let shape = opts.shape ?? null;
  let source: AsyncIterable<ShardRecord> | Iterable<ShardRecord>;
  const fromArray = isImageArray(records);
  if (isImageArray(records)) {
    const arrShape: [number, number, number] = [records.height, records.width, records.channels];
    if (shape && shape.join() !== arrShape.join()) {
      throw new Error(`writeShards: shape ${shape} differs from the ImageArray's ${arrShape}`);
    }
    shape = arrShape;
    source = imageArrayRecords(records);
  } else {
    source = records;
  }
  if (opts.kind === "raw" && !shape) throw new Error("writeShards: kind 'raw' needs a shape");
  const recordBytes = opts.kind === "raw" ? shape![0] * shape![1] * shape![2] : -1;
  const perShard = opts.recordsPerShard ?? (opts.kind === "raw" ? 10000 : 1000);
  if (!(perShard > 0)) throw new Error(`writeShards: bad recordsPerShard ${perShard}`);
  const level = (opts.level ?? (opts.kind === "raw" ? 6 : 0)) as
    | 0
    | 1
    | 2
    | 3
    | 4
    | 5
    | 6
    | 7
    | 8
    | 9;
  const k = opts.numClasses;

  if (await pathExists(dir, { lstat: true })) {
    if (!opts.overwrite) throw new Error(`writeShards: ${dir} exists (pass overwrite: true)`);
  }
  const tmp = `${dir}.tmp-${Deno.pid}-${Date.now().toString(36)}`;
  await Deno.mkdir(tmp, { recursive: true });
  try {
    const shards: ShardEntry[] = [];
    const classCounts = new Array<number>(k).fill(0);
    let pending: ShardRecord[] = [];
    let total = 0;
    const flush = async () => {
      if (pending.length === 0) return;
      const file = shardFileName(shards.length);
      const bytes = encodeShard(opts.kind, pending, level);
      await Deno.writeFile(`${tmp}/${file}`, bytes);
      shards.push({
        file,
        records: pending.length,
        firstIndex: total - pending.length,
        bytes: bytes.length,
        crc32: crc32(bytes),
      });
      pending = [];
    };
    for await (const r of source) {
      if (!(Number.isInteger(r.label) && r.label >= 0 && r.label < k)) {
        throw new Error(`writeShards: record ${total} has label ${r.label} outside [0, ${k})`);
      }
      if (recordBytes >= 0 && r.data.length !== recordBytes) {
        throw new Error(
          `writeShards: record ${total} has ${r.data.length} bytes, shape ${shape} needs ${recordBytes}`,
        );
      }
      // Copied unless it is a view of an ImageArray: a streaming source may reuse its buffer.
      pending.push({ label: r.label, data: fromArray ? r.data : r.data.slice() });
      classCounts[r.label]++;
      total++;
      if (pending.length >= perShard) await flush();
    }
    await flush();
    const manifest: ShardManifest = {
      format: SHARD_FORMAT,
      version: SHARD_VERSION,
      kind: opts.kind,
      shape,
      numClasses: k,
      ...(opts.classNames ? { classNames: opts.classNames } : {}),
      total,
      classCounts,
      compression: "deflate",
      shards,
      ...(opts.meta ? { meta: opts.meta } : {}),
    };
    await Deno.writeTextFile(`${tmp}/${MANIFEST_FILE}`, JSON.stringify(manifest, null, 1) + "\n");
    if (await pathExists(dir, { lstat: true })) await Deno.remove(dir, { recursive: true });
    await Deno.rename(tmp, dir);
    return manifest;
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
}

/** Encodes one shard file: header + index + per-record DEFLATE payload. */
export function encodeShard(
  kind: ShardKind,
  records: readonly ShardRecord[],
  level: 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 = 6,
): Uint8Array {
  const n = records.length;
  const labels = new Int32Array(n), lengths = new Uint32Array(n);
  const clengths = new Uint32Array(n), crcs = new Uint32Array(n);
  const parts: Uint8Array[] = [];
  let raw = 0, packed = 0;
  for (let i = 0; i < n; i++) {
    const d = records[i].data;
    const z = deflateSync(d, { level });
    parts.push(z);
    labels[i] = records[i].label;
    lengths[i] = d.length;
    clengths[i] = z.length;
    crcs[i] = crc32(d);
    raw += d.length;
    packed += z.length;
  }
  if (raw > 0xffffffff || packed > 0xffffffff) throw new Error(`shard payload exceeds 4 GiB`);
  const index = encodeIndex(kind, labels, lengths, clengths, crcs, raw, packed);
  const out = new Uint8Array(index.length + packed);
  out.set(index, 0);
  let off = index.length;
  for (const z of parts) {
    out.set(z, off);
    off += z.length;
  }
  return out;
}

function isImageArray(x: unknown): x is ImageArray {
  return typeof x === "object" && x !== null && (x as ImageArray).images instanceof Uint8Array &&
    (x as ImageArray).labels instanceof Int32Array;
}

function* imageArrayRecords(a: ImageArray): Iterable<ShardRecord> {
  const stride = a.height * a.width * a.channels;
  for (let i = 0; i < a.labels.length; i++) {
    yield { label: a.labels[i], data: a.images.subarray(i * stride, (i + 1) * stride) };
  }
}
