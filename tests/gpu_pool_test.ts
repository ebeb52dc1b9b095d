import { assert, assertEquals, assertThrows } from "@std/assert";
import { initDevice } from "../gpu/device.ts";
import { avgPool2d, globalAvgPool2d, maxPool2d } from "../gpu/ops/pool.ts";
import { Rng } from "../gpu/rng.ts";
import { readAll, type Tensor, tensor } from "../gpu/tensor.ts";

await initDevice();

function rand(rng: Rng, n: number): Float64Array {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}
const f32 = (a: Float64Array) => Float32Array.from(a);

function close(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string) {
  assertEquals(got.length, want.length, what);
  for (let i = 0; i < want.length; i++) {
    assert(
      Math.abs(got[i] - want[i]) <= tol * (1 + Math.abs(want[i])),
      `${what}[${i}]: got ${got[i]}, want ${want[i]}`,
    );
  }
}

function numGrad(p: Float64Array, f: () => number, h = 1e-6): Float64Array {
  const g = new Float64Array(p.length);
  for (let i = 0; i < p.length; i++) {
    const o = p[i];
    p[i] = o + h;
    const a = f();
    p[i] = o - h;
    const b = f();
    p[i] = o;
    g[i] = (a - b) / (2 * h);
  }
  return g;
}

const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, v, i) => s + v * b[i], 0);

type Mode = "max" | "avg" | "avg_pad";

/** Host NHWC pooling in f64. */
function poolHost(
  x: Float64Array,
  [n, h, w, c]: number[],
  k: [number, number],
  s: [number, number],
  p: [number, number],
  mode: Mode,
) {
  const oh = Math.floor((h + 2 * p[0] - k[0]) / s[0]) + 1;
  const ow = Math.floor((w + 2 * p[1] - k[1]) / s[1]) + 1;
  const y = new Float64Array(n * oh * ow * c);
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        for (let ch = 0; ch < c; ch++) {
          let best = -Infinity, sum = 0, cnt = 0;
          for (let ky = 0; ky < k[0]; ky++) {
            for (let kx = 0; kx < k[1]; kx++) {
              const iy = oy * s[0] - p[0] + ky, ix = ox * s[1] - p[1] + kx;
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
              const v = x[((b * h + iy) * w + ix) * c + ch];
              best = Math.max(best, v);
              sum += v;
              cnt++;
            }
          }
          const full = (Math.min(oy * s[0] - p[0] + k[0], h + p[0]) - (oy * s[0] - p[0])) *
            (Math.min(ox * s[1] - p[1] + k[1], w + p[1]) - (ox * s[1] - p[1]));
          y[((b * oh + oy) * ow + ox) * c + ch] = mode === "max"
            ? best
            : sum / (mode === "avg" ? cnt : full);
        }
      }
    }
  }
  return { y, shape: [n, oh, ow, c] };
}

const CASES: { shape: number[]; k: [number, number]; s: [number, number]; p: [number, number] }[] =
  [
    { shape: [1, 5, 5, 3], k: [2, 2], s: [2, 2], p: [0, 0] },
    { shape: [2, 7, 6, 3], k: [3, 3], s: [2, 2], p: [1, 1] },
    { shape: [1, 4, 5, 2], k: [3, 2], s: [1, 2], p: [1, 0] },
    { shape: [2, 3, 3, 1], k: [3, 3], s: [1, 1], p: [1, 1] },
  ];

for (const cs of CASES) {
  for (const mode of ["max", "avg", "avg_pad"] as Mode[]) {
    Deno.test(`${mode} pool ${JSON.stringify(cs)}: forward and gradient`, async () => {
      const rng = new Rng(cs.shape.reduce((a, b) => a * 7 + b, mode.length));
      const n = cs.shape.reduce((a, b) => a * b, 1);
      const xh = rand(rng, n);
      const x = tensor(f32(xh), cs.shape);
      x.requiresGrad = true;
      const opts = { size: cs.k, stride: cs.s, padding: cs.p };
      const y: Tensor = mode === "max"
        ? maxPool2d(x, opts)
        : avgPool2d(x, { ...opts, countIncludePad: mode === "avg_pad" });
      const ref = poolHost(xh, cs.shape, cs.k, cs.s, cs.p, mode);
      assertEquals(y.shape, ref.shape);
      const R = rand(rng, ref.y.length);
      const [dx] = y.node!.backward(tensor(f32(R), y.shape));
      const [yv, dxv] = await readAll([y, dx!]);
      close(yv, ref.y, 1e-5, "y");
      const g = numGrad(xh, () => dot(poolHost(xh, cs.shape, cs.k, cs.s, cs.p, mode).y, R));
      close(dxv, g, 1e-4, "dx");
    });
  }
}

Deno.test("globalAvgPool2d: forward and gradient", async () => {
  for (const shape of [[2, 3, 5, 3], [1, 1, 1, 4], [3, 8, 8, 17]]) {
    const rng = new Rng(shape[3]);
    const [n, h, w, c] = shape;
    const xh = rand(rng, n * h * w * c);
    const x = tensor(f32(xh), shape);
    x.requiresGrad = true;
    const y = globalAvgPool2d(x);
    assertEquals(y.shape, [n, c]);
    const ref = new Float64Array(n * c);
    for (let i = 0; i < xh.length; i++) {
      ref[Math.floor(i / (h * w * c)) * c + (i % c)] += xh[i] / (h * w);
    }
    const R = rand(rng, n * c);
    const [dx] = y.node!.backward(tensor(f32(R), [n, c]));
    const [yv, dxv] = await readAll([y, dx!]);
    close(yv, ref, 1e-5, "y");
    const want = new Float64Array(xh.length);
    for (let i = 0; i < xh.length; i++) {
      want[i] = R[Math.floor(i / (h * w * c)) * c + (i % c)] / (h * w);
    }
    close(dxv, want, 1e-5, "dx");
  }
});

Deno.test("pooling: errors name the op and shapes", () => {
  const x = tensor(new Float32Array(2 * 4 * 4 * 3), [2, 4, 4, 3]);
  assertThrows(
    () => maxPool2d(tensor(new Float32Array(12), [4, 3]), { size: 2 }),
    Error,
    "maxPool2d: x must be f32 NHWC",
  );
  assertThrows(() => avgPool2d(x, { size: 0 }), Error, "avgPool2d: invalid size");
  assertThrows(() => maxPool2d(x, { size: 2, padding: 2 }), Error, "at most half");
  assertThrows(() => maxPool2d(x, { size: 5 }), Error, "does not fit");
  assertThrows(() => avgPool2d(x, { size: 2, stride: [1, 0] }), Error, "invalid stride");
  assertThrows(
    () => globalAvgPool2d(tensor(new Int32Array(8), [1, 2, 2, 2])),
    Error,
    "globalAvgPool2d",
  );
});
