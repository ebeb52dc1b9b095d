// Every options object of the nn API is checked where it is taken: an unknown key (with a likely
// intended one), a missing required key or a value that is not an object is an error naming the
// key and the allowed ones; the option lists cannot drift from their interfaces (optionKeys).
import { assert, assertRejects, assertStringIncludes, assertThrows } from "@std/assert";
import { initDevice } from "../gpu/device.ts";
import "../gpu/ops/mod.ts";
import {
  Activation,
  AdamW,
  Add,
  arraySource,
  AveragePooling2D,
  BalancedSoftmaxLoss,
  BatchNormalization,
  CheckpointCallback,
  Classifier,
  compile,
  Conv2D,
  CrossEntropyLoss,
  CsvLogger,
  Dense,
  DenseClassifier,
  DotRegressionLoss,
  Dropout,
  EarlyStopping,
  ETFClassifier,
  evaluate,
  exportTorchStateDict,
  fit,
  Flatten,
  Functional,
  GlobalAveragePooling2D,
  importTorchStateDict,
  initializers,
  input,
  JsonlLogger,
  L2Normalize,
  LDAMLoss,
  LearningRateScheduler,
  loadTorchState,
  LogitAdjustedLoss,
  MaxPooling2D,
  Model,
  ModelCheckpoint,
  predict,
  ProgressBarCallback,
  ReduceLROnPlateau,
  ReLU,
  resnet32,
  resnet50,
  Sequential,
  SGD,
  ShortcutA,
  WarmupMultiStepSchedule,
} from "../mod.ts";
import { checkOptions, optionKeys, suggestKey } from "../nn/options.ts";

await initDevice();

const BOGUS = { bogus: 1 } as Record<string, unknown>;
// deno-lint-ignore no-explicit-any
type Any = any;

/** Constructors/calls taking an options object, each given an unknown key. */
const SYNC: [string, (o: Any) => unknown][] = [
  ["new Conv2D()", (o) => new Conv2D(8, 3, o)],
  ["new Dense()", (o) => new Dense(4, o)],
  ["new BatchNormalization()", (o) => new BatchNormalization(o)],
  ["new Activation()", (o) => new Activation("relu", o)],
  ["new ReLU()", (o) => new ReLU(o)],
  ["new MaxPooling2D()", (o) => new MaxPooling2D(2, o)],
  ["new AveragePooling2D()", (o) => new AveragePooling2D(2, o)],
  ["new GlobalAveragePooling2D()", (o) => new GlobalAveragePooling2D(o)],
  ["new Dropout()", (o) => new Dropout(0.5, o)],
  ["new L2Normalize()", (o) => new L2Normalize(o)],
  ["new ShortcutA()", (o) => new ShortcutA(8, o)],
  ["new Add()", (o) => new Add(o)],
  ["new Flatten()", (o) => new Flatten(o)],
  ["new ETFClassifier()", (o) => new ETFClassifier(4, o)],
  ["new DenseClassifier()", (o) => new DenseClassifier(4, o)],
  ["new Sequential()", (o) => new Sequential([], o)],
  ["new Functional()", (o) => new Functional({ inputs: input([2]), outputs: input([2]), ...o })],
  ["new Model()", (o) => new Model(o)],
  ["new Classifier()", (o) => new Classifier(new Dense(4), new DenseClassifier(2), o)],
  ["new ResNet32()", (o) => resnet32(o)],
  ["new ETFClassifier()", (o) => resnet32({ numClasses: 4, head: "etf", etf: o })],
  ["new ResNet50()", (o) => resnet50(o)],
  ["input()", (o) => input([3], o)],
  ["new SGD()", (o) => new SGD(o)],
  ["new AdamW()", (o) => new AdamW(o)],
  ["new WarmupMultiStepSchedule()", (o) => new WarmupMultiStepSchedule({ base: 0.1, ...o })],
  ["new CrossEntropyLoss()", (o) => new CrossEntropyLoss(o)],
  ["new DotRegressionLoss()", (o) => new DotRegressionLoss(o)],
  ["new BalancedSoftmaxLoss()", (o) => new BalancedSoftmaxLoss({ classCounts: [2, 1], ...o })],
  ["new LogitAdjustedLoss()", (o) => new LogitAdjustedLoss({ classCounts: [2, 1], ...o })],
  ["new LDAMLoss()", (o) => new LDAMLoss({ classCounts: [2, 1], ...o })],
  ["new ProgressBarCallback()", (o) => new ProgressBarCallback(o)],
  ["new JsonlLogger()", (o) => new JsonlLogger("x.jsonl", o)],
  ["new CsvLogger()", (o) => new CsvLogger("x.csv", o)],
  ["new CheckpointCallback()", (o) => new CheckpointCallback({ dir: "d", ...o })],
  ["new EarlyStopping()", (o) => new EarlyStopping(o)],
  ["new ReduceLROnPlateau()", (o) => new ReduceLROnPlateau(o)],
  ["new LearningRateScheduler()", (o) => new LearningRateScheduler((_e, lr) => lr, o)],
  ["new ModelCheckpoint()", (o) => new ModelCheckpoint("m.safetensors", o)],
  ["kaimingNormal()", (o) => initializers.kaimingNormal(o)],
  ["kaimingUniform()", (o) => initializers.kaimingUniform(o)],
  ["compile()", (o) => compile(mlp(), { optimizer: "sgd", loss: "ce", ...o })],
  ["summary()", (o) => mlp().summary(o)],
];

