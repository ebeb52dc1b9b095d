/**
 * Atomic file writes: write to a temporary file beside the target, fsync, close, then rename over
 * the target. A crash or error mid-write leaves the old file intact and no temporary file behind.
 *
 * @module
 */

// deno-lint-ignore no-import-prefix -- library code uses full specifiers (importable by URL)
import { dirname } from "jsr:@std/path@^1/dirname";

/** What {@linkcode writeFileAtomic} accepts: bytes, text, or a (possibly async) stream of chunks. */
export type AtomicData =
  | Uint8Array
  | string
  | Iterable<Uint8Array>
  | AsyncIterable<Uint8Array>;

function randomSuffix(): string {
  const b = crypto.getRandomValues(new Uint8Array(6));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await file.write(bytes.subarray(off));
}

/**
 * Best-effort fsync of a directory so the rename itself is durable (POSIX only; ignored where the
 * platform cannot open a directory).
 */
async function syncDir(dir: string): Promise<void> {
  if (Deno.build.os === "windows") return;
  let d: Deno.FsFile | undefined;
  try {
    d = await Deno.open(dir, { read: true });
    await d.sync();
  } catch {
    // Not supported here: the file data itself is already synced.
  } finally {
    d?.close();
  }
}

/**
 * Write `data` to `path` atomically: the bytes go to `path.<random>.tmp` in the same directory,
 * are fsynced, and the temporary file is renamed over `path`. On any error (including one thrown
 * by a streaming data source) the temporary file is removed and the previous content of `path`,
 * if any, is untouched.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./atomic_file.ts";
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomic(`${dir}/config.json`, JSON.stringify({ lr: 0.1 }));
 * console.log(await Deno.readTextFile(`${dir}/config.json`)); // {"lr":0.1}
 * ```
 */
export async function writeFileAtomic(path: string, data: AtomicData): Promise<void> {
  const tmp = `${path}.${randomSuffix()}.tmp`;
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(tmp, { write: true, createNew: true });
    if (typeof data === "string") {
      await writeAll(file, new TextEncoder().encode(data));
    } else if (data instanceof Uint8Array) {
      await writeAll(file, data);
    } else if (Symbol.asyncIterator in data) {
      for await (const chunk of data) await writeAll(file, chunk);
    } else {
      for (const chunk of data) await writeAll(file, chunk);
    }
    await file.sync();
    file.close();
    file = undefined;
    await Deno.rename(tmp, path);
  } catch (err) {
    try {
      file?.close();
    } catch {
      // already closed
    }
    try {
      await Deno.remove(tmp);
    } catch {
      // never created, or already renamed
    }
    throw err;
  }
  await syncDir(dirname(path) || ".");
}
