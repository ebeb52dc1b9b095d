/**
 * collapse: a Deno-native WebGPU training microframework for the fixed simplex-ETF classifier and
 * the dot-regression loss (Yang et al., NeurIPS 2022), with Keras-like layers and long-tailed data.
 *
 * - `gpu/`: device, tensors, ops with autograd, step capture.
 * - `nn/`: layers, models (ResNet-32/50), ETF head, losses, optimizers, fit loop, checkpoints.
 * - `data/`: official dataset readers, shards, long-tailed subsets, samplers, loader.
 *
 * @example
 * ```ts ignore
 * import { initDevice, resnet32, SGD, DotRegressionLoss } from "./mod.ts";
 * await initDevice();
 * const model = resnet32({ numClasses: 10, head: "etf" });
 * model.compile({
 *   optimizer: new SGD({ learningRate: 0.1, momentum: 0.9, weightDecay: 2e-4 }),
 *   loss: new DotRegressionLoss(),
 * });
 * ```
 *
 * @module
 */
export * from "./gpu/mod.ts";
export * from "./nn/mod.ts";
export * from "./data/mod.ts";
