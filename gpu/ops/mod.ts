/**
 * The op library: every differentiable tensor operation, forward and backward.
 * One file per op family; kernels (WGSL) live in ../kernels/. Importing this module also plugs
 * `add`/`onesLike` into the autograd core.
 * @module
 */
import { gradHelpers } from "../autograd.ts";
import { onesLike } from "./creation.ts";
import { add } from "./elementwise.ts";

export * from "./creation.ts";
export * from "./elementwise.ts";
export * from "./reduce.ts";
export * from "./shape.ts";
export * from "./broadcast.ts";
export * from "./indexing.ts";
export * from "./softmax.ts";
export * from "./accumulate.ts";
export * from "./matmul.ts";
export * from "./conv2d.ts";
export * from "./batch_norm.ts";
export * from "./pool.ts";
export * from "./normalize.ts";
export * from "./dot_regression.ts";
export * from "./optim.ts";
export * from "./dropout.ts";
export * from "./dense_concat.ts";
export * from "./preact_conv.ts";

gradHelpers.add = add;
gradHelpers.onesLike = onesLike;
