/**
 * Checkpoint I/O: the safetensors format and atomic file writes.
 *
 * @module
 */
export * from "./atomic_file.ts";
export * from "./safetensors.ts";
