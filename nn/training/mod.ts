/**
 * Training: `compile` (optimizer, loss and metrics as objects or names), `fit` (the captured fast
 * step and the epoch loop, over a DataSource or in-memory arrays), `evaluate` (GPU-accumulated
 * accuracy groups, top-k and neural-collapse metrics), `predict`, the History, the callbacks and
 * the Keras callbacks. `Model.compile/fit/evaluate/predict` call these.
 * @module
 */
export * from "./state.ts";
export * from "./data_source.ts";
export * from "./train_step.ts";
export * from "./train_steps.ts";
export * from "./fit.ts";
export * from "./evaluate.ts";
export * from "./predict.ts";
export * from "./history.ts";
export * from "./callbacks.ts";
export * from "./keras_callbacks.ts";
