// DenseNet (nn/models/densenet.ts): the paper's DenseNet-BC-150 has the official DenseNet3's
// parameter count, names and shapes (goldens from bench/densenet_reference.py with PyTorch); a tiny
// DenseNet-BC computes the official model's features on the same weights (eval and training
// mode); every parameter's gradient of a depth-10 DenseNet-BC matches central differences of a
// host f64 reference; DenseNet-BC overfits 64 images with the ETF head + DR and with the learnable
// head + CE.
import { assert, assertEquals, assertThrows } from "@std/assert";
import { initDevice } from "../gpu/device.ts";
import "../gpu/ops/mod.ts";
import { tidyAsync } from "../gpu/scope.ts";
import { readAll, tensor } from "../gpu/tensor.ts";
import { CrossEntropyLoss, DotRegressionLoss } from "../nn/losses/mod.ts";
import { type DenseNet3, densenet3 } from "../nn/models/densenet.ts";
import { type HostTensor, loadTorchState } from "../nn/models/torch_layout.ts";
import { torchStateDict } from "../nn/models/torch_state_dict.ts";
import { SGD } from "../nn/optimizers/mod.ts";
import { compile, evaluate, fit } from "../nn/training/mod.ts";
import { type PrototypeData, prototypeData, prototypeSource } from "./fixtures/prototype_data.ts";
import {
  assertClose,
  bnRef,
  conv2dRef,
  denseRef,
  gapRef,
  type HT,
  poolRef,
  reluRef,
} from "./nn_reference.ts";
import { checkModelGradients } from "./model_gradient_check.ts";
import { useFastCompile } from "./fast_compile.ts";

useFastCompile();
await initDevice();

const FIXTURES = new URL("./fixtures/", import.meta.url);

/**
 * DenseNet-BC's trainable parameter count by the architecture's formula: conv1 3x3 (3 -> 2k);
 * per bottleneck layer on c channels BN(c) + conv1x1(c -> 4k) + BN(4k) + conv3x3(4k -> k); per
 * transition BN(c) + conv1x1(c -> floor(c / 2)); the final BN.
 */
function denseNetBcParams(depth: number, k: number): { params: number; d: number } {
  const n = Math.floor((depth - 4) / 6);
  let c = 2 * k, p = 27 * c;
  for (let b = 0; b < 3; b++) {
    for (let i = 0; i < n; i++, c += k) p += 2 * c + c * 4 * k + 2 * 4 * k + 9 * 4 * k * k;
    if (b < 2) {
      const out = Math.floor(c / 2);
      p += 2 * c + c * out;
      c = out;
    }
  }
  return { params: p + 2 * c, d: c };
}

Deno.test("DenseNet-BC-150: 1,509,780 parameters and d = 510 as the official DenseNet3; its exported state dict has the official entries, names and shapes", async () => {
  const golden = JSON.parse(
    await Deno.readTextFile(new URL("densenet_bc150_state.json", FIXTURES)),
  ) as { parameters: number; featureDim: number; classifierParameters10: number; state: string[] };
  const formula = denseNetBcParams(150, 12);
  const m = densenet3({ numClasses: 10, head: "dense", seed: 0 });
  m.build([-1, 32, 32, 3]);
  const text = m.summary({ print: false });
  const backbone = m.countParams("trainable") - m.head!.countParams("trainable");
  console.log(
    `DenseNet-BC-150 trainable parameters: collapse ${backbone}, official DenseNet3 (PyTorch) ${golden.parameters}, formula ${formula.params}; with the 10-class learnable head ${
      m.countParams("trainable")
    } (official Classifier ${golden.classifierParameters10})`,
  );
  assertEquals(backbone, golden.parameters);
  assertEquals(formula.params, golden.parameters);
  assertEquals(m.head!.countParams("trainable"), golden.classifierParameters10);
  assertEquals([m.featureDim, formula.d], [golden.featureDim, golden.featureDim]);
  assert(text.includes("Trainable params: 1,514,890"), text);
  for (const s of ["(None, 32, 32, 312)", "(None, 16, 16, 156)", "(None, 8, 8, 510)"]) {
    assert(text.includes(s), s);
  }
  // The exported PyTorch state dict (num_batches_tracked included) has the official entries, in
  // order, with the official (torch-layout) shapes.
  const state = await torchStateDict(m);
  const ours = Object.entries(state).filter(([k]) => !k.startsWith("fc.")).map(([k, t]) =>
    `${k} ${t.shape.join(",")}`.trimEnd()
  );
  assertEquals(ours, golden.state);
  m.dispose();
  // No dropout (the official default dropRate 0, which the paper keeps); bad settings are named.
  assertThrows(() => densenet3({ dropRate: 0.2 } as never), Error, "unknown option 'dropRate'");
  assertThrows(() => densenet3({ depth: 8 }), Error, "depth 8 gives 0 layers per block");
  assertThrows(() => densenet3({ reduction: 0 }), Error, "reduction must be in (0, 1]");
});

function f32(b64: string): Float32Array {
  const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
  return new Float32Array(bytes.buffer);
}

interface ParityCase {
  model: string;
  state: Record<string, { shape: number[]; data: string }>;
  featuresEval: string;
  featuresTrain: string;
}

