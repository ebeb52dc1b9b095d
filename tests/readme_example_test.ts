// The README's library example, end to end at a tiny size: everything imported from mod.ts (the
// URL-importable entry point), a Loader as the data source, Model.compile/fit/evaluate.
import { assert, assertEquals } from "@std/assert";
import {
  DATASET_STATS,
  DotRegressionLoss,
  initDevice,
  Loader,
  resnet32,
  SGD,
  syntheticDataset,
  WarmupMultiStepSchedule,
} from "../mod.ts";

Deno.test("README example: ETF + DR ResNet through mod.ts, Loader, compile/fit/evaluate", async () => {
  await initDevice();
  const { train, test } = syntheticDataset({
    numClasses: 4,
    size: 8,
    nMax: 24,
    ratio: 0.25,
    testPerClass: 6,
    seed: 0,
  });
  const stats = DATASET_STATS.synthetic;
  const trainLoader = new Loader({
    source: train,
    sampler: "class",
    batchSize: 8,
    dropLast: true,
    augment: { kind: "crop_flip", pad: 1, flip: true, ...stats },
    workers: 0,
  });
  const testLoader = new Loader({
    source: test,
    batchSize: 10,
    augment: { kind: "normalize", ...stats },
    workers: 0,
  });
  const model = resnet32({ numClasses: 4, head: "etf", widthMultiplier: 0.5, blocksPerStage: 1 });
  model.compile({
    optimizer: new SGD({
      learningRate: new WarmupMultiStepSchedule({ base: 0.05, warmupEpochs: 1, milestones: [2] }),
      momentum: 0.9,
      weightDecay: 2e-4,
    }),
    loss: new DotRegressionLoss(),
  });
  const history = await model.fit(trainLoader, {
    epochs: 2,
    validationData: testLoader,
    mixupAlpha: 1,
    verbose: 0,
  });
  assertEquals(history.epoch.length, 2);
  assert(history.history.loss.every(Number.isFinite));
  const result = await model.evaluate(testLoader, { neuralCollapse: true });
  assertEquals(result.total.reduce((a, b) => a + b, 0), test.labels.length);
  assert(result.report.top1 >= 0 && result.report.top1 <= 1);
  assert(Number.isFinite(result.neuralCollapse!.meanCosW));
  trainLoader.close();
  testLoader.close();
});