function mlp(): Sequential {
  return new Sequential([new Dense(4, { activation: "relu" }), new Dense(3)], {
    inputShape: [2],
    seed: 1,
  });
}

const X = [[0, 1], [1, 0], [1, 1], [0, 0]];
const Y = [0, 1, 2, 1];

Deno.test("every option bag rejects an unknown key, naming it and the allowed keys", async () => {
  for (const [where, make] of SYNC) {
    const e = assertThrows(() => make(BOGUS), Error, `${where}: unknown option 'bogus'`);
    assertStringIncludes(e.message, "; allowed: ", where);
  }
  const m = mlp();
  compile(m, { optimizer: "sgd", loss: "sparse_categorical_crossentropy" });
  const batches = [{
    images: new Float32Array(8),
    labels: new Int32Array(4),
    shape: [4, 2],
  }] as Any;
  const ASYNC: [string, () => Promise<unknown>][] = [
    ["fit()", () => fit(m, batches, BOGUS)],
    ["fit(x, y)", () => m.fit(X, Y, BOGUS)],
    ["evaluate()", () => evaluate(m, batches, BOGUS)],
    ["evaluate(x, y)", () => m.evaluate(X, Y, BOGUS)],
    ["predict()", () => predict(m, batches, BOGUS)],
    ["predict()", () => m.predict(X, BOGUS)],
    ["arraySource()", () => arraySource(X, Y, BOGUS)],
    ["loadWeights()", () => m.loadWeights("w.safetensors", BOGUS)],
    ["torchStateDict()", () => exportTorchStateDict(m, "w.safetensors", BOGUS)],
    ["importTorchStateDict()", () => importTorchStateDict(m, "w.safetensors", BOGUS)],
  ];
  for (const [where, call] of ASYNC) {
    const e = await assertRejects(call, Error, `${where}: unknown option 'bogus'`);
    assertStringIncludes(e.message, "; allowed: ", where);
  }
  assertThrows(() => loadTorchState(m, {}, BOGUS), Error, "loadTorchState(): unknown option");
  m.dispose();
});

