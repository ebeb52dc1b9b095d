import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { backward } from "../gpu/autograd.ts";
import { initDevice } from "../gpu/device.ts";
import { mul, relu } from "../gpu/ops/elementwise.ts";
import "../gpu/ops/mod.ts";
import { sum } from "../gpu/ops/reduce.ts";
import { Rng } from "../gpu/rng.ts";
import { tidyAsync } from "../gpu/scope.ts";
import { readAll, type Tensor, tensor } from "../gpu/tensor.ts";
import { computeFans, glorotUniform, kaimingNormal, withInitRng } from "../nn/init.ts";
import type { CompileOptions } from "../nn/training/state.ts";
import {
  Activation,
  Add,
  AveragePooling2D,
  BatchNormalization,
  Conv2D,
  Dense,
  Dropout,
  Flatten,
  GlobalAveragePooling2D,
  input,
  L2Normalize,
  type Layer,
  MaxPooling2D,
  ReLU,
  ShortcutA,
} from "../nn/layers/mod.ts";
import { Functional } from "../nn/model/functional.ts";
import { Model } from "../nn/model/model.ts";
import { Sequential } from "../nn/model/sequential.ts";
import type { CallOptions } from "../nn/types.ts";
import {
  addRef,
  assertClose,
  bnRef,
  checkGradients,
  conv2dRef,
  denseRef,
  dotSum,
  gapRef,
  type HT,
  ht,
  l2NormRef,
  poolRef,
  randArray,
  reluRef,
  shortcutARef,
} from "./nn_reference.ts";

await initDevice();

/** Runs a layer on x, checks the forward against `ref` and the gradients against FD of `ref`. */
async function checkLayer(
  layer: Layer,
  xShape: number[],
  ref: (x: HT, w: Map<string, HT>) => HT,
  options: { training?: boolean; gradX?: boolean; rtol?: number; seed?: number } = {},
): Promise<void> {
  const xs = randArray(xShape.reduce((a, b) => a * b, 1), options.seed ?? 1);
  const x = tensor(Float32Array.from(xs), xShape);
  x.requiresGrad = options.gradX ?? true;
  const training = options.training ?? true;
  const y = layer.apply(x, { training });
  const r = randArray(y.size, 99);
  const loss = sum(mul(y, tensor(Float32Array.from(r), y.shape)));
  const weights = layer.trainableWeights();
  const grads = backward(loss, [x, ...weights.map((w) => w.value)]);
  // Host copies of the weights as they were used (before any in-place running-stat update).
  const host = new Map<string, HT>();
  const all = layer.weights();
  const vals = await readAll([y, ...all.map((w) => w.value)]);
  all.forEach((w, i) => host.set(w.name, ht([...w.value.shape], vals[i + 1])));
  const xh = ht(xShape, xs);
  const yRef = ref(xh, host);
  assertEquals([...y.shape], yRef.shape);
  assertClose(vals[0], yRef.data, `${layer.describe()} forward`, options.rtol ?? 1e-4, 1e-5);
  const params = [
    { name: "x", t: x, host: xh.data },
    ...weights.map((w) => ({
      name: w.name,
      t: w.value,
      host: host.get(w.name)!.data,
    })),
  ].filter((p) => p.name !== "x" || x.requiresGrad);
  const gvals = await readAll(params.map((p) => grads.get(p.t)!));
  checkGradients(
    params.map((p, i) => ({ name: p.name, host: p.host, grad: gvals[i] })),
    () => dotSum(ref(xh, host), r),
    { perParam: 4, rtol: options.rtol ? options.rtol * 10 : 2e-3 },
  );
}

Deno.test("Dense: forward and gradients match the host reference; rank-3 input", async () => {
  await tidyAsync(async () => {
    const d = new Dense(4, { name: "fc" });
    await checkLayer(d, [3, 5], (x, w) => denseRef(x, w.get("weight")!, w.get("bias")!));
    assertEquals(d.weights().map((w) => [w.name, [...w.value.shape]]), [
      ["weight", [5, 4]],
      ["bias", [4]],
    ]);
    const y = d.apply(tensor(new Float32Array(2 * 3 * 5).fill(0.5), [2, 3, 5]));
    assertEquals([...y.shape], [2, 3, 4]);
    assertThrows(
      () => d.apply(tensor(new Float32Array(6), [2, 3])),
      Error,
      "Dense 'fc': expects input [N, 5], got [2, 3]",
    );
    d.dispose();
  });
});

