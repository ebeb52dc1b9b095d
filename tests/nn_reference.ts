/**
 * Host f64 reference implementations of the nn layers (NHWC, HWIO) and a finite-difference
 * gradient checker, shared by the nn tests. Not a test file itself.
 * @module
 */

/** A host tensor in f64. */
export interface HT {
  shape: number[];
  data: Float64Array;
}

/** Makes a host tensor from values. */
export function ht(shape: number[], data: ArrayLike<number>): HT {
  return { shape, data: Float64Array.from(data) };
}

/** Deterministic pseudo-random values in [-1, 1). */
export function randArray(n: number, seed: number): Float64Array {
  let s = (seed * 2654435761) >>> 0 || 1;
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    a[i] = (s / 4294967296) * 2 - 1;
  }
  return a;
}

/** Conv2d NHWC x HWIO with symmetric zero padding. */
export function conv2dRef(
  x: HT,
  w: HT,
  b: HT | null,
  stride: [number, number],
  pad: [number, number],
): HT {
  const [n, h, wd, ci] = x.shape;
  const [kh, kw, wci, co] = w.shape;
  if (wci !== ci) throw new Error("conv2dRef: channels");
  const ho = Math.floor((h + 2 * pad[0] - kh) / stride[0]) + 1;
  const wo = Math.floor((wd + 2 * pad[1] - kw) / stride[1]) + 1;
  const out = new Float64Array(n * ho * wo * co);
  for (let b0 = 0; b0 < n; b0++) {
    for (let oy = 0; oy < ho; oy++) {
      for (let ox = 0; ox < wo; ox++) {
        const o = ((b0 * ho + oy) * wo + ox) * co;
        if (b) { for (let c = 0; c < co; c++) out[o + c] = b.data[c]; }
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * stride[0] - pad[0] + ky;
          if (iy < 0 || iy >= h) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox * stride[1] - pad[1] + kx;
            if (ix < 0 || ix >= wd) continue;
            const xi = ((b0 * h + iy) * wd + ix) * ci;
            const wi = (ky * kw + kx) * ci * co;
            for (let c = 0; c < ci; c++) {
              const xv = x.data[xi + c];
              if (xv === 0) continue;
              const wr = wi + c * co;
              for (let k = 0; k < co; k++) out[o + k] += xv * w.data[wr + k];
            }
          }
        }
      }
    }
  }
  return { shape: [n, ho, wo, co], data: out };
}

/** BatchNorm over every axis but the last: batch statistics (training) or given running ones. */
export function bnRef(
  x: HT,
  gamma: HT,
  beta: HT,
  eps: number,
  running?: { mean: HT; var: HT },
): { y: HT; mean: Float64Array; varBiased: Float64Array } {
  const c = x.shape[x.shape.length - 1];
  const rows = x.data.length / c;
  const mean = new Float64Array(c), v = new Float64Array(c);
  if (running) {
    mean.set(running.mean.data);
    v.set(running.var.data);
  } else {
    for (let r = 0; r < rows; r++) for (let k = 0; k < c; k++) mean[k] += x.data[r * c + k];
    for (let k = 0; k < c; k++) mean[k] /= rows;
    for (let r = 0; r < rows; r++) {
      for (let k = 0; k < c; k++) v[k] += (x.data[r * c + k] - mean[k]) ** 2;
    }
    for (let k = 0; k < c; k++) v[k] /= rows;
  }
  const out = new Float64Array(x.data.length);
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < c; k++) {
      out[r * c + k] = (x.data[r * c + k] - mean[k]) / Math.sqrt(v[k] + eps) * gamma.data[k] +
        beta.data[k];
    }
  }
  return { y: { shape: [...x.shape], data: out }, mean, varBiased: v };
}

/** max(x, 0). */
export function reluRef(x: HT): HT {
  return { shape: [...x.shape], data: x.data.map((v) => (v > 0 ? v : 0)) };
}

/** a + b (same shapes). */
export function addRef(a: HT, b: HT): HT {
  return { shape: [...a.shape], data: a.data.map((v, i) => v + b.data[i]) };
}

/** x[:, ::s, ::s, :] with channels zero-padded to outC (floor half before). */
export function shortcutARef(x: HT, stride: number, outC: number): HT {
  const [n, h, w, c] = x.shape;
  const ho = Math.ceil(h / stride), wo = Math.ceil(w / stride);
  const before = Math.floor((outC - c) / 2);
  const out = new Float64Array(n * ho * wo * outC);
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < ho; y++) {
      for (let xx = 0; xx < wo; xx++) {
        for (let k = 0; k < c; k++) {
          out[((b * ho + y) * wo + xx) * outC + before + k] =
            x.data[((b * h + y * stride) * w + xx * stride) * c + k];
        }
      }
    }
  }
  return { shape: [n, ho, wo, outC], data: out };
}

