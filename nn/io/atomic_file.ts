/**
 * Atomic file writes: write to a temporary file beside the target, fsync, close, then rename over
 * the target. An error mid-write leaves the old file intact and no temporary file behind, and an
 * I/O error (a full disk, say) names the file being written. A process killed mid-write leaves its
 * temporary file (`<target>.<pid>-<random>.tmp`); {@linkcode removeStaleTempFiles} clears those
 * of dead processes.
 *
 * @module
 */

// deno-lint-ignore no-import-prefix -- library code uses full specifiers (importable by URL)
import { dirname } from "jsr:@std/path@^1/dirname";
// deno-lint-ignore no-import-prefix -- library code uses full specifiers (importable by URL)
import { join } from "jsr:@std/path@^1/join";
import { processAlive } from "./process.ts";

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

/** `<path>.<pid>-<12 hex>.tmp`: the temporary file of one write, naming its process. */
function tempPathFor(path: string): string {
  return `${path}.${Deno.pid}-${randomSuffix()}.tmp`;
}

/** Temporary files of {@linkcode writeFileAtomic}: this version (with pid) and older ones. */
const TEMP_RE = /^(.+)\.(?:(\d+)-)?([0-9a-f]{12})\.tmp$/;

/**
 * The same error with the target file named in its message (class, `code` and cause kept), so a
 * full disk says which write failed.
 */
function namePath(e: unknown, path: string): unknown {
  if (!(e instanceof Error) || e.message.includes(path)) return e;
  const Ctor = e.constructor as new (message: string, options?: ErrorOptions) => Error;
  let named: Error;
  try {
    named = new Ctor(`writing ${path}: ${e.message}`, { cause: e });
  } catch {
    named = new Error(`writing ${path}: ${e.message}`, { cause: e });
  }
  const code = (e as { code?: unknown }).code;
  if (code !== undefined && (named as { code?: unknown }).code === undefined) {
    Object.defineProperty(named, "code", { value: code, enumerable: false });
  }
  return named;
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
  const tmp = tempPathFor(path);
  let file: Deno.FsFile | undefined;
  const io = <T>(p: Promise<T>): Promise<T> => p.catch((e) => Promise.reject(namePath(e, path)));
  try {
    file = await io(Deno.open(tmp, { write: true, createNew: true }));
    const f = file;
    const put = (bytes: Uint8Array) => io(writeAll(f, bytes));
    if (typeof data === "string") {
      await put(new TextEncoder().encode(data));
    } else if (data instanceof Uint8Array) {
      await put(data);
    } else if (Symbol.asyncIterator in data) {
      for await (const chunk of data) await put(chunk);
    } else {
      for (const chunk of data) await put(chunk);
    }
    await io(file.sync());
    file.close();
    file = undefined;
    await io(Deno.rename(tmp, path));
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

/** Options of {@linkcode removeStaleTempFiles}. */
export interface RemoveStaleTempOptions {
  /**
   * Also remove temporary files last modified before this time, whatever their process (for a
   * folder this process owns exclusively: every older write there is a dead one's).
   */
  olderThan?: Date;
}

/**
 * Removes the temporary files that killed writers left in `dir` (`<name>.<pid>-<hex>.tmp` of
 * {@linkcode writeFileAtomic}): those whose process is no longer running, and, with `olderThan`,
 * every one older than that (files from versions without a pid in the name included). Files of
 * this process are kept. Returns the names removed; a missing `dir` gives [].
 *
 * @example
 * ```ts
 * import { removeStaleTempFiles } from "./atomic_file.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/last.safetensors.999999999-0123456789ab.tmp`, "partial");
 * console.log(await removeStaleTempFiles(dir)); // [ "last.safetensors.999999999-0123456789ab.tmp" ]
 * ```
 */
export async function removeStaleTempFiles(
  dir: string,
  options: RemoveStaleTempOptions = {},
): Promise<string[]> {
  const removed: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  for (const entry of entries) {
    if (!entry.isFile) continue;
    const m = TEMP_RE.exec(entry.name);
    if (!m) continue;
    const pid = m[2] === undefined ? undefined : Number(m[2]);
    if (pid === Deno.pid) continue;
    const path = join(dir, entry.name);
    let stale = pid !== undefined && processAlive(pid) === false;
    if (!stale && options.olderThan) {
      try {
        const mtime = (await Deno.stat(path)).mtime;
        stale = mtime !== null && mtime.getTime() < options.olderThan.getTime();
      } catch {
        continue; // gone meanwhile
      }
    }
    if (!stale) continue;
    try {
      await Deno.remove(path);
      removed.push(entry.name);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  return removed.sort();
}