const CONV_CASES: { name: string; k: number; s: number; p: number; bias: boolean; x: number[] }[] =
  [
    { name: "3x3 stride 2 pad 1 bias", k: 3, s: 2, p: 1, bias: true, x: [2, 5, 5, 3] },
    { name: "3x3 valid no bias", k: 3, s: 1, p: 0, bias: false, x: [1, 6, 4, 2] },
    { name: "1x1 stride 2", k: 1, s: 2, p: 0, bias: false, x: [2, 5, 3, 3] },
  ];
for (const cc of CONV_CASES) {
  Deno.test(`Conv2D ${cc.name}: forward and gradients match the host reference`, async () => {
    await tidyAsync(async () => {
      const c = new Conv2D(4, cc.k, { strides: cc.s, padding: cc.p, useBias: cc.bias });
      await checkLayer(
        c,
        cc.x,
        (x, w) => conv2dRef(x, w.get("weight")!, w.get("bias") ?? null, [cc.s, cc.s], [cc.p, cc.p]),
      );
      c.dispose();
    });
  });
}

Deno.test("Conv2D: shape inference and clear errors", () => {
  const c = new Conv2D(8, 3, { strides: 2, padding: "same", name: "c1" });
  const y = c.apply(input([7, 9, 3]));
  assertEquals([...y.shape], [-1, 4, 5, 8]);
  assertEquals([...c.kernel!.value.shape], [3, 3, 3, 8]);
  assertThrows(() => c.apply(input([7, 9, 4])), Error, "Conv2D 'c1': expects 3 input channels");
  assertThrows(() => new Conv2D(2, 3).apply(input([9, 3])), Error, "expects NHWC input");
  assertThrows(() => new Conv2D(2, 5).apply(input([3, 3, 1])), Error, "smaller than the kernel");
  assertThrows(() => new Conv2D(0, 3), Error, "filters must be a positive integer");
  c.dispose();
});

Deno.test("BatchNormalization: training forward, gradients, running stats (both conventions), eval", async () => {
  await tidyAsync(async () => {
    const bn = new BatchNormalization();
    await checkLayer(
      bn,
      [3, 2, 2, 5],
      (x, w) => bnRef(x, w.get("weight")!, w.get("bias")!, 1e-5).y,
    );
    // Running stats after that one training call: 0.9 * init + 0.1 * batch (unbiased variance).
    const xs = randArray(60, 1);
    const ref = bnRef(
      ht([3, 2, 2, 5], xs),
      ht([5], [1, 1, 1, 1, 1]),
      ht([5], [0, 0, 0, 0, 0]),
      1e-5,
    );
    const [rm, rv] = await readAll([bn.runningMean!.value, bn.runningVar!.value]);
    const n = 12;
    assertClose(rm, ref.mean.map((m) => 0.1 * m), "running_mean", 1e-4, 1e-6);
    assertClose(
      rv,
      ref.varBiased.map((v) => 0.9 + 0.1 * v * n / (n - 1)),
      "running_var",
      1e-4,
      1e-6,
    );
    // Keras convention 0.9 (weight of the old value) is PyTorch 0.1.
    const kb = new BatchNormalization({ momentum: 0.9, momentumConvention: "keras" });
    assertAlmostEquals(kb.momentum, 0.1, 1e-12);
    assertEquals(kb.getConfig().momentumConvention, "keras");
    assertEquals(
      new BatchNormalization({ momentumConvention: "keras" }).getConfig().momentum,
      0.99,
    );
    // Eval mode uses the running statistics.
    const x = tensor(Float32Array.from(xs), [3, 2, 2, 5]);
    const y = bn.apply(x, { training: false });
    const host = await readAll([y, bn.gamma!.value, bn.beta!.value]);
    const evalRef = bnRef(ht([3, 2, 2, 5], xs), ht([5], host[1]), ht([5], host[2]), 1e-5, {
      mean: ht([5], rm),
      var: ht([5], rv),
    });
    assertClose(host[0], evalRef.y.data, "eval forward", 1e-4, 1e-5);
    assertEquals(bn.weights().map((w) => [w.name, w.trainable, w.decay]), [
      ["weight", true, true],
      ["bias", true, true],
      ["running_mean", false, false],
      ["running_var", false, false],
    ]);
    assertThrows(() => bn.apply(tensor(new Float32Array(8), [2, 4])), Error, "expects 5 channels");
    assertThrows(
      () => new BatchNormalization({ momentum: 2 }),
      Error,
      "momentum must be in [0, 1]",
    );
    bn.dispose();
    kb.dispose();
  });
});

