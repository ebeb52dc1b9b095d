/**
 * Training: `compile`, `fit` (the captured fast step and the epoch loop), `evaluate` (GPU-
 * accumulated accuracy groups and neural-collapse metrics), `predict`, the History and the
 * callbacks. Importing this module installs them behind `Model.compile/fit/evaluate`.
 * @module
 */
import { type Model, registerTrainer } from "../model/model.ts";
import { evaluate, type EvaluateOptions } from "./evaluate.ts";
import { fit, type FitOptions } from "./fit.ts";
import { compile, type CompileOptions, type DataSource } from "./state.ts";

export * from "./state.ts";
export * from "./train_step.ts";
export * from "./train_steps.ts";
export * from "./fit.ts";
export * from "./evaluate.ts";
export * from "./predict.ts";
export * from "./history.ts";
export * from "./callbacks.ts";

registerTrainer({
  compile: (model: Model, config: unknown) => compile(model, config as CompileOptions),
  fit: (model: Model, ...args: unknown[]) =>
    fit(model, args[0] as DataSource, args[1] as FitOptions),
  evaluate: (model: Model, ...args: unknown[]) =>
    evaluate(model, args[0] as DataSource, args[1] as EvaluateOptions | undefined),
});
