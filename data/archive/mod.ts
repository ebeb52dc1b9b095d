// Owns the public surface of data/archive: streaming tar/gzip reading and file checksums.
/** @module */
export { ByteReader, forEachRecord } from "./byte_reader.ts";
export { gunzipStream, inflateZlibStream, isGzip, openByteStream } from "./gzip_stream.ts";
export type { OpenStreamOptions } from "./gzip_stream.ts";
export { readTarMembers, tarEntries } from "./tar_stream.ts";
export { readToEnd } from "./read_to_end.ts";
export type { TarEntry, TarOptions } from "./tar_stream.ts";
export { createHasher, hashFile } from "./checksum.ts";
export type { HashAlgorithm, Hasher } from "./checksum.ts";
