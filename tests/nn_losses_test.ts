import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { backward } from "../gpu/autograd.ts";
import { initDevice } from "../gpu/device.ts";
import "../gpu/ops/mod.ts";
import { Rng } from "../gpu/rng.ts";
import { tidyAsync } from "../gpu/scope.ts";
import { readAll, tensor } from "../gpu/tensor.ts";
import { DenseClassifier } from "../nn/heads/dense_classifier.ts";
import { ETFClassifier } from "../nn/heads/etf_classifier.ts";
import { CrossEntropyLoss } from "../nn/losses/cross_entropy.ts";
import { DotRegressionLoss } from "../nn/losses/dot_regression.ts";
import { Mixup, MixupLoss } from "../nn/losses/mixup.ts";
import {
  assertClose,
  bnRef,
  checkGradients,
  denseRef,
  type HT,
  ht,
  l2NormRef,
  randArray,
} from "./nn_reference.ts";

await initDevice();

const B = 6, D = 8, K = 4;
const LABELS = [0, 0, 0, 1, 3, 3];

/** The paper's DR loss on the host; `sFixed` holds ||h_i|| constant (the loss's no-grad norms). */
function drRef(h: HT, m: HT, y: number[], countY: number[], sFixed?: number[]): number {
  const [b, d] = h.shape, k = m.shape[1];
  const counts = new Array(k).fill(0);
  for (const c of countY) counts[c]++;
  const present = counts.filter((c) => c > 0).length;
  const gamma = b / present;
  let loss = 0;
  for (let i = 0; i < b; i++) {
    const ew = Math.sqrt(gamma / counts[y[i]]);
    let ht = 0, tt = 0, hh = 0;
    for (let j = 0; j < d; j++) {
      const t = ew * m.data[j * k + y[i]];
      ht += h.data[i * d + j] * t;
      tt += t * t;
      hh += h.data[i * d + j] ** 2;
    }
    const s = sFixed ? sFixed[i] : Math.max(Math.sqrt(hh), 1e-8);
    loss += (ht - Math.sqrt(tt) * s) ** 2 / (2 * s);
  }
  return loss / b;
}

function ceRef(logits: HT, y: number[], smoothing = 0): number {
  const [n, k] = logits.shape;
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const row = Array.from(logits.data.subarray(i * k, (i + 1) * k));
    const mx = Math.max(...row);
    const lse = mx + Math.log(row.reduce((s, v) => s + Math.exp(v - mx), 0));
    for (let j = 0; j < k; j++) {
      const t = (j === y[i] ? 1 - smoothing : 0) + smoothing / k;
      loss -= t * (row[j] - lse);
    }
  }
  return loss / n;
}

function rowNorms(h: HT): number[] {
  const d = h.shape[1];
  return Array.from({ length: h.shape[0] }, (_, i) => {
    let s = 0;
    for (let j = 0; j < d; j++) s += h.data[i * d + j] ** 2;
    return Math.sqrt(s);
  });
}

