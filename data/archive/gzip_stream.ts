// Owns opening a file as a byte stream, gunzipping it on the fly when it starts with the gzip
// magic, and zlib/deflate inflation of in-memory or streamed data. Uses the platform's native
// DecompressionStream (no whole-file buffering).

type Bytes = ReadableStream<Uint8Array>;

/** The platform (de)compressor typed for Uint8Array streams. */
function decompressor(format: CompressionFormat): TransformStream<Uint8Array, Uint8Array> {
  return new DecompressionStream(format) as unknown as TransformStream<Uint8Array, Uint8Array>;
}

/** True when bytes start with the gzip magic number 1f 8b. */
export function isGzip(head: Uint8Array): boolean {
  return head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
}

/** Options for {@link openByteStream}. */
export interface OpenStreamOptions {
  /** "auto" (default) gunzips when the file starts with 1f 8b; true forces, false disables. */
  gunzip?: boolean | "auto";
}

/**
 * Opens a file as a ReadableStream of bytes, decompressing gzip transparently.
 * The file handle closes when the stream ends or is cancelled.
 *
 * @example
 * ```ts
 * for await (const chunk of await openByteStream("cifar-10-binary.tar.gz")) console.log(chunk.length);
 * ```
 */
export async function openByteStream(
  path: string,
  options: OpenStreamOptions = {},
): Promise<ReadableStream<Uint8Array>> {
  const file = await Deno.open(path, { read: true });
  let gz = options.gunzip ?? "auto";
  if (gz === "auto") {
    const head = new Uint8Array(2);
    let n = 0;
    try {
      while (n < 2) {
        const r = await file.read(head.subarray(n));
        if (r === null) break;
        n += r;
      }
      await file.seek(0, Deno.SeekMode.Start);
    } catch (e) {
      file.close();
      throw e;
    }
    gz = isGzip(head.subarray(0, n));
  }
  const raw = file.readable as Bytes;
  return gz ? raw.pipeThrough(decompressor("gzip")) : raw;
}

/** Inflates a stream of zlib-wrapped deflate data (RFC 1950, as in MAT-file miCOMPRESSED). */
export function inflateZlibStream(
  source: ReadableStream<Uint8Array>,
): ReadableStream<Uint8Array> {
  return source.pipeThrough(decompressor("deflate"));
}

/** Gunzips a byte stream (RFC 1952). */
export function gunzipStream(source: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  return source.pipeThrough(decompressor("gzip"));
}
