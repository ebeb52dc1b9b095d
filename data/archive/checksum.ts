// Owns streaming file checksums (md5, sha256) via Deno's built-in node:crypto hashing, which
// WebCrypto lacks for md5 and for incremental updates.

import { createHash } from "node:crypto";

/** Supported digest algorithms. */
export type HashAlgorithm = "md5" | "sha256";

/** An incremental hasher: feed bytes, then read the lowercase hex digest. */
export interface Hasher {
  /** Feeds the next bytes. */
  update(bytes: Uint8Array): void;
  /** The digest of every byte fed so far, as lowercase hex. */
  hex(): string;
}

/** Creates an incremental md5/sha256 hasher. */
export function createHasher(algorithm: HashAlgorithm): Hasher {
  const h = createHash(algorithm);
  return {
    update: (bytes) => void h.update(bytes),
    hex: () => h.digest("hex"),
  };
}

/**
 * Hashes a file without loading it whole; returns the lowercase hex digest.
 *
 * @example
 * ```ts
 * const md5 = await hashFile("cifar-10-binary.tar.gz", "md5");
 * ```
 */
export async function hashFile(path: string, algorithm: HashAlgorithm): Promise<string> {
  const h = createHasher(algorithm);
  const file = await Deno.open(path, { read: true });
  for await (const chunk of file.readable) h.update(chunk);
  return h.hex();
}