Deno.test("Activations, Add, Flatten, L2Normalize: forward and gradients", async () => {
  await tidyAsync(async () => {
    await checkLayer(new ReLU(), [2, 7], (x) => reluRef(x));
    await checkLayer(new Activation("tanh"), [3, 4], (x) => ht(x.shape, x.data.map(Math.tanh)));
    await checkLayer(new Flatten(), [2, 3, 2, 2], (x) => ht([2, 12], x.data));
    await checkLayer(new L2Normalize(), [3, 5], (x) => l2NormRef(x));
    const add = new Add();
    const a = tensor(Float32Array.from(randArray(6, 3)), [2, 3]);
    const b = tensor(Float32Array.from(randArray(6, 4)), [2, 3]);
    const c = tensor(Float32Array.from(randArray(6, 5)), [2, 3]);
    assertClose(
      await add.apply([a, b, c]).data(),
      addRef(
        addRef(ht([2, 3], await a.data()), ht([2, 3], await b.data())),
        ht([2, 3], await c.data()),
      ).data,
      "add",
    );
    assertThrows(() => add.apply([a, tensor(new Float32Array(3), [1, 3])]), Error, "same shape");
    assertThrows(() => add.apply(a), Error, "expects a list of inputs");
    assertThrows(() => new ReLU().apply([a, b]), Error, "expects one input");
    assertThrows(() => new Activation("swish" as "relu"), Error, "activation must be one of");
  });
});

Deno.test("Pooling layers and the option-A shortcut: forward and gradients", async () => {
  await tidyAsync(async () => {
    await checkLayer(
      new MaxPooling2D(3, { strides: 2, padding: 1 }),
      [2, 5, 6, 3],
      (x) => poolRef(x, "max", [3, 3], [2, 2], [1, 1]),
    );
    await checkLayer(
      new AveragePooling2D(2),
      [1, 4, 5, 2],
      (x) => poolRef(x, "avg", [2, 2], [2, 2], [0, 0]),
    );
    await checkLayer(new GlobalAveragePooling2D(), [2, 3, 3, 4], (x) => gapRef(x));
    await checkLayer(new ShortcutA(8, { stride: 2 }), [2, 5, 5, 3], (x) => shortcutARef(x, 2, 8));
    await checkLayer(new ShortcutA(4, { stride: 1 }), [1, 2, 2, 4], (x) => shortcutARef(x, 1, 4));
    assertEquals([...new ShortcutA(16).apply(input([8, 8, 8])).shape], [-1, 4, 4, 16]);
    assertThrows(
      () => new ShortcutA(2).apply(input([4, 4, 4])),
      Error,
      "cannot pad 4 channels down to 2",
    );
    assertThrows(() => new GlobalAveragePooling2D().apply(input([4])), Error, "expects NHWC");
  });
});

