/**
 * An exclusive advisory file lock held while a function runs, so that processes preparing the same
 * thing (two runs of a sweep sharing one prepared dataset) take turns instead of writing it at once.
 * The kernel releases the lock when its holder exits or is killed, so a dead process never leaves it
 * held; the lock file itself stays (it is empty and reused).
 *
 * @module
 */

/** Options of {@linkcode withFileLock}. */
export interface FileLockOptions {
  /** Called once when the lock is still held by another process after `noticeMs`. */
  onWait?: () => void;
  /** Milliseconds to wait before `onWait` (default 1000). */
  noticeMs?: number;
}

/**
 * Runs `fn` while holding the exclusive OS lock of `path` (created if missing) and returns its
 * result; waits while another process (or another open of the file) holds it. Where the lock file
 * cannot be created (a read-only or missing folder), `fn` runs without it.
 *
 * @example
 * ```ts
 * import { withFileLock } from "./file_lock.ts";
 * const dir = await Deno.makeTempDir();
 * const order: string[] = [];
 * const job = (name: string) =>
 *   withFileLock(`${dir}/job.lock`, async () => {
 *     order.push(`${name} start`);
 *     await new Promise((r) => setTimeout(r, 20));
 *     order.push(`${name} end`);
 *   });
 * await Promise.all([job("a"), job("b")]);
 * console.log(order); // one job ends before the other starts
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function withFileLock<T>(
  path: string,
  fn: () => Promise<T>,
  options: FileLockOptions = {},
): Promise<T> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { create: true, write: true });
  } catch (e) {
    const unwritable = e instanceof Deno.errors.PermissionDenied ||
      e instanceof Deno.errors.NotFound || (e as { code?: string }).code === "EROFS";
    if (unwritable) {
      return await fn();
    }
    throw e;
  }
  try {
    const notice = options.onWait
      ? setTimeout(options.onWait, options.noticeMs ?? 1000)
      : undefined;
    try {
      await file.lock(true);
    } finally {
      clearTimeout(notice);
    }
    try {
      return await fn();
    } finally {
      await file.unlock();
    }
  } finally {
    file.close();
  }
}