Deno.test("the issue's examples: wrong names, positional mistakes, missing keys", async () => {
  assertThrows(
    () => new SGD({ lr: 0.1 } as Any),
    Error,
    "new SGD(): unknown option 'lr' (did you mean 'learningRate'?); allowed: learningRate, " +
      "weightDecay, excludeFromWeightDecay, momentum, dampening, nesterov",
  );
  assertThrows(
    () => new Conv2D(8, 3, "relu" as Any),
    Error,
    "new Conv2D(): expected an options object { name, trainable, strides, padding, useBias, " +
      'activation, kernelInitializer, biasInitializer }, got the string "relu" (an activation ' +
      'is an option: { activation: "relu" })',
  );
  assert(new Conv2D(8, 3, { activation: "relu" }).activation === "relu");
  assertThrows(() => new Dense(3, { activation: "gelu" as Any }), Error, "activation must be one");
  // new AdamW({}) takes the defaults, as torch/Keras: lr 1e-3, weight decay 0.01.
  const adamw = new AdamW({});
  assert(adamw.schedule.lr(0, 0) === 1e-3 && adamw.weightDecay === 0.01);
  assertThrows(() => new AdamW({ betas: [0.9, 0.99] } as Any), Error, "did you mean 'beta1'?");
  assertThrows(
    () => new CheckpointCallback({} as Any),
    Error,
    "new CheckpointCallback(): missing option 'dir'",
  );
  assertThrows(
    () => new LDAMLoss({} as Any),
    Error,
    "new LDAMLoss(): missing option 'classCounts'",
  );
  assertThrows(() => new Functional({} as Any), Error, "missing options 'inputs', 'outputs'");
  assertThrows(
    () => new BalancedSoftmaxLoss({ classCounts: [2, 1], tau: 2 } as Any),
    Error,
    "'tau'",
  );
  const m = mlp();
  assertThrows(
    () => compile(m, { optimizer: "sgd", loss: "ce", metrics: ["top5x"] }),
    Error,
    'unknown metric "top5x"',
  );
  assertThrows(() => compile(m, { optimizer: "rmsprop" as Any, loss: "ce" }), Error, '"sgd"');
  assertThrows(
    () => compile(m, { optimizer: "sgd", loss: "categorical_crossentropy" as Any }),
    Error,
    "sparse_categorical_crossentropy",
  );
  assertThrows(
    () => compile(m, { optimizer: new SGD(), loss: "ce", lossWeights: [1] } as Any),
    Error,
    "compile(): unknown option 'lossWeights'",
  );
  compile(m, { optimizer: "sgd", loss: "ce", metrics: ["accuracy", "top2"] });
  await assertRejects(
    () => m.fit(X, Y, { epochs: 1, classWeight: [1, 2], verbose: 0 }),
    Error,
    "classWeight has 2 weights for 3 classes",
  );
  await assertRejects(
    () => fit(m, { batches: () => [] }, { epochs: 1, batchSize: 8 } as Any),
    Error,
    "batchSize apply to fit(x, y, ...)",
  );
  await assertRejects(
    () => m.fit(X, Y, { validationSplit: 1.5, verbose: 0 }),
    Error,
    "validationSplit must be in (0, 1)",
  );
  m.dispose();
});

Deno.test("optionKeys lists an interface's keys; suggestions", () => {
  interface O {
    a?: number;
    bCamel: string;
  }
  const keys = optionKeys<O>({ a: true, bCamel: true });
  assert(keys.length === 2);
  assertThrows(
    () => checkOptions("f()", { a: 1 }, keys, { required: ["bCamel"] }),
    Error,
    "'bCamel'",
  );
  assert(checkOptions("f()", undefined, keys) === undefined);
  assertThrows(() => checkOptions("f()", [1], keys), Error, "got an array of 1");
  assertThrows(() => checkOptions("f()", new Map(), keys), Error, "got a Map");
  assert(suggestKey("b_camel", keys) === "bCamel");
  assert(suggestKey("bcamle", keys) === "bCamel");
  assert(suggestKey("zzz", keys) === undefined);
});

Deno.test("option values are checked too (kernel sizes, padding, modes)", () => {
  assertThrows(() => new Conv2D(8, 0), Error, "kernelSize must be a positive integer");
  assertThrows(() => new Conv2D(8, 3, { strides: [1] as Any }), Error, "strides");
  assertThrows(() => new Conv2D(8, 3, { padding: "full" as Any }), Error, "padding must be");
  assertThrows(() => new MaxPooling2D(2, { padding: 3 }), Error, "half the window");
  assertThrows(
    () => new BatchNormalization({ momentumConvention: "tf" as Any }),
    Error,
    'momentumConvention must be one of "pytorch", "keras"',
  );
  assertThrows(() => new EarlyStopping({ mode: "mx" as Any }), Error, 'did you mean "max"');
  assertThrows(() => new ReduceLROnPlateau({ factor: 2 }), Error, "factor must be in (0, 1)");
  assertThrows(() => new Sequential([], { childNames: "idx" as Any }), Error, "childNames");
  assertThrows(
    () => initializers.kaimingNormal({ mode: "fan_avg" as Any }),
    Error,
    'mode must be one of "fan_in", "fan_out"',
  );
  assertThrows(() => new Dense(0), Error, "units must be a positive integer");
});
