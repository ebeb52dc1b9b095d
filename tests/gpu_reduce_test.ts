import { assertEquals, assertThrows } from "@std/assert";
import {
  grad,
  initDevice,
  max,
  mean,
  min,
  mul,
  sum,
  sumTo,
  tensor,
  tidy,
  tidyAsync,
} from "../gpu/mod.ts";
import { assertClose, checkGrad, coords, prod, rand, rng, strides } from "./gpu_op_helpers.ts";

await initDevice();

type Kind = "sum" | "mean" | "max" | "min";

/** Host reduction over `axes` of x (shape s); output in keepDims order (same element order). */
function hostReduce(kind: Kind, x: ArrayLike<number>, s: number[], axes: number[]): Float64Array {
  const os = s.map((d, i) => (axes.includes(i) ? 1 : d));
  const out = new Float64Array(prod(os)).fill(
    kind === "max" ? -Infinity : kind === "min" ? Infinity : 0,
  );
  const ost = strides(os);
  for (let i = 0; i < x.length; i++) {
    const c = coords(i, s);
    let k = 0;
    c.forEach((v, d) => (k += (axes.includes(d) ? 0 : v) * ost[d]));
    if (kind === "max") out[k] = Math.max(out[k], x[i]);
    else if (kind === "min") out[k] = Math.min(out[k], x[i]);
    else out[k] += x[i];
  }
  if (kind === "mean") {
    const n = prod(axes.map((a) => s[a]));
    for (let i = 0; i < out.length; i++) out[i] /= n;
  }
  return out;
}

const FNS = { sum, mean, max, min };

const CASES: [number[], number | number[] | undefined][] = [
  [[7], undefined],
  [[3, 5], 1],
  [[3, 5], 0],
  [[3, 5], -1],
  [[2, 3, 4], [0, 2]],
  [[2, 3, 4], 1],
  [[2, 1, 4, 3], [1, 3]],
  [[4, 3, 2, 5], [0, 2]],
  [[300, 3], 0],
  [[2, 300], 1],
];

Deno.test("sum/mean/max/min over axes: forward and gradients", async () => {
  const r = rng(11);
  for (const kind of ["sum", "mean", "max", "min"] as Kind[]) {
    for (const [s, axes] of CASES) {
      const x = rand(r, prod(s), -2, 2);
      const ax = axes === undefined
        ? s.map((_, i) => i)
        : (typeof axes === "number" ? [axes] : axes).map((a) => (a < 0 ? a + s.length : a));
      for (const keep of [false, true]) {
        await checkGrad(
          `${kind} ${s} axes ${axes} keep ${keep}`,
          ([t]) => {
            const y = FNS[kind](t, axes, keep);
            const want = keep
              ? s.map((d, i) => (ax.includes(i) ? 1 : d))
              : s.filter((_, i) => !ax.includes(i));
            assertEquals([...y.shape], want);
            return y;
          },
          ([a]) => hostReduce(kind, a, s, ax),
          [{ data: x, shape: s }],
          { h: 1e-5 },
        );
      }
    }
  }
});

Deno.test("max gradient is split between tied elements", async () => {
  await tidyAsync(async () => {
    const x = tensor([1, 3, 3, 0, 0, -1], [2, 3]);
    x.requiresGrad = true;
    const [g] = grad(sum(mul(max(x, 1), tensor([1, 2]))), [x]);
    assertClose(await g!.array(), [0, 0.5, 0.5, 1, 1, 0], "tie split");
  });
});

Deno.test("long reductions run in several passes", async () => {
  const r = rng(12);
  const shapes: [number[], number][] = [
    [[131072, 16], 0], // column sums (bias/BN backward)
    [[2, 40000], 1], // long rows
    [[20001, 3], 0],
  ];
  for (const [s, ax] of shapes) {
    const x = rand(r, prod(s), 0, 1);
    const t = tensor(x, s);
    const [a, b, c] = [sum(t, ax), max(t, ax), mean(t, ax)];
    const [av, bv, cv] = await Promise.all([a.data(), b.data(), c.data()]);
    assertClose(av, hostReduce("sum", x, s, [ax]), `sum ${s}`, 1e-4, 1e-3);
    assertClose(bv, hostReduce("max", x, s, [ax]), `max ${s}`);
    assertClose(cv, hostReduce("mean", x, s, [ax]), `mean ${s}`, 1e-4, 1e-6);
    for (const v of [t, a, b, c]) v.dispose();
  }
});

Deno.test("scalar results, integer sums, empty axes and sumTo", async () => {
  const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
  const s = sum(x);
  assertEquals(s.shape, []);
  assertEquals(s.size, 1);
  assertEquals(await s.item(), 21);
  assertEquals(await sum(tensor([1, -2, 3], [3], "i32")).item(), 2);
  assertEquals(await max(tensor([1, 7, 3], [3], "u32")).item(), 7);
  assertEquals(await sum(x, []).array(), [1, 2, 3, 4, 5, 6]);
  assertEquals(await sumTo(x, [3]).array(), [5, 7, 9]);
  assertEquals(await sumTo(x, [2, 1]).array(), [6, 15]);
  assertEquals(await sum(tensor(new Float32Array(0), [0, 3]), 0).array(), [0, 0, 0]);
  assertEquals(await max(tensor([-Infinity, -Infinity]), 0).item(), -Infinity);
});

Deno.test("reduce errors are clear", () => {
  tidy(() => {
    const x = tensor(new Float32Array(6), [2, 3]);
    assertThrows(() => sum(x, 2), Error, "sum: axis 2 out of range for rank 2");
    assertThrows(() => sum(x, [1, -1]), Error, "repeated axis");
    assertThrows(() => mean(tensor([1], [1], "i32")), Error, "mean");
    assertThrows(() => max(tensor(new Float32Array(0), [0])), Error, "empty reduction");
    assertThrows(() => sumTo(x, [4]), Error, "sumTo");
  });
});
