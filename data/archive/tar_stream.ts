// Owns streaming tar reading: ustar/GNU/pax headers parsed from a byte stream (optionally
// gunzipped on the fly), yielding entries whose contents are read lazily, so multi-GB archives
// never sit in memory. Unread entry contents are skipped automatically. A gzipped archive is always
// read to its end (its CRC-32 and length checked), even when the consumer stops early.

import { ByteReader } from "./byte_reader.ts";
import { isGzip, openByteStream } from "./gzip_stream.ts";
import { readToEnd } from "./read_to_end.ts";

/** One member of a tar archive. Its content must be read before advancing, or it is skipped. */
export interface TarEntry {
  /** Full path inside the archive (pax/GNU long names resolved, ustar prefix joined). */
  name: string;
  /** Content size in bytes. */
  size: number;
  /** Kind of member. */
  type: "file" | "directory" | "symlink" | "hardlink" | "other";
  /** Modification time, seconds since the epoch. */
  mtime: number;
  /** Link target for links, else "". */
  linkname: string;
  /** Streams the content as views (each valid until the next piece is requested). Once only. */
  chunks(): AsyncGenerator<Uint8Array>;
  /** Reads the whole content into one new array. */
  bytes(): Promise<Uint8Array>;
  /** Reads the content as UTF-8 text. */
  text(): Promise<string>;
  /** The content as a ReadableStream (copies each piece). */
  readonly readable: ReadableStream<Uint8Array>;
}

/** Options for {@link tarEntries}. */
export interface TarOptions {
  /** Name for error messages when the source is a stream. */
  name?: string;
  /** Gunzip a path source: "auto" (default, by magic number), true or false. */
  gunzip?: boolean | "auto";
  /**
   * Read the source to its end even when the consumer stops early, and past the end-of-archive
   * marker, so a gzip stream's CRC-32 and length are always checked (default: true for a gzipped
   * path and for stream sources, false for a plain tar file).
   */
  readToEnd?: boolean;
}

const BLOCK = 512;
const dec = new TextDecoder();

function cstr(b: Uint8Array): string {
  const z = b.indexOf(0);
  return dec.decode(z < 0 ? b : b.subarray(0, z));
}

function octal(b: Uint8Array): number {
  if (b[0] & 0x80) { // GNU base-256
    let v = b[0] & 0x7f;
    for (let i = 1; i < b.length; i++) v = v * 256 + b[i];
    return v;
  }
  const s = cstr(b).trim();
  return s === "" ? 0 : parseInt(s, 8);
}

function checksumOk(h: Uint8Array): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
  return sum === octal(h.subarray(148, 156));
}

function parsePax(data: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  let off = 0;
  while (off < data.length) {
    const sp = data.indexOf(0x20, off);
    if (sp < 0) break;
    const len = parseInt(dec.decode(data.subarray(off, sp)), 10);
    if (!(len > 0)) break;
    const rec = dec.decode(data.subarray(sp + 1, off + len - 1)); // drop trailing \n
    const eq = rec.indexOf("=");
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    off += len;
  }
  return out;
}

function kind(flag: string): TarEntry["type"] {
  if (flag === "0" || flag === "\0" || flag === "" || flag === "7") return "file";
  if (flag === "5") return "directory";
  if (flag === "2") return "symlink";
  if (flag === "1") return "hardlink";
  return "other";
}

/**
 * Streams the members of a tar (or .tar.gz / .tgz) archive in archive order.
 * Content is read on demand through the entry; whatever is left unread is skipped when the
 * loop advances. Truncated or corrupt archives throw an Error naming the archive and member.
 *
 * @example
 * ```ts ignore
 * for await (const e of tarEntries("cifar-10-binary.tar.gz")) {
 *   if (e.name.endsWith("batches.meta.txt")) console.log(await e.text());
 * }
 * ```
 */
export async function* tarEntries(
  source: string | ReadableStream<Uint8Array>,
  options: TarOptions = {},
): AsyncGenerator<TarEntry> {
  const name = options.name ?? (typeof source === "string" ? source : "tar stream");
  let toEnd = options.readToEnd ?? true;
  let stream: ReadableStream<Uint8Array>;
  if (typeof source === "string") {
    const gunzip = options.gunzip ?? "auto";
    const gz = gunzip === "auto" ? await startsWithGzip(source) : gunzip;
    toEnd = options.readToEnd ?? gz;
    stream = await openByteStream(source, { gunzip: gz });
  } else {
    stream = source;
  }
  const entries = tarStreamEntries(new ByteReader(stream, name), name, toEnd);
  yield* toEnd ? readToEnd(entries) : entries;
}

