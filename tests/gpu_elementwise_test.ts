import { assertEquals, assertThrows } from "@std/assert";
import {
  abs,
  add,
  addScalar,
  cast,
  clamp,
  div,
  equal,
  exp,
  initDevice,
  leakyRelu,
  log,
  maximum,
  minimum,
  mul,
  mulScalar,
  neg,
  powScalar,
  relu,
  rsqrt,
  sigmoid,
  sqrt,
  square,
  sub,
  tanh,
  type Tensor,
  tensor,
  tidy,
  where,
} from "../gpu/mod.ts";
import { assertClose, bIndex, checkGrad, coords, prod, rand, rng } from "./gpu_op_helpers.ts";

await initDevice();

function hostBinary(
  f: (a: number, b: number) => number,
  sa: number[],
  sb: number[],
  so: number[],
): (xs: Float64Array[]) => Float64Array {
  return ([a, b]) => {
    const out = new Float64Array(prod(so));
    for (let i = 0; i < out.length; i++) {
      const c = coords(i, so);
      out[i] = f(a[bIndex(c, sa)], b[bIndex(c, sb)]);
    }
    return out;
  };
}

const BIN: [string, (a: Tensor, b: Tensor) => Tensor, (a: number, b: number) => number][] = [
  ["add", add, (a, b) => a + b],
  ["sub", sub, (a, b) => a - b],
  ["mul", mul, (a, b) => a * b],
  ["div", div, (a, b) => a / b],
  ["maximum", maximum, (a, b) => Math.max(a, b)],
  ["minimum", minimum, (a, b) => Math.min(a, b)],
];

const SHAPES: [number[], number[], number[]][] = [
  [[5], [5], [5]],
  [[2, 3, 4], [3, 1], [2, 3, 4]],
  [[1], [5, 2], [5, 2]],
  [[4, 1, 3], [1, 5, 1], [4, 5, 3]],
  [[3, 1, 1, 2, 1, 2], [2, 1, 3, 1], [3, 1, 2, 2, 3, 2]],
];

Deno.test("binary ops broadcast, forward and gradients", async () => {
  const r = rng(1);
  for (const [name, f, h] of BIN) {
    for (const [sa, sb, so] of SHAPES) {
      const a = rand(r, prod(sa), -2, 2);
      // keep b away from 0 for div and away from a for max/min ties
      const b = rand(r, prod(sb), 0.5, 1.5).map((v) => (r() < 0.5 ? -v : v));
      await checkGrad(
        `${name} ${sa} ${sb}`,
        ([x, y]) => f(x, y),
        hostBinary(h, sa, sb, so),
        [{ data: a, shape: sa }, { data: b, shape: sb }],
      );
    }
  }
});

const UN: [string, (x: Tensor) => Tensor, (x: number) => number, number, number][] = [
  ["neg", neg, (x) => -x, -2, 2],
  ["exp", exp, Math.exp, -2, 2],
  ["log", log, Math.log, 0.2, 3],
  ["sqrt", sqrt, Math.sqrt, 0.2, 3],
  ["rsqrt", rsqrt, (x) => 1 / Math.sqrt(x), 0.2, 3],
  ["abs", abs, Math.abs, -2, 2],
  ["square", square, (x) => x * x, -2, 2],
  ["relu", relu, (x) => Math.max(x, 0), -2, 2],
  ["sigmoid", sigmoid, (x) => 1 / (1 + Math.exp(-x)), -4, 4],
  ["tanh", tanh, Math.tanh, -3, 3],
  ["leakyRelu", (x) => leakyRelu(x, 0.1), (x) => (x > 0 ? x : 0.1 * x), -2, 2],
  ["addScalar", (x) => addScalar(x, 1.5), (x) => x + 1.5, -2, 2],
  ["mulScalar", (x) => mulScalar(x, -0.5), (x) => x * -0.5, -2, 2],
  ["pow3", (x) => powScalar(x, 3), (x) => x ** 3, -2, 2],
  ["pow1.5", (x) => powScalar(x, 1.5), (x) => x ** 1.5, 0.2, 2],
  ["pow-2", (x) => powScalar(x, -2), (x) => x ** -2, 0.5, 2],
  ["clamp", (x) => clamp(x, -0.5, 0.7), (x) => Math.min(Math.max(x, -0.5), 0.7), -2, 2],
];

