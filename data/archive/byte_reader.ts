// Owns ByteReader: exact-length reads over a chunked byte stream (file, gunzip output, tar entry),
// with truncation errors that name the source. No format knowledge.

/**
 * Reads exact byte counts from a stream of chunks without concatenating the whole stream.
 * Every short read throws an Error naming the source, the position and what was being read.
 *
 * @example
 * ```ts ignore
 * const r = new ByteReader((await Deno.open("x.bin")).readable, "x.bin");
 * const header = await r.readExact(128, "header");
 * ```
 */
export class ByteReader {
  /** Name used in error messages (file path, archive entry). */
  readonly name: string;
  #it: AsyncIterator<Uint8Array>;
  #chunk: Uint8Array = new Uint8Array(0);
  #off = 0;
  #done = false;
  #pos = 0;

  constructor(source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>, name: string) {
    this.name = name;
    this.#it = (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  }

  /** Bytes consumed so far. */
  get position(): number {
    return this.#pos;
  }

  /** Pulls the next non-empty chunk; false at end of stream. */
  async #fill(what = "data"): Promise<boolean> {
    while (this.#off >= this.#chunk.length) {
      if (this.#done) return false;
      let r: IteratorResult<Uint8Array>;
      try {
        r = await this.#it.next();
      } catch (e) {
        throw new Error(
          `${this.name}: corrupt or truncated while reading ${what} near byte ${this.#pos}: ${
            (e as Error).message
          }`,
          { cause: e },
        );
      }
      if (r.done) {
        this.#done = true;
        return false;
      }
      this.#chunk = r.value;
      this.#off = 0;
    }
    return true;
  }

  #short(n: number, got: number, what: string): Error {
    return new Error(
      `${this.name}: truncated: wanted ${n} bytes for ${what} at byte ${
        this.#pos - got
      }, got ${got}`,
    );
  }

  /** Reads exactly n bytes (a view when they lie in one chunk, else a copy). Throws if short. */
  async readExact(n: number, what = "data"): Promise<Uint8Array> {
    if (n === 0) return new Uint8Array(0);
    if (!(await this.#fill(what))) throw this.#short(n, 0, what);
    if (this.#chunk.length - this.#off >= n) {
      const v = this.#chunk.subarray(this.#off, this.#off + n);
      this.#off += n;
      this.#pos += n;
      return v;
    }
    const out = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      if (!(await this.#fill(what))) throw this.#short(n, got, what);
      const take = Math.min(n - got, this.#chunk.length - this.#off);
      out.set(this.#chunk.subarray(this.#off, this.#off + take), got);
      this.#off += take;
      this.#pos += take;
      got += take;
    }
    return out;
  }

  /** Reads up to n bytes; returns fewer only at end of stream. */
  async readUpTo(n: number): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let got = 0;
    for await (const c of this.#pieces(n, false, "")) {
      parts.push(c.slice());
      got += c.length;
    }
    if (parts.length === 1) return parts[0];
    const out = new Uint8Array(got);
    let o = 0;
    for (const p of parts) out.set(p, (o += p.length) - p.length);
    return out;
  }

  async *#pieces(n: number, exact: boolean, what: string): AsyncGenerator<Uint8Array> {
    let left = n;
    while (left > 0) {
      if (!(await this.#fill(what || "data"))) {
        if (exact) throw this.#short(n, n - left, what);
        return;
      }
      const take = Math.min(left, this.#chunk.length - this.#off);
      const v = this.#chunk.subarray(this.#off, this.#off + take);
      this.#off += take;
      this.#pos += take;
      left -= take;
      yield v;
    }
  }

  /**
   * Yields exactly n bytes as successive views (no copy); throws if the stream ends first.
   * Consume each piece before asking for the next.
   */
  chunks(n: number, what = "data"): AsyncGenerator<Uint8Array> {
    return this.#pieces(n, true, what);
  }

  /** Skips exactly n bytes; throws if the stream ends first. */
  async skip(n: number, what = "data"): Promise<void> {
    for await (const _ of this.#pieces(n, true, what)) { /* discard */ }
  }

  /** Reads and discards everything up to the end of the stream; returns the byte count. */
  async drain(): Promise<number> {
    let n = 0;
    while (await this.#fill()) {
      n += this.#chunk.length - this.#off;
      this.#pos += this.#chunk.length - this.#off;
      this.#off = this.#chunk.length;
    }
    return n;
  }

  /** True when no byte is left. */
  async atEnd(): Promise<boolean> {
    return !(await this.#fill());
  }

  /**
   * Stops reading and releases the underlying stream. An error of the stream itself (a gzip CRC
   * mismatch found while reading) was already thrown, named, by the read that met it; releasing an
   * errored stream does not throw it again unnamed.
   */
  async cancel(): Promise<void> {
    this.#done = true;
    try {
      await this.#it.return?.();
    } catch { /* reported by the read that met it */ }
  }
}

/** Splits a chunk stream into fixed-size records, calling fn on each (a view valid during the call). */
export async function forEachRecord(
  chunks: AsyncIterable<Uint8Array>,
  recordSize: number,
  fn: (record: Uint8Array, index: number) => void,
  name = "stream",
): Promise<number> {
  const carry = new Uint8Array(recordSize);
  let have = 0;
  let index = 0;
  for await (const chunk of chunks) {
    let off = 0;
    if (have > 0) {
      const take = Math.min(recordSize - have, chunk.length);
      carry.set(chunk.subarray(0, take), have);
      have += take;
      off = take;
      if (have < recordSize) continue;
      fn(carry, index++);
      have = 0;
    }
    while (chunk.length - off >= recordSize) {
      fn(chunk.subarray(off, off + recordSize), index++);
      off += recordSize;
    }
    if (off < chunk.length) {
      carry.set(chunk.subarray(off), 0);
      have = chunk.length - off;
    }
  }
  if (have !== 0) {
    throw new Error(
      `${name}: truncated: last record ${index} has ${have} of ${recordSize} bytes`,
    );
  }
  return index;
}
