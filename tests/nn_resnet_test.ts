import { assert, assertEquals, assertThrows } from "@std/assert";
import { initDevice } from "../gpu/device.ts";
import "../gpu/ops/mod.ts";
import { tidyAsync } from "../gpu/scope.ts";
import { readAll } from "../gpu/tensor.ts";
import { type ResNet32, resnet32 } from "../nn/models/resnet32.ts";
import { resnet50 } from "../nn/models/resnet50.ts";
import { densenet3 } from "../nn/models/densenet.ts";
import {
  collapseToTorch,
  type HostTensor,
  loadTorchState,
  torchToCollapse,
} from "../nn/models/torch_layout.ts";
import {
  addRef,
  bnRef,
  conv2dRef,
  denseRef,
  gapRef,
  type HT,
  randArray,
  reluRef,
  shortcutARef,
} from "./nn_reference.ts";
import { checkModelGradients } from "./model_gradient_check.ts";

await initDevice();

Deno.test("ResNet-32 for CIFAR-10: 464,154 trainable parameters, summary, torch-like names", () => {
  const m = resnet32({ numClasses: 10, seed: 0 });
  m.build([-1, 32, 32, 3]);
  const text = m.summary({ print: true });
  assert(text.includes("Total params: 466,426"));
  assert(text.includes("Trainable params: 464,154"));
  assert(text.includes("Non-trainable params: 2,272"));
  assert(text.includes("layer3 (Sequential)"));
  assert(text.includes("(None, 8, 8, 64)"));
  assert(text.includes("fc (DenseClassifier)"));
  assertEquals(m.featureDim, 64);
  assertEquals([...m.outputShape!], [-1, 10]);
  const names = m.weights().map((w) => w.name);
  assertEquals(names.slice(0, 6), [
    "conv1.weight",
    "bn1.weight",
    "bn1.bias",
    "bn1.running_mean",
    "bn1.running_var",
    "layer1.0.conv1.weight",
  ]);
  assert(names.includes("layer3.4.bn2.running_var"));
  assertEquals(names.slice(-2), ["fc.weight", "fc.bias"]);
  assertEquals(new Set(names).size, names.length);
  // Names are paths from the outermost model whichever layer is asked; lookups are relative.
  const stage = m.sublayers.get("layer2")!;
  assertEquals(stage.weights()[0].name, "layer2.0.conv1.weight");
  assert(stage.getWeight("0.conv1.weight") === m.getWeight("layer2.0.conv1.weight"));
  m.dispose();
  // CIFAR-100: double width, d = 128, with the ETF head.
  const m100 = resnet32({ numClasses: 100, head: "etf", widthMultiplier: 2 });
  m100.build([-1, 32, 32, 3]);
  assertEquals(m100.featureDim, 128);
  const etf = m100.getWeight("fc.etf");
  assertEquals([...etf.value.shape], [128, 100]);
  assertEquals([etf.trainable, etf.decay], [false, false]);
  m100.dispose();
  assertThrows(
    () => resnet32({ numClasses: 100, head: "etf" }).build([-1, 32, 32, 3]),
    Error,
    "d=64 must be >= the number of classes K=100",
  );
});

Deno.test("ResNet-50: 25,557,032 parameters with a 1000-class head; torchvision names; layer4 widening", () => {
  const m = resnet50({ numClasses: 1000, seed: 0 });
  m.build([-1, 224, 224, 3]);
  assertEquals(m.countParams("trainable"), 25_557_032);
  const text = m.summary({ print: true });
  assert(text.includes("(None, 7, 7, 2048)"));
  assert(text.includes("(None, 56, 56, 64)"));
  const names = new Set(m.weights().map((w) => w.name));
  for (
    const n of [
      "conv1.weight",
      "bn1.running_mean",
      "layer1.0.downsample.0.weight",
      "layer1.0.downsample.1.running_var",
      "layer2.3.conv2.weight",
      "layer4.2.bn3.bias",
      "fc.weight",
      "fc.bias",
    ]
  ) assert(names.has(n), n);
  assert(!names.has("layer1.1.downsample.0.weight"));
  assertEquals([...m.getWeight("layer1.0.conv2.weight").value.shape], [3, 3, 64, 64]);
  assertEquals([...m.getWeight("fc.weight").value.shape], [2048, 1000]);
  m.dispose();
  // The paper's ImageNet-LT widening (not built here: ~70M parameters).
  const wide = resnet50({ layer4Planes: 1024, head: null });
  assertEquals(wide.featureDim, 4096);
  assertEquals(wide.planes, [64, 128, 256, 1024]);
});