Deno.test("unary and scalar ops, forward and gradients", async () => {
  const r = rng(2);
  for (const [name, f, h, lo, hi] of UN) {
    const shape = [3, 7];
    const x = rand(r, prod(shape), lo, hi).map((v) => (Math.abs(v) < 0.02 ? 0.3 : v));
    await checkGrad(
      name,
      ([t]) => f(t),
      ([a]) => a.map(h),
      [{ data: x, shape }],
    );
  }
});

Deno.test("extreme inputs stay finite", async () => {
  const x = tensor([-100, -30, 0, 30, 100]);
  const [s, t] = await Promise.all([sigmoid(x).array(), tanh(x).array()]);
  assertClose(s, [0, 1 / (1 + Math.exp(30)), 0.5, 1, 1], "sigmoid", 1e-5, 1e-7);
  assertClose(t, [-1, -1, 0, 1, 1], "tanh");
});

Deno.test("where selects and routes gradients", async () => {
  const r = rng(3);
  const cond = new Float32Array([1, 0, 0, 1, 1, 0]);
  const condT = tensor(cond, [2, 3]);
  await checkGrad(
    "where",
    ([a, b]) => where(condT, a, b),
    ([a, b]) => {
      const o = new Float64Array(6);
      for (let i = 0; i < 6; i++) o[i] = cond[i] ? a[i] : b[i % 3];
      return o;
    },
    [{ data: rand(r, 6), shape: [2, 3] }, { data: rand(r, 3), shape: [3] }],
  );
  condT.dispose();
});

Deno.test("integer dtypes: add/sub/mul/maximum/minimum/cast/equal", async () => {
  const a = tensor([1, -2, 3, 7], [4], "i32");
  const b = tensor([5], [1], "i32");
  assertEquals(await add(a, b).array(), [6, 3, 8, 12]);
  assertEquals(await sub(a, b).array(), [-4, -7, -2, 2]);
  assertEquals(await mul(a, b).array(), [5, -10, 15, 35]);
  assertEquals(await maximum(a, b).array(), [5, 5, 5, 7]);
  assertEquals(await minimum(a, b).array(), [1, -2, 3, 5]);
  assertEquals(await neg(a).array(), [-1, 2, -3, -7]);
  const u = tensor([1, 2, 3], [3], "u32");
  assertEquals(await add(u, u).array(), [2, 4, 6]);
  const f = cast(a, "f32");
  assertEquals(f.dtype, "f32");
  assertEquals(await f.array(), [1, -2, 3, 7]);
  const i = cast(tensor([1.7, -1.7, 2.2]), "i32");
  assertEquals(i.dtype, "i32");
  assertEquals(await i.array(), [1, -1, 2]);
  assertEquals(await equal(a, tensor([1, 2, 3, 4], [4], "i32")).array(), [1, 0, 1, 0]);
});

Deno.test("elementwise errors are clear", () => {
  tidy(() => {
    const a = tensor(new Float32Array(6), [2, 3]);
    const b = tensor(new Float32Array(4), [4]);
    const i = tensor([1, 2], [2], "i32");
    assertThrows(() => add(a, b), Error, "add: shapes [2, 3] and [4] do not broadcast");
    assertThrows(() => add(i, tensor([1, 2])), Error, "dtypes differ");
    assertThrows(() => exp(i), Error, "exp");
    assertThrows(() => div(i, i), Error, "div");
    assertThrows(() => clamp(a, 1, 0), Error, "clamp");
  });
});

Deno.test("large 1-D launch uses a 2-D grid", async () => {
  const n = 65535 * 256 + 1000;
  const x = tensor(new Float32Array(n).fill(1));
  const y = addScalar(x, 2);
  const d = await y.data();
  assertEquals([d[0], d[n - 1], d[n - 1000]], [3, 3, 3]);
  x.dispose();
  y.dispose();
});
