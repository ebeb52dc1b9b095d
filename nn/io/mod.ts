/**
 * Checkpoint I/O: the safetensors format (with data checksums), atomic file writes and the
 * clean-up of temporary files that killed writers left.
 *
 * @module
 */
export * from "./atomic_file.ts";
export * from "./safetensors.ts";
export * from "./process.ts";
