/**
 * collapse: a Deno-native WebGPU training microframework for the fixed simplex-ETF classifier and
 * the dot-regression loss (Yang et al., NeurIPS 2022), with Keras-like layers and long-tailed data.
 *
 * - `gpu/`: device, tensors, ops with autograd, step capture.
 * - `nn/`: layers, models (ResNet-32/50), ETF head, losses, optimizers, fit loop, checkpoints.
 * - `data/`: official dataset readers, shards, long-tailed subsets, samplers, loader.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import {
 *   DATASET_STATS,
 *   DotRegressionLoss,
 *   initDevice,
 *   Loader,
 *   resnet32,
 *   SGD,
 *   syntheticDataset,
 * } from "@collapse/collapse";
 *
 * await initDevice();
 * // A built-in long-tailed set of 10 classes (16x16 gratings), nothing to download.
 * const { train, test } = syntheticDataset({ size: 16, nMax: 20, ratio: 0.1, testPerClass: 2 });
 * const augment = { kind: "normalize", ...DATASET_STATS.synthetic } as const;
 * using trainLoader = new Loader({ source: train, batchSize: 64, augment, workers: 0 });
 * using testLoader = new Loader({ source: test, batchSize: 64, augment, workers: 0 });
 * const model = resnet32({ numClasses: 10, head: "etf" }); // fixed simplex-ETF classifier
 * model.compile({
 *   optimizer: new SGD({ learningRate: 0.1, momentum: 0.9, weightDecay: 2e-4 }),
 *   loss: new DotRegressionLoss(),
 * });
 * await model.fit(trainLoader, { epochs: 1 });
 * const result = await model.evaluate(testLoader, { neuralCollapse: true });
 * assert(result.report.top1 >= 0 && Number.isFinite(result.neuralCollapse!.nc1));
 * ```
 *
 * @module
 */
export * from "./gpu/mod.ts";
export * from "./nn/mod.ts";
export * from "./data/mod.ts";
