/**
 * Whether a process id names a running process, for stale temporary files and run-folder locks
 * left by killed processes. Linux and other systems with `/proc` answer exactly; elsewhere the
 * answer is unknown.
 *
 * @module
 */

/**
 * True when `pid` runs, false when it does not, undefined when this system cannot tell (no
 * `/proc`). A zombie (exited, not yet reaped) counts as not running.
 *
 * @example
 * ```ts
 * import { processAlive } from "./process.ts";
 * console.log(processAlive(Deno.pid)); // true (on Linux)
 * ```
 */
export function processAlive(pid: number): boolean | undefined {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    Deno.statSync("/proc/self");
  } catch {
    return undefined;
  }
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // "pid (comm) state ...": the state follows the last ')'.
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/**
 * The start time of a process in clock ticks since boot (`/proc/<pid>/stat` field 22), which
 * tells a process from a later one that reuses its pid; undefined where unknown.
 */
export function processStartTime(pid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const v = Number(fields[19]);
    return Number.isFinite(v) ? v : undefined;
  } catch {
    return undefined;
  }
}