for (const normalize of [true, false]) {
  Deno.test(`DR loss through the ETF head (normalize ${normalize}): value and gradients`, async () => {
    await tidyAsync(async () => {
      const head = new ETFClassifier(K, { seed: 3, normalize });
      const xs = randArray(B * D, 21).map((v, i) => v + (i % D) * 0.1);
      const x = tensor(Float32Array.from(xs), [B, D]);
      x.requiresGrad = true;
      const labels = tensor(LABELS, [B], "i32");
      const reg = normalize ? 0 : 0.01;
      const lossFn = new DotRegressionLoss({ normRegularizer: reg });
      const out = head.forwardChecked(x, { training: true });
      assertEquals([...out.logits.shape], [B, K]);
      assert(out.classifier === head.etf!.value);
      const loss = lossFn.compute(out, labels);
      const [g, be] = [head.bn.gamma!, head.bn.beta!];
      const grads = backward(loss, [x, g.value, be.value]);
      const vals = await readAll([loss, out.features, head.etf!.value, out.logits]);
      const m = ht([D, K], vals[2]);
      const xh = ht([B, D], xs),
        gh = ht([D], new Float64Array(D).fill(1)),
        bh = ht([D], new Float64Array(D));
      const feat = () => {
        const z = bnRef(xh, gh, bh, 1e-5).y;
        return normalize ? l2NormRef(z) : z;
      };
      const h0 = feat();
      assertClose(vals[1], h0.data, "features h", 1e-4, 1e-5);
      assertClose(vals[3], denseRef(h0, m, null).data, "logits h M", 1e-4, 1e-5);
      const s0 = rowNorms(h0);
      const f = () => {
        const h = feat();
        const n = rowNorms(h);
        return drRef(h, m, LABELS, LABELS, s0) + reg * n.reduce((a, b) => a + b, 0) / B;
      };
      assertAlmostEquals(vals[0][0], f(), 1e-5 * Math.max(1, Math.abs(f())));
      const gv = await readAll([grads.get(x)!, grads.get(g.value)!, grads.get(be.value)!]);
      checkGradients(
        [
          { name: "x", host: xh.data, grad: gv[0] },
          { name: "bn.weight", host: gh.data, grad: gv[1] },
          { name: "bn.bias", host: bh.data, grad: gv[2] },
        ],
        f,
        { perParam: 5, rtol: 5e-3 },
      );
      head.dispose();
    });
  });
}

Deno.test("DR loss: clear error without head outputs", () => {
  const logits = tensor(new Float32Array(8), [2, 4]);
  assertThrows(
    () => new DotRegressionLoss().compute({ logits }, tensor([0, 1], [2], "i32")),
    Error,
    "no features/classifier",
  );
});

Deno.test("Cross-entropy with label smoothing through the dense head: value and gradients", async () => {
  await tidyAsync(async () => {
    const head = new DenseClassifier(K);
    const xs = randArray(B * D, 5);
    const x = tensor(Float32Array.from(xs), [B, D]);
    x.requiresGrad = true;
    const out = head.forwardChecked(x, { training: true });
    assert(out.features === x);
    const loss = new CrossEntropyLoss({ labelSmoothing: 0.1 }).compute(
      out,
      tensor(LABELS, [B], "i32"),
    );
    const grads = backward(loss, [x, head.kernel!.value, head.bias!.value]);
    const vals = await readAll([loss, head.kernel!.value, head.bias!.value]);
    const xh = ht([B, D], xs), wh = ht([D, K], vals[1]), bh = ht([K], vals[2]);
    const f = () => ceRef(denseRef(xh, wh, bh), LABELS, 0.1);
    assertAlmostEquals(vals[0][0], f(), 1e-5);
    const gv = await readAll([
      grads.get(x)!,
      grads.get(head.kernel!.value)!,
      grads.get(head.bias!.value)!,
    ]);
    checkGradients(
      [
        { name: "x", host: xh.data, grad: gv[0] },
        { name: "weight", host: wh.data, grad: gv[1] },
        { name: "bias", host: bh.data, grad: gv[2] },
      ],
      f,
    );
    assertThrows(
      () => new CrossEntropyLoss().compute(out, tensor([0, 1], [2], "i32")),
      Error,
      "labels must be i32 [6]",
    );
    assertThrows(() => new CrossEntropyLoss({ labelSmoothing: 1 }), Error, "labelSmoothing");
    head.dispose();
  });
});

