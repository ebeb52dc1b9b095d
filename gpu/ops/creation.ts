/** Tensor creation on the GPU: zeros, ones, full, *Like, and host-seeded random tensors. @module */
import type { DType } from "../dtype.ts";
import { engine } from "../engine.ts";
import { fillLaunch } from "../kernels/fill.ts";
import type { Rng } from "../rng.ts";
import { empty, sizeOf, type Tensor, tensor } from "../tensor.ts";

/** A tensor with every element `value` (filled by a kernel; safe inside captured steps). */
export function full(shape: readonly number[], value: number, dtype: DType = "f32"): Tensor {
  const t = empty(shape, dtype);
  if (t.size) engine().dispatch(fillLaunch(t, value));
  return t;
}

/** Overwrites every element of `t` with `value`, in place. */
export function fill_(t: Tensor, value: number): Tensor {
  if (t.size) engine().dispatch(fillLaunch(t, value));
  return t;
}

/** Zeros of a shape. */
export function zeros(shape: readonly number[], dtype: DType = "f32"): Tensor {
  return full(shape, 0, dtype);
}

/** Ones of a shape. */
export function ones(shape: readonly number[], dtype: DType = "f32"): Tensor {
  return full(shape, 1, dtype);
}

/** Zeros shaped like `t`. */
export function zerosLike(t: Tensor): Tensor {
  return full(t.shape, 0, t.dtype);
}

/** Ones shaped like `t`. */
export function onesLike(t: Tensor): Tensor {
  return full(t.shape, 1, t.dtype);
}

/** Normal(mean, std) samples from a seeded host RNG, uploaded. */
export function randomNormal(shape: readonly number[], rng: Rng, mean = 0, std = 1): Tensor {
  const a = new Float32Array(sizeOf(shape));
  for (let i = 0; i < a.length; i++) a[i] = mean + std * rng.normal();
  return tensor(a, shape);
}

/** Uniform [lo, hi) samples from a seeded host RNG, uploaded. */
export function randomUniform(shape: readonly number[], rng: Rng, lo = 0, hi = 1): Tensor {
  const a = new Float32Array(sizeOf(shape));
  for (let i = 0; i < a.length; i++) a[i] = lo + (hi - lo) * rng.next();
  return tensor(a, shape);
}
