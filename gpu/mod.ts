/** The WebGPU runtime: device, tensors, kernels, autograd and step capture. @module */
export const VERSION = "0.1.0";
export * from "./device.ts";
export * from "./dtype.ts";
export { CapturedStep, engine, type EngineStats } from "./engine.ts";
export * from "./tensor.ts";
export * from "./scope.ts";
export * from "./autograd.ts";
export * from "./rng.ts";
export * from "./ops/mod.ts";
export { ParamArena } from "./param_arena.ts";
