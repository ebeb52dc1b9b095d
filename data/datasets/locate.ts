/**
 * Finding a dataset's official files: `<dataDir>/<fileName>` or an extracted folder there, else a
 * verified download into `dataDir`. Every missing file is looked for before anything is reported,
 * so one {@linkcode DataUnavailableError} names them all, with where to fetch each and where to
 * put it.
 *
 * @module
 */

import { CATALOG, type CatalogEntry } from "../catalog.ts";
import { ensureFile } from "../download.ts";
import { pathExists } from "../path_exists.ts";
import { DataUnavailableError } from "./errors.ts";
import type { DatasetFile } from "./registry.ts";
import { recordDigest } from "./verify.ts";

/** An official file (or the extracted folder used instead) as found or fetched. */
export interface SourceFile {
  /** Catalog id, e.g. `"cifar10"`, or `"imagenet"` for the ImageNet image folder. */
  id: string;
  /** Where it is. */
  path: string;
  /** "local": found in the data folder; "downloaded": fetched and verified now. */
  origin: "local" | "downloaded";
  /** An archive or list file, or an extracted folder. */
  kind: "file" | "folder";
  /** Bytes (files; for folders the sum over their files). */
  size?: number;
  /** Modification time in ms (for folders the latest over their files). */
  mtimeMs?: number;
  /** Files in a folder. */
  files?: number;
  /** MD5 of a file. */
  md5?: string;
  /**
   * true: the published MD5 matched; false: it differs and was accepted (`verify: false`);
   * undefined: nothing published to compare with (folders, ImageNet-LT lists).
   */
  official?: boolean;
}

function mib(bytes: number | undefined): string {
  return bytes === undefined ? "" : ` (${Math.round(bytes / 2 ** 20).toLocaleString("en-US")} MiB)`;
}

/** Options of {@linkcode locateFiles}. */
export interface LocateOptions {
  /** Try to download missing files (default true). */
  download?: boolean;
  /** Prefix of the error message, e.g. `"cifar10_lt needs CIFAR-10"`. */
  context?: string;
}

/**
 * The local paths of a dataset's files, downloading (and verifying) what is missing. Throws one
 * {@linkcode DataUnavailableError} naming every file that is neither there nor downloadable.
 */
export async function locateFiles(
  dataDir: string,
  files: readonly DatasetFile[],
  options: LocateOptions = {},
): Promise<SourceFile[]> {
  const found: (SourceFile | null)[] = [];
  for (const f of files) found.push(await findLocal(dataDir, f));
  const problems: string[] = [];
  for (let i = 0; i < files.length; i++) {
    if (found[i]) continue;
    const entry: CatalogEntry = CATALOG[files[i].id];
    const alt = files[i].folders.length
      ? `\n  The extracted folder ${
        files[i].folders.map((f) => `${dataDir}/${f}/`).join(" or ")
      } works too.`
      : "";
    if (options.download === false) {
      problems.push(
        `${entry.fileName}${mib(entry.size)}: put it at ${dataDir}/${entry.fileName}` +
          (entry.url ? ` (from ${entry.url})` : entry.manual ? `. ${entry.manual}` : "") + alt,
      );
      continue;
    }
    try {
      const path = await ensureFile({ ...entry, cacheDir: dataDir });
      if (entry.md5) await recordDigest(path, entry.md5);
      found[i] = { id: files[i].id, path, origin: "downloaded", kind: "file" };
    } catch (e) {
      problems.push(
        `${entry.fileName}${mib(entry.size)}: ${(e as Error).message.replace(/\n/g, "\n  ")}${alt}`,
      );
    }
  }
  if (problems.length) {
    const what = problems.length === 1
      ? "a file is missing"
      : `${problems.length} files are missing`;
    throw new DataUnavailableError(
      `${options.context ? `${options.context}: ` : ""}${what} from ${dataDir}` +
        (options.download === false ? "" : " and could not be downloaded") + ":\n" +
        problems.map((p) => `- ${p}`).join("\n") +
        `\nOr point --data-dir (the dataDir option) at a folder that holds ${
          problems.length === 1 ? "it" : "them"
        }.`,
    );
  }
  return found as SourceFile[];
}

/** The file or one of its extracted folders in `dataDir`, or null. */
export async function findLocal(dataDir: string, f: DatasetFile): Promise<SourceFile | null> {
  const entry: CatalogEntry = CATALOG[f.id];
  for (const name of [entry.fileName, ...f.folders]) {
    const p = `${dataDir}/${name}`;
    if (!(await pathExists(p))) continue;
    const st = await Deno.stat(p);
    return { id: f.id, path: p, origin: "local", kind: st.isDirectory ? "folder" : "file" };
  }
  return null;
}

/** Size, latest mtime and file count of a folder tree (the identity of an extracted dataset). */
export async function folderIdentity(
  dir: string,
): Promise<{ size: number; mtimeMs: number; files: number }> {
  let size = 0, mtimeMs = 0, files = 0;
  const walk = async (d: string): Promise<void> => {
    for await (const e of Deno.readDir(d)) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory) await walk(p);
      else if (e.isFile) {
        const st = await Deno.stat(p);
        size += st.size;
        mtimeMs = Math.max(mtimeMs, st.mtime?.getTime() ?? 0);
        files++;
      }
    }
  };
  await walk(dir);
  return { size, mtimeMs, files };
}