Deno.test("Mixup: lambda = 1 equals the plain loss; the combination is lambda L(y) + (1-lambda) L(y[pi])", async () => {
  await tidyAsync(async () => {
    const mix = new Mixup(1);
    const head = new ETFClassifier(K, { seed: 4 });
    const xs = randArray(B * D, 9);
    const x = tensor(Float32Array.from(xs), [B, D]);
    const labels = tensor(LABELS, [B], "i32");
    const dr = new DotRegressionLoss(), ce = new CrossEntropyLoss();
    const perm = new Int32Array([5, 2, 0, 1, 4, 3]);
    // lambda = 1: the mixed input is x and the loss the plain loss.
    mix.set(1, perm);
    const out = head.forwardChecked(x, { training: false });
    const [plainDr, mixDr, plainCe, mixCe, xm] = await readAll([
      dr.compute(out, labels),
      new MixupLoss(dr, mix).compute(out, labels),
      ce.compute(out, labels),
      mix.loss(ce, out, labels),
      mix.mixInputs(x),
    ]);
    assertAlmostEquals(mixDr[0], plainDr[0], 1e-6);
    assertAlmostEquals(mixCe[0], plainCe[0], 1e-6);
    assertClose(xm, xs, "mixInputs at lambda 1", 0, 1e-7);
    // lambda = 0.3.
    const lam = 0.3;
    mix.set(lam, perm);
    const xmix = mix.mixInputs(x);
    const out2 = head.forwardChecked(xmix, { training: false });
    const [xmv, h, m, l2dr, l2ce, logits] = await readAll([
      xmix,
      out2.features,
      out2.classifier,
      mix.loss(dr, out2, labels),
      mix.loss(ce, out2, labels),
      out2.logits,
    ]);
    const want = Array.from(
      xs,
      (v, i) => lam * v + (1 - lam) * xs[perm[Math.floor(i / D)] * D + (i % D)],
    );
    assertClose(xmv, want, "mixInputs", 1e-5, 1e-6);
    const yp = Array.from(perm, (p) => LABELS[p]);
    const hh = ht([B, D], h), mh = ht([D, K], m);
    const drWant = lam * drRef(hh, mh, LABELS, LABELS) + (1 - lam) * drRef(hh, mh, yp, LABELS);
    assertAlmostEquals(l2dr[0], drWant, 1e-5);
    const lh = ht([B, K], logits);
    assertAlmostEquals(l2ce[0], lam * ceRef(lh, LABELS) + (1 - lam) * ceRef(lh, yp), 1e-5);
    assertEquals(new MixupLoss(dr, mix).getConfig().name, "mixup_dot_regression");
    head.dispose();
  });
});

Deno.test("Mixup: sampling, gradient through mixed inputs, errors", async () => {
  await tidyAsync(async () => {
    const mix = new Mixup(1);
    const rng = new Rng(3);
    const { lambda, perm } = mix.sample(5, rng);
    assert(lambda >= 0 && lambda <= 1);
    assertEquals([...perm].sort(), [0, 1, 2, 3, 4]);
    const t = mix.tensors(5);
    const [lv, pv] = await readAll([t.lambda, t.perm]);
    assertAlmostEquals(lv[0], lambda, 1e-7);
    assertEquals(Array.from(pv), Array.from(perm));
    assertEquals(new Mixup(0).sample(3, rng).lambda, 1);
    assertThrows(() => mix.set(0.5, new Int32Array([0, 0, 1])), Error, "not a permutation");
    assertThrows(() => mix.mixInputs(tensor(new Float32Array(4), [4, 1])), Error, "batch size 4");
    assertThrows(() => new Mixup(-1), Error, "alpha must be >= 0");
    // d/dx of sum(mixInputs(x) * r) = lambda r + (1 - lambda) scatter(r).
    mix.set(0.25, new Int32Array([1, 2, 0, 4, 3]));
    const x = tensor(Float32Array.from(randArray(10, 2)), [5, 2]);
    x.requiresGrad = true;
    const r = randArray(10, 3);
    const { mul } = await import("../gpu/ops/elementwise.ts");
    const { sum } = await import("../gpu/ops/reduce.ts");
    const g = backward(sum(mul(mix.mixInputs(x), tensor(Float32Array.from(r), [5, 2]))), [x]);
    const p = [1, 2, 0, 4, 3];
    const want = new Float64Array(10);
    for (let i = 0; i < 5; i++) {
      for (let j = 0; j < 2; j++) {
        want[i * 2 + j] += 0.25 * r[i * 2 + j];
        want[p[i] * 2 + j] += 0.75 * r[i * 2 + j];
      }
    }
    assertClose(await g.get(x)!.data(), want, "mixup input gradient", 1e-5, 1e-6);
  });
});
