/**
 * The op library: every differentiable tensor operation, forward and backward.
 * One file per op family; kernels (WGSL) live in ../kernels/.
 * @module
 */
export * from "./creation.ts";
