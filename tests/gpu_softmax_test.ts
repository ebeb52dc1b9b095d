import { assertEquals, assertThrows } from "@std/assert";
import {
  grad,
  initDevice,
  logSoftmax,
  softmax,
  softmaxCrossEntropy,
  type Tensor,
  tensor,
  tidy,
  tidyAsync,
} from "../gpu/mod.ts";
import { assertClose, checkGrad, coords, prod, rand, rng, strides } from "./gpu_op_helpers.ts";

await initDevice();

/** Host (log-)softmax along `axis`. */
function hostSoftmax(x: ArrayLike<number>, s: number[], axis: number, log: boolean) {
  const out = new Float64Array(x.length);
  const st = strides(s);
  for (let i = 0; i < x.length; i++) {
    const c = coords(i, s);
    if (c[axis] !== 0) continue;
    const idx = Array.from({ length: s[axis] }, (_, k) => i + k * st[axis]);
    const m = Math.max(...idx.map((j) => x[j]));
    const z = idx.reduce((a, j) => a + Math.exp(x[j] - m), 0);
    for (const j of idx) out[j] = log ? x[j] - m - Math.log(z) : Math.exp(x[j] - m) / z;
  }
  return out;
}

Deno.test("softmax / logSoftmax: forward and gradients on several axes", async () => {
  const r = rng(31);
  const cases: [number[], number][] = [[[3, 5], -1], [[1, 7], 1], [[2, 3, 4], 1], [[4, 3], 0], [
    [2, 300],
    -1,
  ]];
  for (const [s, axis] of cases) {
    const ax = axis < 0 ? axis + s.length : axis;
    for (const log of [false, true]) {
      await checkGrad(
        `${log ? "logSoftmax" : "softmax"} ${s} axis ${axis}`,
        ([x]) => (log ? logSoftmax(x, axis) : softmax(x, axis)),
        ([a]) => hostSoftmax(a, s, ax, log),
        [{ data: rand(r, prod(s), -3, 3), shape: s }],
      );
    }
  }
});

Deno.test("softmax is stable for huge logits", async () => {
  const x = tensor([1000, 1001, -1000, 0], [1, 4]);
  assertClose(
    await softmax(x).array(),
    hostSoftmax([1000, 1001, -1000, 0], [1, 4], 1, false),
    "softmax",
  );
  assertClose(
    await logSoftmax(x).array(),
    hostSoftmax([1000, 1001, -1000, 0], [1, 4], 1, true),
    "logSoftmax",
    1e-6,
    1e-4,
  );
});

/** Host CE: per-row losses for targets t [N, K]. */
function hostCE(z: ArrayLike<number>, t: ArrayLike<number>, n: number, k: number): Float64Array {
  const ls = hostSoftmax(z, [n, k], 1, true);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) out[i] -= t[i * k + j] * ls[i * k + j];
  return out;
}

function targetsOf(labels: number[], k: number, eps: number): Float64Array {
  const t = new Float64Array(labels.length * k);
  labels.forEach((y, i) => {
    if (y < 0 || y >= k) return;
    for (let j = 0; j < k; j++) t[i * k + j] = (1 - eps) * (j === y ? 1 : 0) + eps / k;
  });
  return t;
}

Deno.test("softmaxCrossEntropy: hard labels, smoothing, reductions", async () => {
  const r = rng(32);
  for (const [n, k] of [[5, 3], [1, 10], [4, 130]]) {
    const labels = Array.from({ length: n }, (_, i) => (i * 7 + 1) % k);
    // (out-of-range labels are errors: tests/gpu_errors_test.ts)
    const lt = tensor(labels, [n], "i32");
    for (const eps of [0, 0.1]) {
      for (const reduction of ["mean", "sum", "none"] as const) {
        const t = targetsOf(labels, k, eps);
        await checkGrad(
          `ce [${n}, ${k}] eps ${eps} ${reduction}`,
          ([z]) => softmaxCrossEntropy(z, lt, { labelSmoothing: eps, reduction }),
          ([z]) => {
            const rows = hostCE(z, t, n, k);
            if (reduction === "none") return rows;
            const s = rows.reduce((a, b) => a + b, 0);
            return Float64Array.of(reduction === "mean" ? s / n : s);
          },
          [{ data: rand(r, n * k, -4, 4), shape: [n, k] }],
        );
      }
    }
    lt.dispose();
  }
});

Deno.test("softmaxCrossEntropy: soft targets (mixup-like) match the host", async () => {
  const r = rng(33);
  const [n, k] = [6, 4];
  const raw = rand(r, n * k, 0, 1);
  const soft = new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < k; j++) s += raw[i * k + j];
    for (let j = 0; j < k; j++) soft[i * k + j] = raw[i * k + j] / s;
  }
  const st = tensor(soft, [n, k]);
  await checkGrad(
    "ce soft",
    ([z]) => softmaxCrossEntropy(z, st, { labelSmoothing: 0.2 }),
    ([z]) => {
      const t = Float64Array.from(soft, (v) => 0.8 * v + 0.2 / k);
      return Float64Array.of(hostCE(z, t, n, k).reduce((a, b) => a + b, 0) / n);
    },
    [{ data: rand(r, n * k, -3, 3), shape: [n, k] }],
  );
  st.dispose();
});

Deno.test("softmaxCrossEntropy: stable for huge logits; gradient is (p - t) / N", async () => {
  await tidyAsync(async () => {
    const z = tensor([1000, -1000, 0, 0, 50, 50], [2, 3]);
    z.requiresGrad = true;
    const y = tensor([1, 0], [2], "i32");
    const loss = softmaxCrossEntropy(z, y);
    const [g] = grad(loss, [z]);
    const l = await loss.item();
    // row 0: 2000 (label 1 at -1000); row 1: log(1 + 2 e^-50)... ~= 50 + log 2
    assertClose([l], [(2000 + 50 + Math.log(2)) / 2], "loss", 1e-5);
    const p1 = 1 / (2 + Math.exp(-50));
    assertClose(
      await (g as Tensor).array(),
      [0.5, -0.5, 0, (Math.exp(-50) / (2 + Math.exp(-50)) - 1) / 2, p1 / 2, p1 / 2],
      "grad",
      1e-5,
      1e-6,
    );
  });
});

Deno.test("softmax errors are clear", () => {
  tidy(() => {
    const z = tensor(new Float32Array(6), [2, 3]);
    assertThrows(() => softmax(z, 2), Error, "softmax: axis 2 out of range");
    assertThrows(() => softmax(tensor([1], [1], "i32")), Error, "softmax");
    assertThrows(
      () => softmaxCrossEntropy(z, tensor([0, 1, 2], [3], "i32")),
      Error,
      "class labels i32[3] must be [2]",
    );
    assertThrows(() => softmaxCrossEntropy(z, tensor(new Float32Array(4), [2, 2])), Error, "soft");
    assertThrows(() => softmaxCrossEntropy(tensor(new Float32Array(6), [6]), z), Error, "[N, K]");
    assertThrows(
      () => softmaxCrossEntropy(z, tensor([0, 1], [2], "i32"), { labelSmoothing: 2 }),
      Error,
      "labelSmoothing",
    );
    assertEquals(softmaxCrossEntropy(z, tensor([0, 1], [2], "i32"), { reduction: "none" }).shape, [
      2,
    ]);
  });
});
