/**
 * Verification of local dataset files against their published MD5, once per file: the digest is
 * cached next to the file (`<file>.verified.json`, keyed by its size and modification time, as
 * torchvision's integrity check would recompute it), so a later run costs one `stat`. A file whose
 * digest differs is not the official release: it is refused, or with `verify: false`
 * (`--no-verify`) accepted with a one-line warning (the readers' CRC and structure checks still
 * apply).
 *
 * @module
 */

import { hashFile } from "../archive/checksum.ts";
import type { CatalogEntry } from "../catalog.ts";
import { DataVerificationError } from "./errors.ts";

/** Suffix of the cached digest next to a verified file. */
export const VERDICT_SUFFIX = ".verified.json";

/** The identity of a source file: what the prepared-shard cache is keyed by. */
export interface FileIdentity {
  /** Bytes. */
  size: number;
  /** Modification time, ms since the epoch (0 when the platform gives none). */
  mtimeMs: number;
  /** Lowercase hex MD5 of the whole file. */
  md5: string;
}

interface Verdict extends FileIdentity {
  format: "collapse-md5";
}

async function statIdentity(path: string): Promise<{ size: number; mtimeMs: number }> {
  const st = await Deno.stat(path);
  return { size: st.size, mtimeMs: st.mtime?.getTime() ?? 0 };
}

async function readVerdict(path: string): Promise<Verdict | null> {
  try {
    const v = JSON.parse(await Deno.readTextFile(`${path}${VERDICT_SUFFIX}`)) as Verdict;
    return v.format === "collapse-md5" && typeof v.md5 === "string" ? v : null;
  } catch {
    return null;
  }
}

/** Stores a file's digest next to it (best effort: a read-only folder just means no cache). */
export async function recordDigest(path: string, md5: string): Promise<FileIdentity> {
  const id = { ...(await statIdentity(path)), md5 };
  const v: Verdict = { format: "collapse-md5", ...id };
  const tmp = `${path}${VERDICT_SUFFIX}.tmp-${Deno.pid}`;
  try {
    await Deno.writeTextFile(tmp, JSON.stringify(v) + "\n");
    await Deno.rename(tmp, `${path}${VERDICT_SUFFIX}`);
  } catch {
    await Deno.remove(tmp).catch(() => {});
  }
  return id;
}

/**
 * The identity of a file with its MD5, from the cached digest when size and mtime still match,
 * else by hashing it (and caching the result).
 *
 * @example
 * ```ts
 * import { fileIdentity } from "./verify.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a.txt`, "abc");
 * console.log((await fileIdentity(`${dir}/a.txt`)).md5); // 900150983cd24fb0d6963f7d28e17f72
 * ```
 */
export async function fileIdentity(
  path: string,
  log?: (line: string) => void,
): Promise<FileIdentity & { cached: boolean }> {
  const now = await statIdentity(path);
  const v = await readVerdict(path);
  if (v && v.size === now.size && v.mtimeMs === now.mtimeMs) {
    return { size: v.size, mtimeMs: v.mtimeMs, md5: v.md5, cached: true };
  }
  if (now.size > 64 * 2 ** 20) log?.(`collapse: checking ${path} against its published MD5 (once)`);
  const md5 = await hashFile(path, "md5");
  return { ...(await recordDigest(path, md5)), cached: false };
}

/** What {@linkcode checkOfficial} concluded. */
export interface OfficialCheck extends FileIdentity {
  /** true: the published MD5; false: another file, accepted because `verify` is off. */
  official: boolean;
}

/**
 * Checks a local file against its published MD5 (`expectedMd5`, else the catalog's). With
 * `verify` on, a mismatch throws {@linkcode DataVerificationError} naming the file, the digests
 * and `--no-verify`; with `verify` off it logs one warning line and returns `official: false`.
 */
export async function checkOfficial(
  path: string,
  entry: CatalogEntry,
  options: { verify: boolean; expectedMd5?: string; log: (line: string) => void },
): Promise<OfficialCheck> {
  const id = await fileIdentity(path, options.log);
  const expected = (options.expectedMd5 ?? entry.md5 ?? "").toLowerCase();
  const official = expected === "" || id.md5 === expected;
  if (!official && options.verify) {
    throw new DataVerificationError(
      `${path} is not the official ${entry.fileName}: its MD5 is ${id.md5}, the published one ` +
        `${expected}. It may be re-encoded, truncated, corrupted or a custom copy.\n` +
        `Replace it with the official file${entry.url ? ` (${entry.url})` : ""}, or accept it ` +
        `as it is with --no-verify (loadDataset option verify: false); the format's CRC and ` +
        `structure checks still apply.`,
      path,
    );
  }
  if (!official) {
    options.log(
      `collapse: warning: ${path} is not the official ${entry.fileName} (MD5 ${id.md5}, ` +
        `published ${expected}); used as it is (--no-verify)`,
    );
  }
  return { size: id.size, mtimeMs: id.mtimeMs, md5: id.md5, official };
}
