/**
 * The Hugging Face safetensors format, encoded and decoded exactly: an 8-byte little-endian header
 * length N, N bytes of JSON header (`{name: {dtype, shape, data_offsets: [begin, end]},
 * "__metadata__": {string: string}}`, padded with spaces to a multiple of 8), then every tensor's
 * little-endian bytes, contiguous. F16 and BF16 decode to Float32Array; I64 decodes to Int32Array
 * (range-checked) or BigInt64Array.
 *
 * Integrity: files written by {@linkcode writeSafetensorsFile} (or encoded with `checksum: true`)
 * carry the CRC-32 of their data section in `__metadata__` under {@linkcode CHECKSUM_KEY}; the
 * format is otherwise unchanged, so any safetensors reader (PyTorch's included) reads them.
 * Decoding verifies the checksum whenever a file has one.
 *
 * @module
 */

import { crc32 } from "node:zlib";
import { writeFileAtomic } from "./atomic_file.ts";

/**
 * `__metadata__` key of the data-section checksum: the CRC-32 (IEEE 802.3, as zlib and gzip) of
 * every byte after the header, as 8 lowercase hex digits.
 */
export const CHECKSUM_KEY = "data_crc32";

/** The element types this module reads and writes. */
export type SafetensorsDtype = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "U8";

/** Bytes per element of each supported dtype. */
export const DTYPE_SIZE: Readonly<Record<SafetensorsDtype, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  U8: 1,
};

/** Typed arrays accepted as tensor data by {@linkcode encodeSafetensors}. */
export type TensorData =
  | Float64Array
  | Float32Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint32Array
  | Uint16Array
  | Uint8Array
  | Uint8ClampedArray
  | BigInt64Array;

/**
 * One tensor to encode. `data` holds `product(shape)` elements. For F16/BF16, floating arrays
 * are rounded (to nearest even) and a Uint16Array is taken as raw half bits. For I64, a
 * BigInt64Array is written as is and other arrays must hold integers.
 */
export interface SafetensorsInput {
  dtype: SafetensorsDtype;
  shape: readonly number[];
  data: TensorData;
}

/** Decoded tensor data: F16/BF16 become Float32Array, I64 becomes Int32Array or BigInt64Array. */
export type DecodedData = Float64Array | Float32Array | Int32Array | Uint8Array | BigInt64Array;

/** One decoded tensor; `dtype` is the stored dtype (so re-encoding round-trips). */
export interface SafetensorsTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: DecodedData;
}

