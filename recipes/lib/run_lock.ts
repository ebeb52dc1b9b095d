/**
 * One writer per run folder: a run holds an exclusive lock on `<out>/run.lock` (an OS advisory
 * lock, released by the kernel when the process dies, on a file that names the holder's pid) for
 * as long as it writes there. A second run into the same folder is refused with a message naming
 * the folder and the pid that holds it; a lock file left by a killed run (its process gone) is
 * taken over. {@linkcode lockRunFolder} is how a recipe run takes it: a live holder is a usage
 * error, and the temporary files that killed runs left in the folder are removed.
 *
 * @module
 */

// deno-lint-ignore no-import-prefix -- library code uses full specifiers (importable by URL)
import { join } from "jsr:@std/path@^1/join";
import { removeStaleTempFiles } from "../../nn/io/atomic_file.ts";
import { processAlive, processStartTime } from "../../nn/io/process.ts";
import { UsageError } from "./errors.ts";

/** File name of the lock inside the run folder. */
export const LOCK_FILE = "run.lock";

/** What the lock file records about its holder. */
export interface LockHolder {
  pid: number;
  /** Process start time in clock ticks since boot (tells a pid's reuse apart), if known. */
  startTime?: number;
  hostname?: string;
  /** ISO time the lock was taken. */
  since?: string;
  /** What the holder is doing, e.g. "cifar10_lt training". */
  purpose?: string;
}

/** The folder is locked by another live process. */
export class RunLockedError extends Error {
  /** Builds the message from the folder and what its lock file says. */
  constructor(readonly dir: string, readonly holder: LockHolder | undefined) {
    super(
      `${dir} is in use by another run` +
        (holder
          ? ` (pid ${holder.pid}${holder.purpose ? `, ${holder.purpose}` : ""}${
            holder.since ? `, since ${holder.since}` : ""
          })`
          : "") +
        `; wait for it to finish, stop it, or choose another --out`,
    );
    this.name = "RunLockedError";
  }
}

/** A held run-folder lock. */
export interface RunLock {
  /** The locked folder. */
  readonly dir: string;
  /** When it was taken: every temporary file older than this is a dead writer's. */
  readonly since: Date;
  /** Whether acquiring it created the folder. */
  readonly createdDir: boolean;
  /** The holder of a lock left by a killed process, which this one took over. */
  readonly tookOverFrom?: LockHolder;
  /**
   * Removes the lock file and releases the lock. With `removeDirIfEmpty`, a folder that the
   * acquisition created and that is empty afterwards is removed too (a run that failed before
   * writing anything leaves no folder).
   */
  release(options?: { removeDirIfEmpty?: boolean }): Promise<void>;
}

async function readHolder(path: string): Promise<LockHolder | undefined> {
  let text: string;
  try {
    text = (await Deno.readTextFile(path)).trim();
  } catch {
    return undefined;
  }
  if (!text) return undefined;
  try {
    const v = JSON.parse(text);
    return typeof v?.pid === "number" ? v as LockHolder : undefined;
  } catch {
    const pid = Number(text.split(/\s/)[0]);
    return Number.isSafeInteger(pid) && pid > 0 ? { pid } : undefined;
  }
}

function hostname(): string | undefined {
  try {
    return Deno.hostname();
  } catch {
    return undefined;
  }
}

/** Whether the holder recorded in a lock file still runs (on this host). */
function holderAlive(h: LockHolder): boolean {
  if (h.pid === Deno.pid) return false;
  // Another machine's process cannot be looked up here; the advisory lock (free) decides.
  if (h.hostname && h.hostname !== hostname()) return false;
  const alive = processAlive(h.pid);
  if (alive !== true) return false;
  const start = processStartTime(h.pid);
  return h.startTime === undefined || start === undefined || start === h.startTime;
}

async function isEmptyDir(dir: string): Promise<boolean> {
  for await (const _ of Deno.readDir(dir)) return false;
  return true;
}

