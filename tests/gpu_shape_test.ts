import { assertEquals, assertThrows } from "@std/assert";
import {
  add,
  broadcastTo,
  concat,
  detach,
  flatten,
  grad,
  initDevice,
  mul,
  pad,
  reshape,
  slice,
  sum,
  tensor,
  tidy,
  tidyAsync,
  transpose,
} from "../gpu/mod.ts";
import { bIndex, checkGrad, coords, prod, rand, rng, strides } from "./gpu_op_helpers.ts";

await initDevice();

function hostTranspose(x: ArrayLike<number>, s: number[], perm: number[]): Float64Array {
  const os = perm.map((p) => s[p]);
  const st = strides(s);
  const out = new Float64Array(x.length);
  for (let i = 0; i < out.length; i++) {
    const c = coords(i, os);
    let k = 0;
    perm.forEach((p, d) => (k += c[d] * st[p]));
    out[i] = x[k];
  }
  return out;
}

Deno.test("reshape/flatten: views with gradients; -1", async () => {
  const r = rng(21);
  await checkGrad(
    "reshape",
    ([x]) => {
      const y = reshape(x, [-1, 2]);
      assertEquals([...y.shape], [6, 2]);
      return mul(y, y);
    },
    ([a]) => a.map((v) => v * v),
    [{ data: rand(r, 12), shape: [3, 4] }],
  );
  tidy(() => {
    assertEquals([...flatten(tensor(new Float32Array(24), [2, 3, 4])).shape], [2, 12]);
    assertThrows(() => reshape(tensor(new Float32Array(6), [6]), [4, -1]), Error, "reshape");
    assertThrows(() => reshape(tensor(new Float32Array(6), [6]), [-1, -1]), Error, "-1");
  });
});

Deno.test("transpose: forward and gradients", async () => {
  const r = rng(22);
  const cases: [number[], number[] | undefined][] = [
    [[3, 5], undefined],
    [[2, 3, 4], [1, 0, 2]],
    [[2, 3, 4], [2, 0, 1]],
    [[1, 3, 2, 5], [0, 3, 1, 2]],
    [[2, 1, 3, 2, 2, 3], [5, 4, 3, 2, 1, 0]],
  ];
  for (const [s, perm] of cases) {
    const p = perm ?? s.map((_, i) => s.length - 1 - i);
    await checkGrad(
      `transpose ${s} ${p}`,
      ([x]) => transpose(x, perm),
      ([a]) => hostTranspose(a, s, p),
      [{ data: rand(r, prod(s)), shape: s }],
    );
  }
  tidy(() => {
    assertThrows(() => transpose(tensor(new Float32Array(6), [2, 3]), [0, 0]), Error, "transpose");
  });
});

Deno.test("slice and pad: forward and gradients", async () => {
  const r = rng(23);
  const s = [4, 5, 3];
  const begin = [1, 0, 2];
  const size = [2, -1, 1];
  const sz = [2, 5, 1];
  await checkGrad(
    "slice",
    ([x]) => slice(x, begin, size),
    ([a]) => {
      const out = new Float64Array(prod(sz));
      const st = strides(s);
      for (let i = 0; i < out.length; i++) {
        const c = coords(i, sz);
        out[i] = a[c.reduce((k, v, d) => k + (v + begin[d]) * st[d], 0)];
      }
      return out;
    },
    [{ data: rand(r, prod(s)), shape: s }],
  );
  const ps = [2, 3, 2];
  const pads: [number, number][] = [[1, 0], [0, 2], [1, 1]];
  const os = ps.map((d, i) => d + pads[i][0] + pads[i][1]);
  await checkGrad(
    "pad",
    ([x]) => pad(x, pads, 0.5),
    ([a]) => {
      const out = new Float64Array(prod(os));
      const st = strides(ps);
      for (let i = 0; i < out.length; i++) {
        const c = coords(i, os).map((v, d) => v - pads[d][0]);
        const inside = c.every((v, d) => v >= 0 && v < ps[d]);
        out[i] = inside ? a[c.reduce((k, v, d) => k + v * st[d], 0)] : 0.5;
      }
      return out;
    },
    [{ data: rand(r, prod(ps)), shape: ps }],
  );
  tidy(() => {
    const x = tensor(new Float32Array(6), [2, 3]);
    assertThrows(
      () => slice(x, [0, 2], [1, 2]),
      Error,
      "slice: begin [0,2] size [1,2] out of range",
    );
    assertThrows(() => slice(x, [0], [1]), Error, "rank 2");
    assertThrows(() => pad(x, [[0, 1]]), Error, "pad");
    assertThrows(() => pad(x, [[0, 1], [-1, 0]]), Error, "pad");
  });
});

Deno.test("concat: forward and gradients on each axis", async () => {
  const r = rng(24);
  for (const axis of [0, 1, -1]) {
    const shapes = axis === 0 ? [[1, 3, 2], [3, 3, 2]] : axis === 1 ? [[2, 1, 2], [2, 4, 2]] : [
      [2, 3, 1],
      [2, 3, 3],
    ];
    const extra = shapes[0].map((d, i) => (i === (axis + 3) % 3 ? 2 : d));
    const all = [...shapes, extra];
    const ax = (axis + 3) % 3;
    const os = [...all[0]];
    os[ax] = all.reduce((s, x) => s + x[ax], 0);
    await checkGrad(
      `concat axis ${axis}`,
      (xs) => concat(xs, axis),
      (xs) => {
        const out = new Float64Array(prod(os));
        for (let i = 0; i < out.length; i++) {
          const c = coords(i, os);
          let j = 0;
          while (c[ax] >= all[j][ax]) c[ax] -= all[j++][ax];
          out[i] = xs[j][c.reduce((k, v, d) => k + v * strides(all[j])[d], 0)];
        }
        return out;
      },
      all.map((s) => ({ data: rand(r, prod(s)), shape: s })),
    );
  }
  tidy(() => {
    const a = tensor(new Float32Array(6), [2, 3]);
    const b = tensor(new Float32Array(4), [2, 2]);
    assertThrows(() => concat([a, b], 0), Error, "concat");
    assertThrows(() => concat([a, b], 2), Error, "axis 2 out of range");
    assertThrows(() => concat([]), Error, "no tensors");
  });
});

Deno.test("broadcastTo: forward and gradient; detach stops gradients", async () => {
  const r = rng(25);
  const os = [2, 4, 3];
  await checkGrad(
    "broadcastTo",
    ([x]) => broadcastTo(x, os),
    ([a]) => {
      const out = new Float64Array(prod(os));
      for (let i = 0; i < out.length; i++) out[i] = a[bIndex(coords(i, os), [4, 1])];
      return out;
    },
    [{ data: rand(r, 4), shape: [4, 1] }],
  );
  await tidyAsync(async () => {
    assertThrows(() => broadcastTo(tensor([1, 2, 3]), [2, 2]), Error, "broadcast");
    const x = tensor([1, 2, 3]);
    x.requiresGrad = true;
    const y = add(mul(x, x), mul(detach(x), x));
    const [g] = grad(sum(y), [x]);
    // d/dx (x^2 + c x) with c = x held constant: 2x + x = 3x
    assertEquals(await g!.array(), [3, 6, 9]);
  });
});