/** The result of {@linkcode decodeSafetensors}. */
export interface DecodedSafetensors {
  tensors: Record<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

/** Options of {@linkcode decodeSafetensors}. */
export interface DecodeOptions {
  /**
   * Verify the data checksum ({@linkcode CHECKSUM_KEY}) when the file has one (default true); a
   * mismatch throws {@linkcode SafetensorsChecksumError}.
   */
  verify?: boolean;
  /**
   * How to decode I64 tensors: `"int32"` (default) gives an Int32Array and throws, naming the
   * tensor, if a value is out of the int32 range; `"bigint"` gives a BigInt64Array.
   */
  int64?: "int32" | "bigint";
}

/** Options of {@linkcode encodeSafetensors} and {@linkcode writeSafetensorsFile}. */
export interface EncodeOptions {
  /**
   * Store the CRC-32 of the data section in `__metadata__` ({@linkcode CHECKSUM_KEY}).
   * Default: false for {@linkcode encodeSafetensors} (byte-identical to the reference writer),
   * true for {@linkcode writeSafetensorsFile}.
   */
  checksum?: boolean;
}

/** The data section of a safetensors file does not match the checksum in its header. */
export class SafetensorsChecksumError extends Error {
  /** Builds the error from the stored and the computed checksum. */
  constructor(readonly stored: string, readonly computed: string) {
    super(
      `safetensors: the tensor data does not match its checksum (${CHECKSUM_KEY} ${stored} in ` +
        `the header, ${computed} computed): the file is damaged`,
    );
    this.name = "SafetensorsChecksumError";
  }
}

function hex32(v: number): string {
  return (v >>> 0).toString(16).padStart(8, "0");
}

/**
 * The CRC-32 of a safetensors file's data section as stored under {@linkcode CHECKSUM_KEY}
 * (8 lowercase hex digits).
 */
export function dataChecksum(data: Uint8Array | readonly Uint8Array[]): string {
  let c = 0;
  for (const chunk of data instanceof Uint8Array ? [data] : data) c = crc32(chunk, c);
  return hex32(c);
}

/**
 * Checks the data section of a safetensors file against its stored checksum; no-op for a file
 * without one. Throws {@linkcode SafetensorsChecksumError} on a mismatch.
 */
export function verifySafetensorsChecksum(bytes: Uint8Array, header: SafetensorsHeader): void {
  const stored = header.metadata[CHECKSUM_KEY];
  if (stored === undefined) return;
  const computed = dataChecksum(bytes.subarray(header.dataStart));
  if (stored.toLowerCase() !== computed) throw new SafetensorsChecksumError(stored, computed);
}

/** One header entry, as stored. */
export interface SafetensorsHeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** A parsed and validated header: entries in file order and where the data section starts. */
export interface SafetensorsHeader {
  entries: Record<string, SafetensorsHeaderEntry>;
  metadata: Record<string, string>;
  /** Byte offset of the data section from the start of the file (8 + N). */
  dataStart: number;
}

/** Layout order of the reference writer: dtype (descending alignment order of its enum), then name. */
const WRITE_RANK: Readonly<Record<SafetensorsDtype, number>> = {
  I64: 0,
  F64: 1,
  F32: 2,
  I32: 3,
  BF16: 4,
  F16: 5,
  U8: 6,
};

const MAX_HEADER_BYTES = 100_000_000;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function assertLittleEndian(): void {
  if (!LITTLE_ENDIAN) throw new Error("safetensors: big-endian hosts are not supported");
}

function isDtype(s: unknown): s is SafetensorsDtype {
  return typeof s === "string" && Object.hasOwn(DTYPE_SIZE, s);
}

function elementCount(shape: readonly number[], name: string): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new Error(`safetensors: tensor "${name}" has an invalid shape [${shape.join(", ")}]`);
    }
    n *= d;
  }
  if (!Number.isSafeInteger(n)) {
    throw new Error(`safetensors: tensor "${name}" is too large`);
  }
  return n;
}

// ---------------------------------------------------------------- half-precision conversions

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Round a float to IEEE binary16 bits (round to nearest even; NaN stays NaN). */
export function floatToHalfBits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const e = (x >>> 23) & 0xff;
  let m = x & 0x7fffff;
  if (e === 0xff) return sign | 0x7c00 | (m !== 0 ? 0x200 | (m >>> 13) : 0);
  const he = e - 112; // half-biased exponent
  if (he >= 31) return sign | 0x7c00;
  if (he <= 0) {
    if (he < -10) return sign;
    m |= 0x800000;
    const shift = 14 - he;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (h & 1) === 1)) h++;
    return sign | h;
  }
  let h = (he << 10) | (m >>> 13);
  const rem = m & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++;
  return sign | (h >= 0x7c00 ? 0x7c00 : h);
}

/** Decode IEEE binary16 bits to a number. */
export function halfBitsToFloat(h: number): number {
  const sign = (h & 0x8000) << 16;
  let e = (h >>> 10) & 0x1f;
  let m = h & 0x3ff;
  if (e === 0) {
    if (m === 0) {
      u32[0] = sign;
      return f32[0];
    }
    e = 1;
    while ((m & 0x400) === 0) {
      m <<= 1;
      e--;
    }
    m &= 0x3ff;
    u32[0] = (sign | ((e + 112) << 23) | (m << 13)) >>> 0;
  } else if (e === 31) {
    u32[0] = (sign | 0x7f800000 | (m << 13)) >>> 0;
  } else {
    u32[0] = (sign | ((e + 112) << 23) | (m << 13)) >>> 0;
  }
  return f32[0];
}

/** Round a float to bfloat16 bits (round to nearest even; NaN stays NaN). */
export function floatToBf16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Decode bfloat16 bits to a number. */
export function bf16BitsToFloat(h: number): number {
  u32[0] = (h << 16) >>> 0;
  return f32[0];
}

// ---------------------------------------------------------------- encode

