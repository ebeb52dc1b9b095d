/**
 * The neural-network layer: layers, models, backbones, heads, losses (and the training exports,
 * added by nn/training). Initializers are exported as the `initializers` namespace (their names,
 * such as `zeros`, would clash with tensor creation ops).
 * @module
 */
export type { CallOptions, ModelOutputs, Trainable, Weight, WeightLayout } from "./types.ts";
export * from "./options.ts";
export * as initializers from "./init.ts";
export { type Initializer, type InitializerLike, setInitSeed, withInitRng } from "./init.ts";
export * from "./layers/mod.ts";
export * from "./model/mod.ts";
export * from "./heads/mod.ts";
export * from "./models/mod.ts";
export * from "./losses/mod.ts";
export * from "./training/mod.ts";
export * from "./optimizers/mod.ts";
export * from "./checkpoint.ts";
export * from "./schedules.ts";
export * from "./metrics/calibration.ts";
export * from "./metrics/classification.ts";
export * from "./metrics/neural_collapse.ts";
export * from "./io/mod.ts";
