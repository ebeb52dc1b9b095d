// Owns the MATLAB v5 MAT-file reader: 128-byte header, tagged data elements (normal and
// small-element form), miMATRIX numeric arrays, and zlib miCOMPRESSED elements inflated as a
// stream, so a variable's bytes can be consumed piece by piece without holding the file.
// Little-endian files only; v7.3 (HDF5) files are rejected with a clear message. The file is always
// read to its end (every compressed element inflated and its Adler-32 checked), even when the
// consumer stops after the variables it wanted.

import { ByteReader } from "../archive/byte_reader.ts";
import { inflateZlibStream } from "../archive/gzip_stream.ts";
import { readToEnd } from "../archive/read_to_end.ts";

/** MAT-file data types (miXXX). */
export const MI = {
  INT8: 1,
  UINT8: 2,
  INT16: 3,
  UINT16: 4,
  INT32: 5,
  UINT32: 6,
  SINGLE: 7,
  DOUBLE: 9,
  INT64: 12,
  UINT64: 13,
  MATRIX: 14,
  COMPRESSED: 15,
  UTF8: 16,
  UTF16: 17,
  UTF32: 18,
} as const;

/** Array classes (mxXXX_CLASS) by id. */
export const MX_CLASS: Record<number, string> = {
  1: "cell",
  2: "struct",
  3: "object",
  4: "char",
  5: "sparse",
  6: "double",
  7: "single",
  8: "int8",
  9: "uint8",
  10: "int16",
  11: "uint16",
  12: "int32",
  13: "uint32",
  14: "int64",
  15: "uint64",
};

const ELEMENT_SIZE: Record<number, number> = {
  1: 1,
  2: 1,
  3: 2,
  4: 2,
  5: 4,
  6: 4,
  7: 4,
  9: 8,
  12: 8,
  13: 8,
  16: 1,
  17: 2,
  18: 4,
};

/** Typed arrays a numeric variable can decode to. */
export type NumericArray =
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

/** One top-level variable, positioned at its real-part data (numeric arrays). */
export interface MatVariable {
  name: string;
  /** "double", "uint8", ... (see {@link MX_CLASS}). */
  className: string;
  /** Dimensions, MATLAB order (column-major: the first varies fastest). */
  dims: number[];
  complex: boolean;
  /** Storage type of the real part (an {@link MI} value; may be narrower than the class). */
  dataType: number;
  /** Bytes of the real part (0 for non-numeric classes). */
  byteLength: number;
  /** Streams the raw little-endian real part. Once only; the rest is skipped on advance. */
  chunks(): AsyncGenerator<Uint8Array>;
  /** Reads the real part as a typed array of its storage type. */
  read(): Promise<NumericArray>;
  /** Reads the real part converted to float64 (whatever the storage type). */
  toFloat64(): Promise<Float64Array>;
}

function typedFrom(type: number, bytes: Uint8Array, where: string): NumericArray {
  const buf = bytes.byteOffset % 8 === 0 ? bytes : bytes.slice();
  const b = buf.buffer, o = buf.byteOffset, n = buf.length;
  switch (type) {
    case MI.INT8:
      return new Int8Array(b, o, n);
    case MI.UINT8:
    case MI.UTF8:
      return new Uint8Array(b, o, n);
    case MI.INT16:
      return new Int16Array(b, o, n / 2);
    case MI.UINT16:
    case MI.UTF16:
      return new Uint16Array(b, o, n / 2);
    case MI.INT32:
      return new Int32Array(b, o, n / 4);
    case MI.UINT32:
    case MI.UTF32:
      return new Uint32Array(b, o, n / 4);
    case MI.SINGLE:
      return new Float32Array(b, o, n / 4);
    case MI.DOUBLE:
      return new Float64Array(b, o, n / 8);
    case MI.INT64:
      return new BigInt64Array(b, o, n / 8);
    case MI.UINT64:
      return new BigUint64Array(b, o, n / 8);
  }
  throw new Error(`${where}: unsupported data type ${type}`);
}

interface Tag {
  type: number;
  nbytes: number;
  /** Data of a small element (already read), else null. */
  small: Uint8Array | null;
}

async function readTag(r: ByteReader, what: string): Promise<Tag> {
  const t = await r.readExact(8, what);
  const dv = new DataView(t.buffer, t.byteOffset, 8);
  const first = dv.getUint32(0, true);
  if (first >>> 16 !== 0) {
    const nbytes = first >>> 16;
    if (nbytes > 4) throw new Error(`${r.name}: corrupt small element (${what}, ${nbytes} bytes)`);
    return { type: first & 0xffff, nbytes, small: t.slice(4, 4 + nbytes) };
  }
  return { type: first, nbytes: dv.getUint32(4, true), small: null };
}

const pad8 = (n: number) => (8 - (n % 8)) % 8;

async function readSub(r: ByteReader, what: string): Promise<{ type: number; data: Uint8Array }> {
  const tag = await readTag(r, what);
  if (tag.small) return { type: tag.type, data: tag.small };
  const data = (await r.readExact(tag.nbytes, what)).slice();
  await r.skip(pad8(tag.nbytes), what);
  return { type: tag.type, data };
}

/**
 * Parses one miMATRIX body of `size` bytes from r, yields the variable, then skips what the
 * consumer left unread.
 */