Deno.test("Dropout: inverted scaling in training, identity at inference, fresh masks", async () => {
  await tidyAsync(async () => {
    const d = new Dropout(0.5, { seed: 3 });
    const x = tensor(new Float32Array(400).fill(1), [4, 100]);
    assert(d.apply(x, { training: false }) === x);
    const [y1, y2] = await readAll([
      d.apply(x, { training: true }),
      d.apply(x, { training: true }),
    ]);
    assert(y1.every((v) => v === 0 || Math.abs(v - 2) < 1e-6));
    const kept = y1.filter((v) => v !== 0).length;
    assert(kept > 120 && kept < 280, `kept ${kept} of 400`);
    assert(y1.some((v, i) => v !== y2[i]), "two training calls drew the same mask");
    assertThrows(() => new Dropout(1), Error, "rate must be in [0, 1)");
    d.dispose();
  });
});

Deno.test("init: kaiming normal fan-in std, glorot bounds, fans of HWIO / dense shapes", () => {
  assertEquals(computeFans([3, 3, 16, 32]), { fanIn: 144, fanOut: 288 });
  assertEquals(computeFans([64, 10]), { fanIn: 64, fanOut: 10 });
  const rng = new Rng(1);
  const w = kaimingNormal()([3, 3, 16, 32], rng);
  let s = 0, s2 = 0;
  for (const v of w) {
    s += v;
    s2 += v * v;
  }
  const std = Math.sqrt(s2 / w.length - (s / w.length) ** 2);
  assertAlmostEquals(std, Math.sqrt(2 / 144), 0.004);
  const g = glorotUniform()([20, 30], rng);
  const b = Math.sqrt(6 / 50);
  assert(g.every((v) => Math.abs(v) <= b));
  assert(Math.max(...g.map(Math.abs)) > 0.9 * b);
});

function mlp(seed?: number): Sequential {
  return new Sequential(
    [new Dense(6, { name: "hidden", activation: "relu" }), new Dense(3, { name: "out" })],
    { name: "mlp", seed, inputShape: [4] },
  );
}

Deno.test("Sequential: weight paths, seeds, summary, freezing, config", async () => {
  await tidyAsync(async () => {
    const m = mlp(5);
    assertEquals(m.weights().map((w) => w.name), [
      "hidden.weight",
      "hidden.bias",
      "out.weight",
      "out.bias",
    ]);
    assertEquals(m.countParams(), 4 * 6 + 6 + 6 * 3 + 3);
    const text = m.summary({ print: false });
    assert(text.includes(`Model: "mlp"`));
    assert(text.includes("hidden (Dense)"));
    assert(text.includes("(None, 6)"));
    assert(text.includes("Total params: 51"));
    assert(text.includes("Trainable params: 51"));
    // Same seed, same weights; another seed, other weights.
    const same = await readAll([
      m.weights()[0].value,
      mlp(5).weights()[0].value,
      mlp(6).weights()[0].value,
    ]);
    assertEquals(same[0], same[1]);
    assert(same[0].some((v, i) => v !== same[2][i]));
    // Freezing.
    m.layers[0].trainable = false;
    assertEquals(m.trainableWeights().map((w) => w.name), ["out.weight", "out.bias"]);
    assertEquals(m.weights()[0].value.requiresGrad, false);
    assert(m.summary({ print: false }).includes("Non-trainable params: 30"));
    m.layers[0].trainable = true;
    assertEquals(m.trainableWeights().length, 4);
    const cfg = m.getConfig();
    assertEquals((cfg.layers as { className: string }[]).map((l) => l.className), [
      "Dense",
      "Dense",
    ]);
    // Index naming (torch.nn.Sequential).
    const s = new Sequential([new Dense(2), new Dense(2)], {
      childNames: "index",
      inputShape: [3],
    });
    assertEquals(s.weights().map((w) => w.name), ["0.weight", "0.bias", "1.weight", "1.bias"]);
    // Eager forward equals the composition.
    const x = tensor(Float32Array.from(randArray(8, 7)), [2, 4]);
    const y = m.apply(x);
    const h = await readAll(m.weights().map((w) => w.value));
    const ref = denseRef(
      reluRef(denseRef(ht([2, 4], await x.data()), ht([4, 6], h[0]), ht([6], h[1]))),
      ht([6, 3], h[2]),
      ht([3], h[3]),
    );
    assertClose(await y.data(), ref.data, "sequential forward");
    assertThrows(() => m.add(new Dense(2)), Error, "after the model was built");
    assertThrows(() => m.apply(tensor(new Float32Array(6), [2, 3])), Error, "expects input [N, 4]");
    m.dispose();
    s.dispose();
  });
});

