// Owns fetching dataset files into the local cache: resumable HTTP download to "<dest>.part"
// (Range / 206), progress on stderr, md5/sha256/size verification, atomic rename into place, and
// errors that tell the user exactly which file to fetch by hand and where to put it.

import { ProgressBar } from "jsr:@std/cli@^1.0.32/unstable-progress-bar";
import { hashFile } from "./archive/checksum.ts";

/** What to fetch and how to check it. */
export interface EnsureFileOptions {
  /** Official URL. May be "" for files that can only be obtained by hand (then `manual` explains). */
  url: string;
  /** Expected lowercase hex md5 of the whole file. */
  md5?: string;
  /** Expected lowercase hex sha256 of the whole file. */
  sha256?: string;
  /** Expected size in bytes. */
  size?: number;
  /** Final path. Default: `<cacheDir>/<fileName>`. */
  dest?: string;
  /** File name in the cache. Default: the last path segment of the URL. */
  fileName?: string;
  /** Cache folder. Default: $COLLAPSE_DATA_DIR, else ~/.cache/collapse. */
  cacheDir?: string;
  /** Show a progress bar on stderr. Default: when stderr is a terminal. */
  progress?: boolean;
  /** Extra advice appended to the by-hand instructions (licence pages, registration...). */
  manual?: string;
  /** Aborts the transfer. */
  signal?: AbortSignal;
  /** fetch implementation (tests). */
  fetch?: typeof fetch;
}

/** The cache folder: the option, else $COLLAPSE_DATA_DIR, else ~/.cache/collapse. */
export function dataDir(cacheDir?: string): string {
  if (cacheDir) return cacheDir;
  let env: string | undefined;
  let home: string | undefined;
  try {
    env = Deno.env.get("COLLAPSE_DATA_DIR");
    home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE");
  } catch { /* no env permission: fall through */ }
  if (env) return env;
  return `${home ?? "."}/.cache/collapse`;
}

function fileNameOf(url: string): string {
  const path = url ? new URL(url).pathname : "";
  const name = decodeURIComponent(path.slice(path.lastIndexOf("/") + 1));
  if (!name) throw new Error(`ensureFile: cannot infer a file name from URL "${url}"`);
  return name;
}