async function* matrix(r: ByteReader, size: number, where: string): AsyncGenerator<MatVariable> {
  const start = r.position;
  const rest = () => size - (r.position - start);
  if (size === 0) return; // empty placeholder
  const flags = await readSub(r, `${where} array flags`);
  if (flags.type !== MI.UINT32 || flags.data.length < 8) {
    throw new Error(`${r.name}: corrupt array flags in ${where}`);
  }
  const classId = flags.data[0];
  const complex = (flags.data[1] & 0x08) !== 0;
  const dimsEl = await readSub(r, `${where} dimensions`);
  const dims = Array.from(typedFrom(MI.INT32, dimsEl.data, where) as Int32Array);
  const nameEl = await readSub(r, `${where} name`);
  const name = new TextDecoder().decode(nameEl.data);
  const label = `${where} variable "${name}"`;
  const numeric = classId >= 6 && classId <= 15;
  let tag: Tag = { type: MI.UINT8, nbytes: 0, small: new Uint8Array(0) };
  if (numeric) tag = await readTag(r, `${label} real part`);
  let consumed = 0;
  let started = false;
  const chunks = async function* (): AsyncGenerator<Uint8Array> {
    if (started) throw new Error(`${r.name}: ${label} already read`);
    started = true;
    if (tag.small) {
      consumed = tag.nbytes;
      yield tag.small;
      return;
    }
    for await (const c of r.chunks(tag.nbytes, `${label} data`)) {
      consumed += c.length;
      yield c;
    }
  };
  const read = async (): Promise<NumericArray> => {
    const all = new Uint8Array(tag.nbytes);
    let o = 0;
    for await (const c of chunks()) {
      all.set(c, o);
      o += c.length;
    }
    return typedFrom(tag.type, all, `${r.name}: ${label}`);
  };
  const elem = ELEMENT_SIZE[tag.type] ?? 1;
  yield {
    name,
    className: MX_CLASS[classId] ?? `class${classId}`,
    dims,
    complex,
    dataType: tag.type,
    byteLength: numeric ? tag.nbytes : 0,
    chunks,
    read,
    toFloat64: async () => {
      const a = await read();
      if (a instanceof Float64Array) return a;
      const out = new Float64Array(a.length);
      for (let i = 0; i < a.length; i++) out[i] = Number(a[i]);
      return out;
    },
  };
  if (numeric && !tag.small) {
    if (tag.nbytes % elem !== 0) throw new Error(`${r.name}: corrupt data size in ${label}`);
    await r.skip(tag.nbytes - consumed + pad8(tag.nbytes), `${label} data`);
  }
  await r.skip(rest(), `${label} (rest of the matrix)`);
}

/**
 * Streams the top-level variables of a MATLAB v5 MAT-file in file order. Each variable's data is
 * read lazily from the (incrementally inflated) file; unread data is skipped on advance. Leaving
 * the loop early still reads the rest of the file (so its checksums are checked) first.
 * Truncated or corrupt files throw an Error naming the file and the variable.
 *
 * @example
 * ```ts ignore
 * for await (const v of mat5Variables("test_32x32.mat")) {
 *   console.log(v.name, v.className, v.dims); // X uint8 [32, 32, 3, 26032] ...
 * }
 * ```
 */
export function mat5Variables(path: string): AsyncGenerator<MatVariable> {
  return readToEnd(variables(path));
}

async function* variables(path: string): AsyncGenerator<MatVariable> {
  const file = await Deno.open(path, { read: true });
  const r = new ByteReader(file.readable, path);
  try {
    const header = await r.readExact(128, "the 128-byte MAT-file header");
    const text = new TextDecoder().decode(header.subarray(0, 116));
    if (!text.startsWith("MATLAB")) throw new Error(`${path}: not a MATLAB MAT-file`);
    if (text.startsWith("MATLAB 7.3")) {
      throw new Error(`${path}: MATLAB v7.3 (HDF5) files are not supported; save with -v7`);
    }
    const endian = String.fromCharCode(header[126], header[127]);
    if (endian === "MI") throw new Error(`${path}: big-endian MAT-files are not supported`);
    if (endian !== "IM") throw new Error(`${path}: corrupt MAT-file header (endian "${endian}")`);
    let index = 0;
    while (!(await r.atEnd())) {
      const where = `element ${index++}`;
      const tag = await readTag(r, `${where} tag`);
      if (tag.small) continue;
      if (tag.type === MI.MATRIX) {
        yield* matrix(r, tag.nbytes, where);
        await r.skip(pad8(tag.nbytes), where);
      } else if (tag.type === MI.COMPRESSED) {
        const compressed = ReadableStream.from(r.chunks(tag.nbytes, `${where} compressed data`));
        const inner = new ByteReader(inflateZlibStream(compressed), `${path} (${where}, zlib)`);
        try {
          if (!(await inner.atEnd())) {
            const t = await readTag(inner, `${where} inner tag`);
            if (t.type === MI.MATRIX && !t.small) yield* matrix(inner, t.nbytes, where);
          }
          // Drain: inflates whatever is left so the file reader ends exactly after the element.
          await inner.drain();
        } finally {
          await inner.cancel();
        }
      } else {
        await r.skip(tag.nbytes + pad8(tag.nbytes), `${where} (type ${tag.type})`);
      }
    }
  } finally {
    await r.cancel();
  }
}

const NUMERIC = new Set(Object.values(MX_CLASS).slice(5));

/** A fully read numeric variable. */
export interface MatArray {
  name: string;
  className: string;
  dims: number[];
  data: NumericArray;
}

/** Reads the named numeric variables (all when `names` is omitted) of a MAT-file into memory. */
export async function readMat5(path: string, names?: string[]): Promise<Map<string, MatArray>> {
  const out = new Map<string, MatArray>();
  for await (const v of mat5Variables(path)) {
    if (names && !names.includes(v.name)) continue;
    if (!NUMERIC.has(v.className)) continue;
    out.set(v.name, { name: v.name, className: v.className, dims: v.dims, data: await v.read() });
  }
  return out;
}
