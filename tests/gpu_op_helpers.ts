/**
 * Test helpers for the GPU op tests: a seeded RNG, f64 host references for shapes/broadcasting,
 * closeness checks, and a gradient checker that compares the GPU's analytic gradients against
 * central finite differences of an f64 host reference.
 * @module
 */
import { assert } from "@std/assert";
import { grad, noGrad, readAll, sum, type Tensor, tensor, tidyAsync } from "../gpu/mod.ts";
import { mul } from "../gpu/ops/elementwise.ts";

/** Mulberry32: a small seeded RNG in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n uniform values in [lo, hi) as f32. */
export function rand(r: () => number, n: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * r();
  return a;
}

/** Product of dims. */
export function prod(s: readonly number[]): number {
  return s.reduce((a, b) => a * b, 1);
}

/** Row-major strides. */
export function strides(s: readonly number[]): number[] {
  const st = new Array(s.length).fill(1);
  for (let i = s.length - 2; i >= 0; i--) st[i] = st[i + 1] * s[i + 1];
  return st;
}

/** Coordinates of linear index i in shape s. */
export function coords(i: number, s: readonly number[]): number[] {
  const c = new Array(s.length);
  for (let d = s.length - 1; d >= 0; d--) {
    c[d] = i % s[d];
    i = Math.floor(i / s[d]);
  }
  return c;
}

/** Linear index in `inShape` of output coords `c` under numpy broadcasting. */
export function bIndex(c: number[], inShape: readonly number[]): number {
  const off = c.length - inShape.length;
  const st = strides(inShape);
  let k = 0;
  for (let d = 0; d < inShape.length; d++) if (inShape[d] !== 1) k += c[d + off] * st[d];
  return k;
}

/** Asserts every |a - e| <= atol + rtol |e| (NaN must match NaN). */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  msg = "",
  rtol = 1e-4,
  atol = 1e-5,
): void {
  assert(
    actual.length === expected.length,
    `${msg}: length ${actual.length} != ${expected.length}`,
  );
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) {
      throw new Error(`${msg}: element ${i}: got ${a}, expected ${e}`);
    }
  }
}

/** sum(a * b) of two f64 arrays of one length. */
export function dot64(a: Float64Array, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/**
 * Central finite differences (step `h`) of sum(f() * R) with respect to every element of `p`,
 * which `f` reads (it is perturbed in place and restored).
 */
export function fdGradOfSum(
  p: Float64Array,
  R: ArrayLike<number>,
  f: () => Float64Array,
  h = 1e-4,
): Float64Array {
  const g = new Float64Array(p.length);
  for (let i = 0; i < p.length; i++) {
    const v = p[i];
    p[i] = v + h;
    const up = dot64(f(), R);
    p[i] = v - h;
    const dn = dot64(f(), R);
    p[i] = v;
    g[i] = (up - dn) / (2 * h);
  }
  return g;
}

/**
 * Asserts every |got - want| <= tol * max|want| + 1e-5: a tolerance scaled by the largest
 * expected magnitude (for sums of many products, whose small elements carry the large ones'
 * rounding).
 */
export function assertCloseToScale(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  what: string,
  tol = 1e-3,
): void {
  assert(got.length === want.length, `${what}: length ${got.length} vs ${want.length}`);
  let scale = 1e-6;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < want.length; i++) {
    assert(
      Math.abs(got[i] - want[i]) <= tol * scale + 1e-5,
      `${what}: element ${i}: got ${got[i]}, want ${want[i]} (scale ${scale})`,
    );
  }
}

/** An input of a gradient check. */
export interface GradInput {
  data: Float32Array;
  shape: number[];
}

/**
 * Checks `gpuFn` against `hostFn` (f64): forward values, and dL/d(input) for L = sum(out * R)
 * (R fixed random) against central finite differences of the host reference.
 */
export async function checkGrad(
  name: string,
  gpuFn: (xs: Tensor[]) => Tensor,
  hostFn: (xs: Float64Array[]) => Float64Array,
  inputs: GradInput[],
  opts: { rtol?: number; atol?: number; h?: number; seed?: number } = {},
): Promise<void> {
  const { rtol = 2e-3, atol = 2e-4, h = 1e-4, seed = 7 } = opts;
  const x64 = inputs.map((x) => Float64Array.from(x.data));
  const ref = hostFn(x64);
  const R = Float64Array.from(rand(rng(seed), ref.length, -1, 1));
  const fd = x64.map((x) => fdGradOfSum(x, R, () => hostFn(x64), h));
  await tidyAsync(async () => {
    const params = inputs.map((x) => {
      const t = tensor(x.data, x.shape);
      t.requiresGrad = true;
      return t;
    });
    const out = gpuFn(params);
    const Rt = noGrad(() => tensor(Float32Array.from(R), [...out.shape]));
    const L = sum(mul(out, Rt));
    const gs = grad(L, params);
    for (const g of gs) assert(g !== null, `${name}: missing gradient`);
    const [y, ...gv] = await readAll([out, ...(gs as Tensor[])]);
    assertClose(y, ref, `${name} forward`, 1e-4, 1e-5);
    gv.forEach((g, j) => assertClose(g, fd[j], `${name} grad[${j}]`, rtol, atol));
  });
}