function toBytes(name: string, t: SafetensorsInput, n: number): Uint8Array {
  const { dtype, data } = t;
  if (data.length !== n) {
    throw new Error(
      `safetensors: tensor "${name}" has ${data.length} elements but shape ` +
        `[${t.shape.join(", ")}] needs ${n}`,
    );
  }
  const isBig = data instanceof BigInt64Array;
  if (isBig && dtype !== "I64") {
    throw new Error(`safetensors: tensor "${name}": BigInt64Array data needs dtype I64`);
  }
  const view = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const checkInts = (lo: number, hi: number) => {
    for (let i = 0; i < n; i++) {
      const v = data[i] as number;
      if (!Number.isInteger(v) || v < lo || v > hi) {
        throw new Error(
          `safetensors: tensor "${name}" (${dtype}) element ${i} = ${v} is not an integer in ` +
            `[${lo}, ${hi}]`,
        );
      }
    }
  };
  switch (dtype) {
    case "F32":
      return view(data instanceof Float32Array ? data : Float32Array.from(data as Float64Array));
    case "F64":
      return view(data instanceof Float64Array ? data : Float64Array.from(data as Float32Array));
    case "I32":
      if (data instanceof Int32Array) return view(data);
      checkInts(-2147483648, 2147483647);
      return view(Int32Array.from(data as Float64Array));
    case "U8":
      if (data instanceof Uint8Array) return view(data);
      checkInts(0, 255);
      return view(Uint8Array.from(data as Float64Array));
    case "I64": {
      if (isBig) return view(data);
      checkInts(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
      const out = new BigInt64Array(n);
      for (let i = 0; i < n; i++) out[i] = BigInt(data[i] as number);
      return view(out);
    }
    case "F16":
    case "BF16": {
      if (data instanceof Uint16Array) return view(data);
      const conv = dtype === "F16" ? floatToHalfBits : floatToBf16Bits;
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) out[i] = conv(data[i] as number);
      return view(out);
    }
  }
}

/**
 * Encode tensors (and optional string metadata) as a safetensors file, byte for byte as the
 * reference implementation writes it: compact JSON header with `__metadata__` first, tensors laid
 * out by dtype (largest alignment first) then name, so every tensor is aligned to its element
 * size.
 *
 * @example
 * ```ts
 * import { decodeSafetensors, encodeSafetensors } from "./safetensors.ts";
 * const bytes = encodeSafetensors(
 *   { "fc.weight": { dtype: "F32", shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) } },
 *   { format: "pt" },
 * );
 * const { tensors, metadata } = decodeSafetensors(bytes);
 * console.log(tensors["fc.weight"].data, metadata.format); // Float32Array [1, 2, 3, 4] "pt"
 * ```
 */
