/**
 * The GEMM family's reductions: column sums of a [R, C] matrix in row chunks (split-K partial sums,
 * conv bias gradients), and summing a batched result over broadcast batch dimensions back to an
 * operand's batch shape (matmul gradients).
 * @module
 */
import type { Launch } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import { grid1d, main1d, packUniforms } from "./util.ts";

const WG = 64;

const COLSUM = `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
struct P { R: u32, C: u32, chunk: u32, n: u32 }
@group(0) @binding(2) var<uniform> p: P;
${main1d(WG)}
  if (i >= p.n) { return; }
  let s = i / p.C;
  let c = i % p.C;
  let r1 = min(p.R, (s + 1u) * p.chunk);
  var acc = 0.0;
  for (var r = s * p.chunk; r < r1; r++) { acc += x[r * p.C + c]; }
  y[i] = acc;
}`;

/**
 * out[s, c] = sum of x[r, c] over rows r in chunk s (rows s*chunk .. (s+1)*chunk-1).
 * `out` must hold ceil(R / chunk) * C elements.
 */
export function colSumLaunch(x: Tensor, out: Tensor, R: number, C: number, chunk: number): Launch {
  const n = Math.ceil(R / chunk) * C;
  return {
    name: "gemm_colsum",
    code: COLSUM,
    bindings: [x.binding, out.binding],
    uniforms: packUniforms([["u32", R], ["u32", C], ["u32", chunk], ["u32", n]]),
    workgroups: grid1d(n, WG),
  };
}

const SUM_TO = `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
struct P { n: u32, inner: u32, total: u32, f1: u32, f2: u32, f3: u32, t0: u32, t1: u32, t2: u32, t3: u32 }
@group(0) @binding(2) var<uniform> p: P;
${main1d(WG)}
  if (i >= p.n) { return; }
  let e = i % p.inner;
  var q = i / p.inner;
  let o3 = q % p.t3; q = q / p.t3;
  let o2 = q % p.t2; q = q / p.t2;
  let o1 = q % p.t1; let o0 = q / p.t1;
  var acc = 0.0;
  for (var b = 0u; b < p.total; b++) {
    var r = b;
    let j3 = r % p.f3; r = r / p.f3;
    let j2 = r % p.f2; r = r / p.f2;
    let j1 = r % p.f1; let j0 = r / p.f1;
    let ok = (p.t0 == 1u || j0 == o0) && (p.t1 == 1u || j1 == o1) && (p.t2 == 1u || j2 == o2) &&
      (p.t3 == 1u || j3 == o3);
    if (ok) { acc += x[b * p.inner + e]; }
  }
  y[i] = acc;
}`;

/**
 * Sums x [full batch (4 dims, padded with leading 1s)..., inner] over the batch dims where
 * `target` is 1, into out [target batch..., inner].
 */
export function sumToBatchLaunch(
  x: Tensor,
  out: Tensor,
  full: [number, number, number, number],
  target: [number, number, number, number],
  inner: number,
): Launch {
  const total = full[0] * full[1] * full[2] * full[3];
  const n = target[0] * target[1] * target[2] * target[3] * inner;
  return {
    name: "matmul_sum_batch",
    code: SUM_TO,
    bindings: [x.binding, out.binding],
    uniforms: packUniforms([
      ["u32", n],
      ["u32", inner],
      ["u32", total],
      ["u32", full[1]],
      ["u32", full[2]],
      ["u32", full[3]],
      ["u32", target[0]],
      ["u32", target[1]],
      ["u32", target[2]],
      ["u32", target[3]],
    ]),
    workgroups: grid1d(n, WG),
  };
}
