import { assert, assertEquals, assertThrows } from "@std/assert";
import { initDevice } from "../gpu/device.ts";
import { l2Normalize } from "../gpu/ops/normalize.ts";
import { Rng } from "../gpu/rng.ts";
import { readAll, tensor } from "../gpu/tensor.ts";

await initDevice();

const f32 = (a: ArrayLike<number>) => Float32Array.from(a);

function close(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string) {
  assertEquals(got.length, want.length, what);
  for (let i = 0; i < want.length; i++) {
    assert(
      Math.abs(got[i] - want[i]) <= tol * (1 + Math.abs(want[i])),
      `${what}[${i}]: got ${got[i]}, want ${want[i]}`,
    );
  }
}

function normHost(x: Float64Array, d: number, eps: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length / d; r++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += x[r * d + j] ** 2;
    const n = Math.max(Math.sqrt(s), eps);
    for (let j = 0; j < d; j++) y[r * d + j] = x[r * d + j] / n;
  }
  return y;
}

for (
  const [shape, eps, scale] of [
    [[4, 5], 1e-8, 1],
    [[2, 3, 70], 1e-8, 1], // d > workgroup size
    [[1, 1], 1e-8, 1],
    [[3, 4], 0.5, 0.05], // every row on the clamped branch
  ] as [number[], number, number][]
) {
  Deno.test(`l2Normalize ${JSON.stringify(shape)} eps ${eps}: forward and gradient`, async () => {
    const rng = new Rng(shape.length * 10 + shape[shape.length - 1]);
    const n = shape.reduce((a, b) => a * b, 1), d = shape[shape.length - 1];
    const xh = new Float64Array(n).map(() => scale * rng.normal());
    const R = new Float64Array(n).map(() => rng.normal());
    const x = tensor(f32(xh), shape);
    x.requiresGrad = true;
    const y = l2Normalize(x, { eps });
    const [dx] = y.node!.backward(tensor(f32(R), shape));
    const [yv, dxv] = await readAll([y, dx!]);
    close(yv, normHost(xh, d, eps), 1e-5, "y");
    const g = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const o = xh[i];
      xh[i] = o + 1e-6;
      const a = normHost(xh, d, eps).reduce((s, v, k) => s + v * R[k], 0);
      xh[i] = o - 1e-6;
      const b = normHost(xh, d, eps).reduce((s, v, k) => s + v * R[k], 0);
      xh[i] = o;
      g[i] = (a - b) / 2e-6;
    }
    close(dxv, g, 1e-3, "dx");
  });
}

Deno.test("l2Normalize: zero rows stay zero; errors", async () => {
  const y = l2Normalize(tensor(new Float32Array(6), [2, 3]));
  assertEquals(Array.from(await y.data()), [0, 0, 0, 0, 0, 0]);
  const x = tensor(new Float32Array(6), [2, 3]);
  assertThrows(() => l2Normalize(x, { axis: 0 }), Error, "only the last axis");
  assertThrows(() => l2Normalize(tensor(new Int32Array(3), [3])), Error, "must be f32");
  assertThrows(() => l2Normalize(x, { eps: 0 }), Error, "eps");
});