Deno.test("torch layout: OIHW <-> HWIO and [out, in] <-> [in, out] round trips; load by name", async () => {
  const oihw: HostTensor = { shape: [4, 3, 2, 5], data: Float32Array.from(randArray(120, 3)) };
  const hwio = torchToCollapse(oihw);
  assertEquals(hwio.shape, [2, 5, 3, 4]);
  // element (o=1, i=2, y=1, x=3)
  assertEquals(hwio.data[((1 * 5 + 3) * 3 + 2) * 4 + 1], oihw.data[((1 * 3 + 2) * 2 + 1) * 5 + 3]);
  assertEquals(collapseToTorch(hwio), oihw);
  const lin: HostTensor = { shape: [3, 2], data: Float32Array.from([1, 2, 3, 4, 5, 6]) };
  assertEquals(torchToCollapse(lin), {
    shape: [2, 3],
    data: Float32Array.from([1, 3, 5, 2, 4, 6]),
  });

  await tidyAsync(async () => {
    const a = resnet32({ numClasses: 3, widthMultiplier: 0.25, seed: 1 });
    const b = resnet32({ numClasses: 3, widthMultiplier: 0.25, seed: 2 });
    a.build([-1, 8, 8, 3]);
    b.build([-1, 8, 8, 3]);
    const wa = a.weights();
    const vals = await readAll(wa.map((w) => w.value));
    const state = new Map<string, HostTensor>();
    wa.forEach((w, i) =>
      state.set(
        w.name,
        collapseToTorch({ shape: [...w.value.shape], data: vals[i] as Float32Array }),
      )
    );
    state.set("bn1.num_batches_tracked", { shape: [], data: new Float32Array(1) });
    state.set("extra.weight", { shape: [1], data: new Float32Array(1) });
    const report = loadTorchState(b, state);
    assertEquals(report.missing, []);
    assertEquals(report.unexpected, ["extra.weight"]);
    const vb = await readAll(b.weights().map((w) => w.value));
    vb.forEach((v, i) => assertEquals(v, vals[i], wa[i].name));
    assertThrows(
      () => loadTorchState(b, state, { strict: true }),
      Error,
      "unexpected [extra.weight]",
    );
    state.set("conv1.weight", { shape: [4, 3, 1, 1], data: new Float32Array(12) });
    assertThrows(
      () => loadTorchState(b, state),
      Error,
      "'conv1.weight' is [3, 3, 3, 4] in the model",
    );
    a.dispose();
    b.dispose();
  });
});

/** Host f64 ResNet-32 (training-mode BN) from named weights. */
function resnet32Ref(x: HT, w: Map<string, HT>, widths: number[], blocks: number): HT {
  const bn = (t: HT, p: string) => bnRef(t, w.get(`${p}.weight`)!, w.get(`${p}.bias`)!, 1e-5).y;
  const conv = (t: HT, p: string, s: number) =>
    conv2dRef(t, w.get(`${p}.weight`)!, null, [s, s], [1, 1]);
  let y = reluRef(bn(conv(x, "conv1", 1), "bn1"));
  let inPlanes = widths[0];
  widths.forEach((planes, s) => {
    for (let b = 0; b < blocks; b++) {
      const p = `layer${s + 1}.${b}`;
      const stride = b === 0 && s > 0 ? 2 : 1;
      let o = reluRef(bn(conv(y, `${p}.conv1`, stride), `${p}.bn1`));
      o = bn(conv(o, `${p}.conv2`, 1), `${p}.bn2`);
      const sc = stride !== 1 || inPlanes !== planes ? shortcutARef(y, stride, planes) : y;
      y = reluRef(addRef(o, sc));
      inPlanes = planes;
    }
  });
  return denseRef(gapRef(y), w.get("fc.weight")!, w.get("fc.bias")!);
}

Deno.test("tiny ResNet-32 (width 0.25, 8x8, batch 2): forward and every parameter's gradient match the host", async () => {
  await tidyAsync(async () => {
    const m: ResNet32 = resnet32({ numClasses: 3, widthMultiplier: 0.25, seed: 7 });
    // A tiny f64 step: larger ones cross ReLU kinks somewhere in 31 layers and bias the difference.
    const n = await checkModelGradients(m, {
      label: "ResNet-32 logits",
      xShape: [2, 8, 8, 3],
      seeds: [11, 12],
      trainableCount: 1 + 2 + 15 * 6 + 2,
      reference: (x, weights) => resnet32Ref(x, weights, [...m.widths], 5),
      options: { perParam: 2, rtol: 1e-2, atol: 1e-5, step: 1e-7 },
    });
    assert(n >= 190);
    m.dispose();
  });
});

Deno.test("summary() on an unbuilt ResNet builds it at the expected input shape", () => {
  const m = resnet32({ numClasses: 10, head: "etf" });
  assert(!m.built);
  assertEquals(m.expectedInputShape, [32, 32, 3]);
  const text = m.summary({ print: false });
  assert(m.built);
  assertEquals(m.inputShape, [-1, 32, 32, 3]);
  assert(text.includes("Trainable params: 463,632"), text);
  assert(text.includes("layer3 (Sequential)                 (None, 8, 8, 64)"), text);
  m.dispose();
  const stl = resnet32({ numClasses: 10, inputShape: [96, 96, 3] });
  assert(stl.summary({ print: false }).includes("(None, 24, 24, 64)"));
  stl.dispose();
  assertThrows(
    () => resnet32({ inputShape: [32, 32] }),
    Error,
    "inputShape must be [height, width",
  );
  assertEquals(resnet50({ numClasses: 10 }).expectedInputShape, [224, 224, 3]);
  const dn = densenet3({ numClasses: 10, layersPerBlock: 1 });
  assert(dn.summary({ print: false }).includes("Total params:"));
  assertEquals(dn.inputShape, [-1, 32, 32, 3]);
  dn.dispose();
  // A model with no known input shape (here a stage, a Sequential) still asks to be built.
  assertThrows(() => resnet32().stages[0].summary({ print: false }), Error, "is not built");
});