/**
 * Takes the exclusive lock of run folder `dir` (created if missing). Throws
 * {@linkcode RunLockedError} when another live process holds it.
 *
 * @example
 * ```ts
 * import { acquireRunLock } from "./run_lock.ts";
 * const dir = await Deno.makeTempDir();
 * const lock = await acquireRunLock(dir, "example");
 * const second = await acquireRunLock(dir).catch((e) => e.name);
 * console.log(second); // "RunLockedError"
 * await lock.release();
 * ```
 */
export async function acquireRunLock(dir: string, purpose?: string): Promise<RunLock> {
  let createdDir = false;
  try {
    await Deno.stat(dir);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    await Deno.mkdir(dir, { recursive: true });
    createdDir = true;
  }
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 20; attempt++) {
    const file = await Deno.open(path, { read: true, write: true, create: true });
    let ok = false;
    try {
      const locked = await file.tryLock(true);
      const previous = await readHolder(path);
      if (!locked) throw new RunLockedError(dir, previous);
      // The file may have been removed (a holder releasing) between open and lock: retry on the
      // file that the path names now.
      const now = await Deno.stat(path).catch(() => null);
      if (!now || now.ino !== (await file.stat()).ino) continue;
      // Where advisory locks do not work (some network file systems), the recorded pid decides.
      if (previous && holderAlive(previous)) throw new RunLockedError(dir, previous);
      const me: LockHolder = {
        pid: Deno.pid,
        startTime: processStartTime(Deno.pid),
        hostname: hostname(),
        since: new Date().toISOString(),
        purpose,
      };
      await file.truncate(0);
      await file.seek(0, Deno.SeekMode.Start);
      const bytes = new TextEncoder().encode(JSON.stringify(me) + "\n");
      let off = 0;
      while (off < bytes.length) off += await file.write(bytes.subarray(off));
      await file.sync();
      ok = true;
      const since = new Date();
      let released = false;
      return {
        dir,
        since,
        createdDir,
        tookOverFrom: previous && previous.pid !== Deno.pid ? previous : undefined,
        async release(options = {}) {
          if (released) return;
          released = true;
          try {
            const cur = await Deno.stat(path).catch(() => null);
            if (cur && cur.ino === (await file.stat()).ino) await Deno.remove(path);
          } finally {
            file.close();
          }
          if (options.removeDirIfEmpty && createdDir && (await isEmptyDir(dir))) {
            await Deno.remove(dir).catch(() => {});
          }
        },
      };
    } finally {
      if (!ok) file.close();
    }
  }
  throw new Error(`collapse: could not take the lock ${path} (it keeps being replaced)`);
}

/**
 * Takes the run folder's lock for a recipe run (a live holder is a {@link UsageError} naming
 * it), says through `log` when a killed run's lock is taken over, and removes the temporary
 * files killed runs left there.
 */
export async function lockRunFolder(
  dir: string,
  purpose: string,
  log: (line: string) => void,
): Promise<RunLock> {
  let lock: RunLock;
  try {
    lock = await acquireRunLock(dir, purpose);
  } catch (e) {
    if (e instanceof RunLockedError) throw new UsageError(e.message);
    throw e;
  }
  try {
    if (lock.tookOverFrom) {
      log(
        `collapse: ${dir}: taking over the lock of pid ${lock.tookOverFrom.pid}, which no ` +
          `longer runs`,
      );
    }
    const removed = await removeStaleTempFiles(dir, { olderThan: lock.since });
    if (removed.length) {
      log(
        `collapse: ${dir}: removed ${removed.length} temporary file(s) that killed runs left ` +
          `(${removed.slice(0, 3).join(", ")}${removed.length > 3 ? ", ..." : ""})`,
      );
    }
  } catch (e) {
    await lock.release({ removeDirIfEmpty: true });
    throw e;
  }
  return lock;
}
