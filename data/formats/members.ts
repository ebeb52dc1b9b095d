// Owns uniform access to the files of a dataset given either as its official archive (.tar,
// .tar.gz, .tgz) or as the already-extracted directory: both yield the same member stream.

import { tarEntries } from "../archive/tar_stream.ts";

/** A file of a dataset, from an archive or a folder; read its content at most once. */
export interface Member {
  /** Path relative to the archive root or folder, with "/" separators. */
  name: string;
  /** The part after the last "/". */
  basename: string;
  /** Size in bytes. */
  size: number;
  /** The member's bytes, streamed. */
  chunks(): AsyncGenerator<Uint8Array>;
  /** The member's bytes, read whole. */
  bytes(): Promise<Uint8Array>;
  /** The member's bytes decoded as UTF-8. */
  text(): Promise<string>;
}

/** Returns the final path component of a "/"-separated name. */
export function basename(name: string): string {
  const i = name.lastIndexOf("/");
  return i < 0 ? name : name.slice(i + 1);
}

async function* walk(root: string, rel: string): AsyncGenerator<string> {
  const dir = rel ? `${root}/${rel}` : root;
  const names: Deno.DirEntry[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e);
  names.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of names) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory) yield* walk(root, r);
    else if (e.isFile) yield r;
  }
}

function fileMember(root: string, name: string, size: number): Member {
  const path = `${root}/${name}`;
  const chunks = async function* (): AsyncGenerator<Uint8Array> {
    const f = await Deno.open(path, { read: true });
    let got = 0;
    for await (const c of f.readable) {
      got += c.length;
      yield c;
    }
    if (got !== size) throw new Error(`${path}: changed while reading (${got} of ${size} bytes)`);
  };
  const bytes = () => Deno.readFile(path);
  return {
    name,
    basename: basename(name),
    size,
    chunks,
    bytes,
    text: () => Deno.readTextFile(path),
  };
}

/**
 * Streams the files of a dataset archive (tar, tar.gz, tgz) or of an extracted folder.
 * Breaking out of the loop stops reading the archive.
 */
export async function* datasetMembers(path: string): AsyncGenerator<Member> {
  const info = await Deno.stat(path);
  if (info.isDirectory) {
    for await (const rel of walk(path, "")) {
      const st = await Deno.stat(`${path}/${rel}`);
      yield fileMember(path, rel, st.size);
    }
    return;
  }
  for await (const e of tarEntries(path)) {
    if (e.type !== "file") continue;
    yield {
      name: e.name,
      basename: basename(e.name),
      size: e.size,
      chunks: e.chunks,
      bytes: e.bytes,
      text: e.text,
    };
  }
}

/** Splits a text file into trimmed non-empty lines. */
export function lines(text: string): string[] {
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
}
