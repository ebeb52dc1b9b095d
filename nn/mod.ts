/**
 * The neural-network layer: layers, models, backbones, heads, losses (and the training exports,
 * added by nn/training). Initializers are exported as the `initializers` namespace (their names,
 * such as `zeros`, would clash with tensor creation ops).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { initDevice } from "@collapse/collapse/gpu";
 * import { Dense, Sequential } from "@collapse/collapse/nn";
 *
 * await initDevice();
 * const x = [[0, 0], [0, 1], [1, 0], [1, 1]], y = [0, 1, 1, 0]; // XOR
 * const model = new Sequential([new Dense(8, { activation: "relu" }), new Dense(2)], {
 *   inputShape: [2],
 *   seed: 0,
 * });
 * model.compile({ optimizer: "adamw", loss: "sparse_categorical_crossentropy" });
 * const { history } = await model.fit(x, y, { epochs: 20, batchSize: 4 });
 * assert(history.loss[19] < history.loss[0]);
 * ```
 *
 * @module
 */
export type { CallOptions, ModelOutputs, Trainable, Weight, WeightLayout } from "./types.ts";
export * from "./options.ts";
export * as initializers from "./init.ts";
export {
  type Initializer,
  type InitializerLike,
  type InitializerName,
  setInitSeed,
  withInitRng,
} from "./init.ts";
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
