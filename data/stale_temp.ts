/**
 * Removal of temporary files and folders that killed processes left behind. Writers here name
 * their temporaries after their process id (`train.tmp-<pid>-<time>`, `list-<pid>.txt`,
 * `prepared.json.tmp-<pid>`); one whose process is gone is stale and is removed at the next start.
 *
 * @module
 */

/** Matches the process id in a temporary's name: `.tmp-<pid>` or `.list-<pid>.`. */
const TEMP_PID = /\.(?:tmp|list)-(\d+)(?:[-.]|$)/;

/** The process id a temporary's name carries, or null when it is not a temporary. */
export function tempOwner(name: string): number | null {
  const m = TEMP_PID.exec(name);
  return m ? Number(m[1]) : null;
}

/**
 * Whether process `pid` is running. On Linux from `/proc`; elsewhere unknown, reported as running
 * (a temporary is then only removed once it is older than a day).
 */
export async function isProcessAlive(pid: number): Promise<boolean | null> {
  if (pid === Deno.pid) return true;
  if (Deno.build.os !== "linux") return null;
  try {
    await Deno.stat(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Removes the temporaries in `dir` (not recursive) whose owner process is gone, or, where that
 * cannot be known, that are older than a day. Returns the removed paths.
 *
 * @example
 * ```ts
 * import { removeStaleTemps } from "./stale_temp.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.mkdir(`${dir}/train.tmp-999999999-abc`);
 * console.log((await removeStaleTemps(dir)).length); // 1 (no process has that id)
 * ```
 */
export async function removeStaleTemps(dir: string): Promise<string[]> {
  const removed: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch {
    return removed;
  }
  for (const e of entries) {
    const pid = tempOwner(e.name);
    if (pid === null) continue;
    const path = `${dir}/${e.name}`;
    const alive = await isProcessAlive(pid);
    let stale = alive === false;
    if (alive === null) {
      const st = await Deno.lstat(path).catch(() => null);
      stale = !!st?.mtime && Date.now() - st.mtime.getTime() > 86_400_000;
    }
    if (!stale) continue;
    try {
      await Deno.remove(path, { recursive: true });
      removed.push(path);
    } catch { /* removed by someone else meanwhile */ }
  }
  return removed;
}
