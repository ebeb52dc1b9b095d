/** Keras-like layers: the base class, symbolic inputs, and the built-in layers. @module */
export * from "./layer.ts";
export * from "./conv2d.ts";
export * from "./dense.ts";
export * from "./batch_normalization.ts";
export * from "./activation.ts";
export * from "./add.ts";
export * from "./pooling.ts";
export * from "./flatten.ts";
export * from "./dropout.ts";
export * from "./l2_normalize.ts";
export * from "./shortcut.ts";