Deno.test("tiny DenseNets (BC: bottleneck + reduction 0.5; basic) compute the official PyTorch DenseNet3's features on the same weights, eval and training mode", async () => {
  const p = JSON.parse(await Deno.readTextFile(new URL("densenet_tiny_parity.json", FIXTURES)));
  const shape = p.inputShape as number[];
  const builds = [
    () => densenet3({ depth: 16, growthRate: 4, head: null }),
    () => densenet3({ depth: 10, growthRate: 4, bottleneck: false, reduction: 1, head: null }),
  ];
  await tidyAsync(async () => {
    for (const [i, c] of (p.cases as ParityCase[]).entries()) {
      const m = builds[i]();
      m.build(shape);
      const state = new Map<string, HostTensor>();
      for (const [name, t] of Object.entries(c.state)) {
        state.set(name, { shape: t.shape, data: f32(t.data) });
      }
      const report = loadTorchState(m, state, { strict: true });
      assertEquals(report.loaded.length, state.size, c.model);
      const x = tensor(f32(p.input), shape);
      const [evalOut] = await readAll([m.predict(x)]);
      assertClose(evalOut, f32(c.featuresEval), `${c.model}: eval-mode features`, 1e-4, 1e-5);
      const [trainOut] = await readAll([m.forward(x, { training: true }).logits]);
      assertClose(trainOut, f32(c.featuresTrain), `${c.model}: training features`, 1e-4, 1e-5);
      m.dispose();
    }
  });
});

function concatRef(a: HT, b: HT): HT {
  const ca = a.shape[3], cb = b.shape[3], rows = a.data.length / ca;
  const out = new Float64Array(rows * (ca + cb));
  for (let r = 0; r < rows; r++) {
    out.set(a.data.subarray(r * ca, (r + 1) * ca), r * (ca + cb));
    out.set(b.data.subarray(r * cb, (r + 1) * cb), r * (ca + cb) + ca);
  }
  return { shape: [...a.shape.slice(0, 3), ca + cb], data: out };
}

/** Host f64 DenseNet-BC (training-mode BN) from named weights. */
function densenetRef(x: HT, w: Map<string, HT>, layersPerBlock: number): HT {
  const bnRelu = (t: HT, p: string) =>
    reluRef(bnRef(t, w.get(`${p}.weight`)!, w.get(`${p}.bias`)!, 1e-5).y);
  const conv = (t: HT, p: string, pad: number) =>
    conv2dRef(t, w.get(`${p}.weight`)!, null, [1, 1], [pad, pad]);
  let y = conv(x, "conv1", 1);
  for (let b = 1; b <= 3; b++) {
    for (let i = 0; i < layersPerBlock; i++) {
      const p = `block${b}.layer.${i}`;
      const o = conv(
        bnRelu(conv(bnRelu(y, `${p}.bn1`), `${p}.conv1`, 0), `${p}.bn2`),
        `${p}.conv2`,
        1,
      );
      y = concatRef(y, o);
    }
    if (b < 3) {
      y = poolRef(conv(bnRelu(y, `trans${b}.bn1`), `trans${b}.conv1`, 0), "avg", [2, 2], [2, 2], [
        0,
        0,
      ]);
    }
  }
  return denseRef(gapRef(bnRelu(y, "bn1")), w.get("fc.weight")!, w.get("fc.bias")!);
}

Deno.test("DenseNet-BC at depth 10 (1 layer per block, growth 4, 8x8, batch 2): logits and every parameter's gradient match the host", async () => {
  await tidyAsync(async () => {
    const m: DenseNet3 = densenet3({ depth: 10, growthRate: 4, numClasses: 3, seed: 5 });
    assertEquals(m.layersPerBlock, 1);
    const trainableCount = 1 + 3 * 6 + 2 * 3 + 2 + 2;
    const n = await checkModelGradients(m, {
      label: "DenseNet logits",
      xShape: [2, 8, 8, 3],
      seeds: [21, 22],
      trainableCount,
      reference: (x, weights) => densenetRef(x, weights, 1),
      options: { perParam: 3, rtol: 1e-2, atol: 1e-5, step: 1e-6 },
    });
    assertEquals(n, 3 * (trainableCount + 1));
    m.dispose();
  });
});

const K = 4, N = 64, H = 8;

const dataset = (seed: number) => prototypeData(seed, { classes: K, count: N, size: H });
const source = (d: PrototypeData, B: number, shuffle: boolean) =>
  prototypeSource(d, B, { shuffle });

const data = dataset(3);
for (const head of ["etf", "dense"] as const) {
  Deno.test(`DenseNet-BC overfits 64 images with the ${head} head within 30 epochs`, async () => {
    const model = densenet3({ depth: 16, growthRate: 6, numClasses: K, head, seed: 4 });
    compile(model, {
      optimizer: new SGD({ learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4 }),
      loss: head === "etf" ? new DotRegressionLoss() : new CrossEntropyLoss(),
    });
    let epochs = 0, acc = 0;
    while (epochs < 30 && acc < 1) {
      await fit(model, source(data, 16, true), {
        epochs: epochs + 5,
        initialEpoch: epochs,
        seed: 1,
        verbose: 0,
      });
      epochs += 5;
      acc = (await evaluate(model, source(data, 16, false))).accuracy;
    }
    console.log(`${head}: train accuracy ${acc} after ${epochs} epochs`);
    assertEquals(acc, 1, `train accuracy ${acc} after ${epochs} epochs`);
    model.dispose();
  });
}
