/**
 * The WebGPU runtime under collapse: the device, GPU tensors, differentiable ops (matmul, conv2d,
 * batch norm, pooling, softmax cross-entropy, the dot-regression loss, ...) with reverse-mode
 * autograd, memory scopes (`tidy`), parameter arenas with optimizer steps on the GPU, and step
 * capture: a training step recorded once and replayed with one submission. It knows nothing of
 * layers.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { grad, initDevice, matmul, sum, tensor } from "@collapse/collapse/gpu";
 *
 * await initDevice();
 * const x = tensor([1, 2], [1, 2]);
 * const w = tensor([1, 0, 0, 1], [2, 2]);
 * w.requiresGrad = true;
 * const [dw] = grad(sum(matmul(x, w)), [w]); // d sum(x w) / dw = x^T 1
 * assertEquals(await dw!.array(), [1, 1, 2, 2]);
 * ```
 *
 * @module
 */
export const VERSION = "0.1.0";
export * from "./device.ts";
export * from "./dtype.ts";
export {
  type Bindable,
  CapturedStep,
  type CopyRecord,
  type DeviceErrorInfo,
  deviceErrorWgsl,
  type DispatchRecord,
  Engine,
  engine,
  type EngineStats,
  type Launch,
  registerDeviceError,
  type StepRecord,
  Storage,
} from "./engine.ts";
export { BufferPool, type PoolStats } from "./buffer_pool.ts";
export { type DispatchTiming, timeDispatches, timestampsAvailable } from "./kernel_timer.ts";
export * from "./tensor.ts";
export * from "./scope.ts";
export * from "./autograd.ts";
export * from "./rng.ts";
export * from "./ops/mod.ts";
export { ParamArena, type ParamSlot } from "./param_arena.ts";
export type { GemmPlan } from "./kernels/tuning.ts";
export type { GemmConfig, RegblockConfig, TiledConfig } from "./kernels/matmul_gemm.ts";
export {
  clearKeptPlans,
  exportKeptPlans,
  importKeptPlans,
  keptPlanCount,
  type KeptPlans,
  type TunedGemm,
  tuneGemms,
  type TuneOptions,
  type TuneReport,
} from "./ops/gemm_tune.ts";
