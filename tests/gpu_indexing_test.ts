import { assertEquals, assertThrows } from "@std/assert";
import { argmax, gather, initDevice, oneHot, tensor, tidy } from "../gpu/mod.ts";
import { checkGrad, coords, prod, rand, rng, strides } from "./gpu_op_helpers.ts";

await initDevice();

function hostGather(
  x: ArrayLike<number>,
  s: number[],
  idx: number[],
  ishape: number[],
  ax: number,
) {
  const os = [...s.slice(0, ax), ...ishape, ...s.slice(ax + 1)];
  const st = strides(s);
  const out = new Float64Array(prod(os));
  for (let i = 0; i < out.length; i++) {
    const c = coords(i, os);
    const pre = c.slice(0, ax);
    const mid = c.slice(ax, ax + ishape.length);
    const post = c.slice(ax + ishape.length);
    const flat = mid.reduce((a, v, d) => a + v * strides(ishape)[d], 0);
    const d = idx[flat];
    if (d < 0 || d >= s[ax]) continue;
    const src = [...pre, d, ...post];
    out[i] = x[src.reduce((a, v, k) => a + v * st[k], 0)];
  }
  return out;
}

Deno.test("gather: forward and scatter-add gradient (repeated indices)", async () => {
  const r = rng(41);
  const cases: [number[], number[], number[], number][] = [
    [[5, 3], [4, 0, 4, 2], [4], 0], // rows, with a repeat
    [[2, 6, 3], [5, 1, 1], [3], 1],
    [[3, 4], [3, 3, 0, 1, 2, 0], [2, 3], -1], // 2-D indices on the last axis
    [[4], [1, 3, 0], [3], 0], // (out-of-range indices are errors: tests/gpu_errors_test.ts)
  ];
  for (const [s, idx, ishape, axis] of cases) {
    const ax = axis < 0 ? axis + s.length : axis;
    const it = tensor(idx, ishape, "i32");
    await checkGrad(
      `gather ${s} axis ${axis}`,
      ([x]) => gather(x, it, axis),
      ([x]) => hostGather(x, s, idx, ishape, ax),
      [{ data: rand(r, prod(s)), shape: s }],
    );
    it.dispose();
  }
  // integer payloads (e.g. labels permuted for mixup)
  const y = tensor([7, 8, 9], [3], "i32");
  assertEquals(await gather(y, tensor([2, 0, 1], [3], "i32")).array(), [9, 7, 8]);
});

Deno.test("oneHot and argmax", async () => {
  const oh = oneHot(tensor([2, 0, 1, 2], [4], "i32"), 3);
  assertEquals(oh.shape, [4, 3]);
  assertEquals(await oh.array(), [0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1]);
  const x = tensor([1, 5, 5, -1, 2, 0, 3, 3, 9, 9, 9, 0], [2, 2, 3]);
  const a = argmax(x);
  assertEquals(a.dtype, "i32");
  assertEquals(a.shape, [2, 2]);
  assertEquals(await a.array(), [1, 1, 2, 0]);
  assertEquals(await argmax(x, 1).array(), [0, 0, 0, 1, 1, 0]);
  assertEquals(await argmax(x, 0).array(), [1, 0, 1, 1, 1, 0]);
  assertEquals(await argmax(tensor([3, 1, 4], [3], "i32")).array(), [2]);
});

Deno.test("indexing errors are clear", () => {
  tidy(() => {
    const x = tensor(new Float32Array(6), [2, 3]);
    assertThrows(() => gather(x, tensor([0, 1])), Error, "gather");
    assertThrows(() => gather(x, tensor([0], [1], "i32"), 2), Error, "axis 2 out of range");
    assertThrows(() => oneHot(tensor([0, 1]), 3), Error, "oneHot");
    assertThrows(() => oneHot(tensor([0, 1], [2], "i32"), 0), Error, "depth");
    assertThrows(() => argmax(x, 5), Error, "argmax");
  });
});