async function sizeOf(path: string): Promise<number | null> {
  try {
    const st = await Deno.stat(path);
    return st.isFile ? st.size : null;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** Checks size and checksums of a file; returns a reason on mismatch, else null. */
async function verify(path: string, o: EnsureFileOptions): Promise<string | null> {
  const size = await sizeOf(path);
  if (size === null) return "file missing";
  if (o.size !== undefined && size !== o.size) return `size ${size} bytes, expected ${o.size}`;
  if (o.md5) {
    const got = await hashFile(path, "md5");
    if (got !== o.md5.toLowerCase()) return `md5 ${got}, expected ${o.md5}`;
  }
  if (o.sha256) {
    const got = await hashFile(path, "sha256");
    if (got !== o.sha256.toLowerCase()) return `sha256 ${got}, expected ${o.sha256}`;
  }
  return null;
}

function byHand(o: EnsureFileOptions, dest: string, reason: string): Error {
  const name = dest.slice(dest.lastIndexOf("/") + 1);
  const check = [
    o.size !== undefined ? `${o.size} bytes` : "",
    o.md5 ? `md5 ${o.md5}` : "",
    o.sha256 ? `sha256 ${o.sha256}` : "",
  ].filter(Boolean).join(", ");
  const from = o.url ? ` from ${o.url}` : "";
  return new Error(
    `Could not obtain ${name}: ${reason}.\n` +
      `Fetch it by hand${from} and put it at ${dest}` +
      (check ? ` (expected ${check})` : "") + "." +
      (o.manual ? `\n${o.manual}` : ""),
  );
}

/** Reports progress on stderr: a ProgressBar on terminals, else nothing. */
function progressReporter(show: boolean, start: number, total: number | undefined) {
  if (!show || !total) return { update: (_: number) => {}, stop: async () => {} };
  const bar = new ProgressBar({ max: total, value: start });
  return {
    update: (v: number) => void (bar.value = v),
    stop: () => bar.stop(),
  };
}

/** A download failure whose message is the reason shown to the user. */
class Failure extends Error {}

/** Downloads url into part (resuming when part exists). Throws a Failure with the reason. */
async function transfer(o: EnsureFileOptions, part: string): Promise<void> {
  const f = o.fetch ?? fetch;
  let have = (await sizeOf(part)) ?? 0;
  if (o.size !== undefined && have > o.size) {
    await Deno.remove(part);
    have = 0;
  }
  if (o.size !== undefined && have === o.size) return; // complete; verification follows
  const headers: HeadersInit = have > 0 ? { Range: `bytes=${have}-` } : {};
  let res: Response;
  try {
    res = await f(o.url, { headers, signal: o.signal });
  } catch (e) {
    throw new Failure(`network error (${(e as Error).message})`);
  }
  if (res.status === 416 && have > 0) {
    await res.body?.cancel();
    return; // the part already holds everything the server has; verification decides
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new Failure(`HTTP ${res.status} ${res.statusText}`.trim());
  }
  let append = false;
  if (res.status === 206) {
    const range = res.headers.get("content-range") ?? "";
    const m = /bytes (\d+)-/.exec(range);
    if (!m || Number(m[1]) !== have) {
      await res.body?.cancel();
      await Deno.remove(part).catch(() => {});
      throw new Failure(
        `server resumed at the wrong offset (${range || "no Content-Range"}); retry`,
      );
    }
    append = true;
  }
  const start = append ? have : 0;
  const len = Number(res.headers.get("content-length") ?? NaN);
  const total = o.size ?? (Number.isFinite(len) ? start + len : undefined);
  const show = o.progress ?? Deno.stderr.isTerminal();
  const bar = progressReporter(show, start, total);
  const file = await Deno.open(part, {
    write: true,
    create: true,
    append,
    truncate: !append,
  });
  let done = start;
  try {
    if (!res.body) throw new Failure("empty response body");
    for await (const chunk of res.body) {
      let w = 0;
      while (w < chunk.length) w += await file.write(chunk.subarray(w));
      done += chunk.length;
      bar.update(done);
    }
  } catch (e) {
    throw e instanceof Failure ? e : new Failure(
      `transfer interrupted after ${done} bytes (${(e as Error).message}); ` +
        `rerun to resume from ${part}`,
    );
  } finally {
    file.close();
    await bar.stop();
  }
  if (Number.isFinite(len) && done - start !== len) {
    throw new Failure(`transfer interrupted after ${done} bytes; rerun to resume from ${part}`);
  }
}

/**
 * Makes sure a verified copy of a file is at its destination, downloading it if needed, and
 * returns the path. A present file with the right checksum is used without any network access.
 * Downloads go to `<dest>.part`, resume with HTTP Range, are verified, then renamed into place;
 * a failed check leaves nothing at `dest`. On failure the Error says what to fetch by hand,
 * from where, and where to put it.
 *
 * @example
 * ```ts
 * const path = await ensureFile({
 *   url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
 *   md5: "c32a1d4ab5d03f1284b67883e8d87530",
 *   size: 170052171,
 * });
 * ```
 */
export async function ensureFile(options: EnsureFileOptions): Promise<string> {
  const dir = dataDir(options.cacheDir);
  const dest = options.dest ?? `${dir}/${options.fileName ?? fileNameOf(options.url)}`;
  const parent = dest.includes("/") ? dest.slice(0, dest.lastIndexOf("/")) : ".";
  if ((await sizeOf(dest)) !== null) {
    const bad = await verify(dest, options);
    if (bad === null) return dest;
    // Keep the user's file for inspection, but out of the way.
    await Deno.rename(dest, `${dest}.bad`);
    if (!options.url) throw byHand(options, dest, `the file there was wrong (${bad})`);
  }
  if (!options.url) throw byHand(options, dest, "it cannot be downloaded automatically");
  await Deno.mkdir(parent, { recursive: true });
  const part = `${dest}.part`;
  try {
    await transfer(options, part);
  } catch (e) {
    if (!(e instanceof Failure)) throw e;
    if ((await sizeOf(part)) === 0) await Deno.remove(part).catch(() => {});
    throw byHand(options, dest, e.message);
  }
  const bad = await verify(part, options);
  if (bad !== null) {
    await Deno.remove(part).catch(() => {});
    throw byHand(options, dest, `the download was corrupt (${bad})`);
  }
  await Deno.rename(part, dest);
  return dest;
}