async function startsWithGzip(path: string): Promise<boolean> {
  const f = await Deno.open(path, { read: true });
  try {
    const head = new Uint8Array(2);
    let n = 0;
    while (n < 2) {
      const r = await f.read(head.subarray(n));
      if (r === null) break;
      n += r;
    }
    return isGzip(head.subarray(0, n));
  } finally {
    f.close();
  }
}

async function* tarStreamEntries(
  r: ByteReader,
  name: string,
  toEnd: boolean,
): AsyncGenerator<TarEntry> {
  let paxGlobal: Record<string, string> = {};
  let pending: Record<string, string> = {};
  try {
    while (true) {
      if (await r.atEnd()) {
        throw new Error(`${name}: truncated: archive ends without the end-of-archive marker`);
      }
      const h = (await r.readExact(BLOCK, "a tar header")).slice();
      if (h.every((x) => x === 0)) { // end-of-archive (the second zero block is optional)
        if (toEnd) await r.drain(); // the rest: padding blocks, then the gzip trailer is checked
        return;
      }
      if (!checksumOk(h)) {
        throw new Error(`${name}: corrupt tar header at byte ${r.position - BLOCK}`);
      }
      const flag = String.fromCharCode(h[156]);
      const size = octal(h.subarray(124, 136));
      const padded = Math.ceil(size / BLOCK) * BLOCK;
      if (flag === "x" || flag === "g" || flag === "L" || flag === "K") {
        const data = await r.readExact(size, `a ${flag} extended header`);
        await r.skip(padded - size, "tar padding");
        if (flag === "x") pending = { ...pending, ...parsePax(data) };
        else if (flag === "g") paxGlobal = { ...paxGlobal, ...parsePax(data) };
        else if (flag === "L") pending.path = cstr(data);
        else pending.linkpath = cstr(data);
        continue;
      }
      const ustar = cstr(h.subarray(257, 263)) === "ustar" && h[262] === 0;
      const prefix = ustar ? cstr(h.subarray(345, 500)) : "";
      const attrs = { ...paxGlobal, ...pending };
      pending = {};
      const base = cstr(h.subarray(0, 100));
      const entrySize = attrs.size !== undefined ? Number(attrs.size) : size;
      const entryPadded = Math.ceil(entrySize / BLOCK) * BLOCK;
      const type = kind(flag);
      const contentSize = type === "file" || type === "other" ? entrySize : 0;
      const entryName = attrs.path ?? (prefix ? `${prefix}/${base}` : base);
      const label = `${name}: entry ${entryName}`;
      let consumed = 0;
      let started = false;
      const chunks = async function* (): AsyncGenerator<Uint8Array> {
        if (started) throw new Error(`${label}: content already read`);
        started = true;
        for await (const c of r.chunks(contentSize, `entry ${entryName}`)) {
          consumed += c.length;
          yield c;
        }
      };
      const bytes = async (): Promise<Uint8Array> => {
        const out = new Uint8Array(contentSize);
        let o = 0;
        for await (const c of chunks()) {
          out.set(c, o);
          o += c.length;
        }
        return out;
      };
      const entry: TarEntry = {
        name: entryName,
        size: contentSize,
        type,
        mtime: attrs.mtime !== undefined ? Number(attrs.mtime) : octal(h.subarray(136, 148)),
        linkname: attrs.linkpath ?? cstr(h.subarray(157, 257)),
        chunks,
        bytes,
        text: async () => dec.decode(await bytes()),
        get readable() {
          const it = chunks();
          return new ReadableStream<Uint8Array>({
            async pull(ctl) {
              const { done, value } = await it.next();
              if (done) ctl.close();
              else ctl.enqueue(value.slice());
            },
            async cancel() {
              await it.return(undefined);
            },
          });
        },
      };
      yield entry;
      const dataBytes = flag === "5" || flag === "1" || flag === "2" ? 0 : entrySize;
      const dataPadded = dataBytes === 0 ? 0 : entryPadded;
      await r.skip(dataPadded - consumed, `entry ${entryName}`);
    }
  } finally {
    await r.cancel();
  }
}

/**
 * Reads, in one pass, the contents of the members whose name satisfies `want`; others are skipped.
 * Use for small metadata files.
 */
export async function readTarMembers(
  source: string,
  want: (name: string) => boolean,
): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for await (const e of tarEntries(source)) {
    if (e.type === "file" && want(e.name)) out.set(e.name, await e.bytes());
  }
  return out;
}