export function encodeSafetensors(
  tensors: Record<string, SafetensorsInput>,
  metadata?: Record<string, string>,
  options: EncodeOptions = {},
): Uint8Array<ArrayBuffer> {
  assertLittleEndian();
  const names = Object.keys(tensors);
  for (const name of names) {
    if (name === "__metadata__" || name.length === 0) {
      throw new Error(`safetensors: invalid tensor name "${name}"`);
    }
    const t = tensors[name];
    if (!t || !isDtype(t.dtype)) {
      throw new Error(`safetensors: tensor "${name}" has an unsupported dtype "${t?.dtype}"`);
    }
  }
  names.sort((a, b) => {
    const d = WRITE_RANK[tensors[a].dtype] - WRITE_RANK[tensors[b].dtype];
    return d !== 0 ? d : a < b ? -1 : a > b ? 1 : 0;
  });
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") {
        throw new Error(`safetensors: metadata "${k}" must be a string, got ${typeof v}`);
      }
    }
  }
  const chunks: Uint8Array[] = [];
  const entries: [string, unknown][] = [];
  let offset = 0;
  for (const name of names) {
    const t = tensors[name];
    const bytes = toBytes(name, t, elementCount(t.shape, name));
    entries.push([name, {
      dtype: t.dtype,
      shape: [...t.shape],
      data_offsets: [offset, offset + bytes.length],
    }]);
    chunks.push(bytes);
    offset += bytes.length;
  }
  if (options.checksum) {
    header["__metadata__"] = { ...metadata, [CHECKSUM_KEY]: dataChecksum(chunks) };
  } else if (metadata !== undefined) {
    header["__metadata__"] = metadata;
  }
  for (const [name, value] of entries) {
    Object.defineProperty(header, name, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const pad = (8 - (json.length % 8)) % 8;
  if (pad > 0) {
    const padded = new Uint8Array(json.length + pad).fill(0x20);
    padded.set(json);
    json = padded;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let pos = 8 + json.length;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}

// ---------------------------------------------------------------- decode

/**
 * Parse and validate the header of a safetensors file: header length, JSON, every entry's dtype,
 * shape and offsets (in range, sized `product(shape) * element size`, non-overlapping, and
 * covering the data section with no gap, as the reference implementation requires).
 * Throws an Error naming the offending tensor.
 */
export function parseSafetensorsHeader(bytes: Uint8Array): SafetensorsHeader {
  if (bytes.length < 8) {
    throw new Error(`safetensors: file too short (${bytes.length} bytes; needs at least 8)`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = dv.getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) {
    throw new Error(`safetensors: header length ${n64} is too large`);
  }
  const n = Number(n64);
  if (8 + n > bytes.length) {
    throw new Error(
      `safetensors: header length ${n} runs past the end of the file (${bytes.length} bytes)`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    throw new Error("safetensors: header is not valid UTF-8");
  }
  if (!text.startsWith("{")) throw new Error("safetensors: header is not a JSON object");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`safetensors: header is not valid JSON: ${(e as Error).message}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new Error("safetensors: header is not a JSON object");
  }
  const obj = parsed as Record<string, unknown>;
  const dataLen = bytes.length - 8 - n;
  let metadata: Record<string, string> = {};
  const entries: [string, SafetensorsHeaderEntry][] = [];
  for (const [name, raw] of Object.entries(obj)) {
    if (name === "__metadata__") {
      if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
        throw new Error("safetensors: __metadata__ must be an object of strings");
      }
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== "string") {
          throw new Error(`safetensors: __metadata__ "${k}" is not a string`);
        }
      }
      metadata = Object.fromEntries(Object.entries(raw as Record<string, string>));
      continue;
    }
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
      throw new Error(`safetensors: tensor "${name}" has a malformed header entry`);
    }
    const e = raw as Record<string, unknown>;
    if (typeof e.dtype !== "string") {
      throw new Error(`safetensors: tensor "${name}" has no dtype`);
    }
    if (!Array.isArray(e.shape)) throw new Error(`safetensors: tensor "${name}" has no shape`);
    const shape = e.shape as number[];
    const count = elementCount(shape, name);
    const off = e.data_offsets;
    if (
      !Array.isArray(off) || off.length !== 2 ||
      !off.every((v) => Number.isSafeInteger(v) && v >= 0)
    ) {
      throw new Error(`safetensors: tensor "${name}" has invalid data_offsets`);
    }
    const [begin, end] = off as [number, number];
    if (begin > end) {
      throw new Error(`safetensors: tensor "${name}" has data_offsets [${begin}, ${end}] reversed`);
    }
    if (end > dataLen) {
      throw new Error(
        `safetensors: tensor "${name}" data_offsets [${begin}, ${end}] are out of range ` +
          `(data section is ${dataLen} bytes)`,
      );
    }
    if (isDtype(e.dtype) && end - begin !== count * DTYPE_SIZE[e.dtype]) {
      throw new Error(
        `safetensors: tensor "${name}" has ${end - begin} bytes but ${e.dtype} ` +
          `[${shape.join(", ")}] needs ${count * DTYPE_SIZE[e.dtype]}`,
      );
    }
    entries.push([name, { dtype: e.dtype, shape: [...shape], data_offsets: [begin, end] }]);
  }
  const sorted = [...entries].sort((a, b) =>
    a[1].data_offsets[0] - b[1].data_offsets[0] || a[1].data_offsets[1] - b[1].data_offsets[1]
  );
  let pos = 0;
  let prev = "";
  for (const [name, e] of sorted) {
    const [begin, end] = e.data_offsets;
    if (begin < pos) {
      throw new Error(`safetensors: tensor "${name}" overlaps tensor "${prev}"`);
    }
    if (begin > pos) {
      throw new Error(
        `safetensors: gap before tensor "${name}" (data_offsets start at ${begin}, expected ${pos})`,
      );
    }
    pos = end;
    prev = name;
  }
  if (pos !== dataLen) {
    throw new Error(
      `safetensors: data section is ${dataLen} bytes but the tensors cover ${pos}`,
    );
  }
  return { entries: Object.fromEntries(entries), metadata, dataStart: 8 + n };
}

/**
 * Decode a safetensors file. Every tensor's data is copied (the result never aliases `bytes`).
 * Throws a clear Error, naming the tensor, on malformed headers, unsupported dtypes,
 * out-of-range or overlapping offsets, or size mismatches.
 *
 * @example
 * ```ts
 * import { decodeSafetensors, encodeSafetensors } from "./safetensors.ts";
 * const bytes = encodeSafetensors({ x: { dtype: "F16", shape: [2], data: new Float32Array([0.5, 2]) } });
 * console.log(decodeSafetensors(bytes).tensors.x.data); // Float32Array [0.5, 2]
 * ```
 */
export function decodeSafetensors(
  bytes: Uint8Array,
  options: DecodeOptions = {},
): DecodedSafetensors {
  assertLittleEndian();
  const int64 = options.int64 ?? "int32";
  const header = parseSafetensorsHeader(bytes);
  if (options.verify ?? true) verifySafetensorsChecksum(bytes, header);
  const tensors: [string, SafetensorsTensor][] = [];
  for (const [name, e] of Object.entries(header.entries)) {
    if (!isDtype(e.dtype)) {
      throw new Error(
        `safetensors: tensor "${name}" has unsupported dtype "${e.dtype}" ` +
          `(supported: ${Object.keys(DTYPE_SIZE).join(", ")})`,
      );
    }
    const [begin, end] = e.data_offsets;
    const raw = bytes.slice(header.dataStart + begin, header.dataStart + end);
    const buf = raw.buffer;
    let data: DecodedData;
    switch (e.dtype) {
      case "F32":
        data = new Float32Array(buf);
        break;
      case "F64":
        data = new Float64Array(buf);
        break;
      case "I32":
        data = new Int32Array(buf);
        break;
      case "U8":
        data = raw;
        break;
      case "F16":
      case "BF16": {
        const bits = new Uint16Array(buf);
        const out = new Float32Array(bits.length);
        const conv = e.dtype === "F16" ? halfBitsToFloat : bf16BitsToFloat;
        for (let i = 0; i < bits.length; i++) out[i] = conv(bits[i]);
        data = out;
        break;
      }
      case "I64": {
        const big = new BigInt64Array(buf);
        if (int64 === "bigint") {
          data = big;
          break;
        }
        const out = new Int32Array(big.length);
        for (let i = 0; i < big.length; i++) {
          const v = big[i];
          if (v < -2147483648n || v > 2147483647n) {
            throw new Error(
              `safetensors: tensor "${name}" (I64) element ${i} = ${v} does not fit in int32; ` +
                `decode with { int64: "bigint" }`,
            );
          }
          out[i] = Number(v);
        }
        data = out;
        break;
      }
    }
    tensors.push([name, { dtype: e.dtype, shape: e.shape, data }]);
  }
  return { tensors: Object.fromEntries(tensors), metadata: header.metadata };
}

/**
 * Read and decode a safetensors file.
 *
 * @example
 * ```ts
 * import { readSafetensorsFile, writeSafetensorsFile } from "./safetensors.ts";
 * const path = `${await Deno.makeTempDir()}/w.safetensors`;
 * await writeSafetensorsFile(path, { b: { dtype: "I32", shape: [1], data: new Int32Array([7]) } });
 * console.log((await readSafetensorsFile(path)).tensors.b.data); // Int32Array [7]
 * ```
 */
export async function readSafetensorsFile(
  path: string,
  options: DecodeOptions = {},
): Promise<DecodedSafetensors> {
  const bytes = await Deno.readFile(path);
  try {
    return decodeSafetensors(bytes, options);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Encode tensors and write them to `path` atomically (temp file, fsync, rename), with the data
 * checksum in `__metadata__` unless `options.checksum` is false.
 */
export async function writeSafetensorsFile(
  path: string,
  tensors: Record<string, SafetensorsInput>,
  metadata?: Record<string, string>,
  options: EncodeOptions = {},
): Promise<void> {
  const checksum = options.checksum ?? true;
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata, { checksum }));
}