/** Mean over H, W: [N, H, W, C] -> [N, C]. */
export function gapRef(x: HT): HT {
  const [n, h, w, c] = x.shape;
  const out = new Float64Array(n * c);
  for (let b = 0; b < n; b++) {
    for (let p = 0; p < h * w; p++) {
      for (let k = 0; k < c; k++) out[b * c + k] += x.data[(b * h * w + p) * c + k] / (h * w);
    }
  }
  return { shape: [n, c], data: out };
}

/** Max or average pooling NHWC with symmetric padding (padded cells excluded). */
export function poolRef(
  x: HT,
  kind: "max" | "avg",
  size: [number, number],
  stride: [number, number],
  pad: [number, number],
): HT {
  const [n, h, w, c] = x.shape;
  const ho = Math.floor((h + 2 * pad[0] - size[0]) / stride[0]) + 1;
  const wo = Math.floor((w + 2 * pad[1] - size[1]) / stride[1]) + 1;
  const out = new Float64Array(n * ho * wo * c);
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < ho; oy++) {
      for (let ox = 0; ox < wo; ox++) {
        for (let k = 0; k < c; k++) {
          let acc = kind === "max" ? -Infinity : 0, cnt = 0;
          for (let ky = 0; ky < size[0]; ky++) {
            for (let kx = 0; kx < size[1]; kx++) {
              const iy = oy * stride[0] - pad[0] + ky, ix = ox * stride[1] - pad[1] + kx;
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
              const v = x.data[((b * h + iy) * w + ix) * c + k];
              acc = kind === "max" ? Math.max(acc, v) : acc + v;
              cnt++;
            }
          }
          out[((b * ho + oy) * wo + ox) * c + k] = kind === "max" ? acc : acc / cnt;
        }
      }
    }
  }
  return { shape: [n, ho, wo, c], data: out };
}

/** x [N, in] @ W [in, out] + b. */
export function denseRef(x: HT, w: HT, b: HT | null): HT {
  const [n, fin] = x.shape;
  const fout = w.shape[1];
  const out = new Float64Array(n * fout);
  for (let i = 0; i < n; i++) {
    for (let o = 0; o < fout; o++) {
      let s = b ? b.data[o] : 0;
      for (let k = 0; k < fin; k++) s += x.data[i * fin + k] * w.data[k * fout + o];
      out[i * fout + o] = s;
    }
  }
  return { shape: [n, fout], data: out };
}

/** Rows scaled to unit norm: x / max(||x||, eps). */
export function l2NormRef(x: HT, eps = 1e-8): HT {
  const d = x.shape[x.shape.length - 1];
  const out = new Float64Array(x.data.length);
  for (let r = 0; r < x.data.length / d; r++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += x.data[r * d + k] ** 2;
    const nrm = Math.max(Math.sqrt(s), eps);
    for (let k = 0; k < d; k++) out[r * d + k] = x.data[r * d + k] / nrm;
  }
  return { shape: [...x.shape], data: out };
}

/** sum(a * r). */
export function dotSum(a: HT, r: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.data.length; i++) s += a.data[i] * r[i];
  return s;
}

export { assertClose } from "./gpu_op_helpers.ts";

/**
 * Compares analytic gradients (from the GPU) with central finite differences of a host f64
 * function at `perParam` coordinates of each parameter (host arrays are perturbed in place).
 * Tolerance: |fd - g| <= rtol * max(|fd|, 0.1 * max|g of that param|) + atol.
 */
export function checkGradients(
  params: { name: string; host: Float64Array; grad: ArrayLike<number> }[],
  f: () => number,
  options: { perParam?: number; step?: number; rtol?: number; atol?: number; seed?: number } = {},
): number {
  const per = options.perParam ?? 3, step = options.step ?? 1e-5;
  const rtol = options.rtol ?? 2e-3, atol = options.atol ?? 1e-6;
  const picks = randArray(params.length * per, options.seed ?? 5);
  let checked = 0;
  params.forEach((p, pi) => {
    let gmax = 0;
    for (let i = 0; i < p.grad.length; i++) gmax = Math.max(gmax, Math.abs(p.grad[i]));
    for (let j = 0; j < per; j++) {
      const idx = Math.floor(((picks[pi * per + j] + 1) / 2) * p.host.length) % p.host.length;
      const orig = p.host[idx];
      p.host[idx] = orig + step;
      const fp = f();
      p.host[idx] = orig - step;
      const fm = f();
      p.host[idx] = orig;
      const fd = (fp - fm) / (2 * step);
      const g = p.grad[idx];
      const tol = rtol * Math.max(Math.abs(fd), 0.1 * gmax) + atol;
      if (!(Math.abs(fd - g) <= tol)) {
        throw new Error(
          `gradient of ${p.name}[${idx}]: analytic ${g}, finite difference ${fd} (tol ${tol})`,
        );
      }
      checked++;
    }
  });
  return checked;
}