Deno.test("Functional: residual graph, eager call, shared naming, errors", async () => {
  await tidyAsync(async () => {
    const x = input([4, 4, 2]);
    const c1 = new Conv2D(2, 3, { padding: 1, name: "c1", useBias: false });
    const y = c1.apply(x);
    const z = new Add({ name: "res" }).apply([x, y]);
    const out = new Dense(3, { name: "fc" }).apply(
      new GlobalAveragePooling2D({ name: "gap" }).apply(z),
    );
    const m = new Functional({ inputs: x, outputs: out, name: "resmini" });
    assertEquals([...m.outputShape!], [-1, 3]);
    assertEquals(m.layers.map((l) => l.name), ["c1", "res", "gap", "fc"]);
    assertEquals(m.weights().map((w) => w.name), ["c1.weight", "fc.weight", "fc.bias"]);
    const xv = tensor(Float32Array.from(randArray(2 * 4 * 4 * 2, 8)), [2, 4, 4, 2]);
    const got = await m.apply(xv).data();
    const w = await readAll(m.weights().map((w) => w.value));
    const xh = ht([2, 4, 4, 2], await xv.data());
    const ref = denseRef(
      gapRef(addRef(xh, conv2dRef(xh, ht([3, 3, 2, 2], w[0]), null, [1, 1], [1, 1]))),
      ht([2, 3], w[1]),
      ht([3], w[2]),
    );
    assertClose(got, ref.data, "functional forward");
    assert(m.summary({ print: false }).includes("res (Add)"));
    assertThrows(
      () => m.apply(tensor(new Float32Array(2 * 5 * 5 * 2), [2, 5, 5, 2])),
      Error,
      "input 0 should be (None, 4, 4, 2), got [2, 5, 5, 2]",
    );
    assertThrows(
      () => new Functional({ inputs: input([3]), outputs: out }),
      Error,
      "not listed in inputs",
    );
    m.dispose();
  });
});

class RawOpModel extends Model {
  fc1 = this.track("fc1", new Dense(5));
  fc2 = this.track("fc2", new Dense(2));
  override call(x: Tensor, o: CallOptions): Tensor {
    return this.fc2.apply(relu(this.fc1.apply(x, o)), o); // a raw op: cannot trace symbolically
  }
}

Deno.test("Model subclass: build by tracing or by one eager pass; seeded init RNG", async () => {
  await tidyAsync(async () => {
    const m = new RawOpModel({ seed: 2 });
    m.build([-1, 3]);
    assertEquals(m.weights().map((w) => w.name), [
      "fc1.weight",
      "fc1.bias",
      "fc2.weight",
      "fc2.bias",
    ]);
    assertEquals([...m.outputShape!], [-1, 2]);
    const x = tensor(Float32Array.from(randArray(6, 1)), [2, 3]);
    const y = m.predict(x);
    assertEquals([...y.shape], [2, 2]);
    assertEquals(y.node, null);
    const m2 = new RawOpModel({ seed: 2 });
    m2.build([-1, 3]);
    const [a, b] = await readAll([m.weights()[0].value, m2.weights()[0].value]);
    assertEquals(a, b);
    // The global/explicit init RNG is used when no seed is given.
    const d1 = withInitRng(new Rng(9), () => {
      const d = new Dense(2);
      d.apply(input([2]));
      return d;
    });
    const d2 = withInitRng(new Rng(9), () => {
      const d = new Dense(2);
      d.apply(input([2]));
      return d;
    });
    const [w1, w2] = await readAll([d1.kernel!.value, d2.kernel!.value]);
    assertEquals(w1, w2);
    assertThrows(() => new Model().apply(x), Error, "must override call");
    assertThrows(
      () => m.compile({} as CompileOptions),
      Error,
      "missing options 'optimizer', 'loss'",
    );
    m.dispose();
    m2.dispose();
  });
});
