/**
 * Kernels: row-wise L2 normalisation y = x / max(||x||, eps) over the last axis of an [R, D] view
 * (one workgroup per row; the forward also stores the row norms) and its exact backward:
 * dx = dy / n - x (x . dy) / n^3 where n = ||x|| > eps, and dx = dy / eps on the clamped branch.
 * @module
 */
import type { Launch } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import { grid1d, mainPerRow, packUniforms, wgReduce } from "./util.ts";

const WG = 64;

function source(backward: boolean): string {
  const decls = backward
    ? `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> norm: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@group(0) @binding(4) var<uniform> u: P;`
    : `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> norm: array<f32>;
@group(0) @binding(3) var<uniform> u: P;`;
  const acc = backward ? "x[base + j] * dy[base + j]" : "x[base + j] * x[base + j]";
  const write = backward
    ? `let n = norm[row];
  let dot = s[0];
  for (var j = lid; j < u.d; j += ${WG}u) {
    if (n > u.eps) {
      dx[base + j] = dy[base + j] / n - x[base + j] * dot / (n * n * n);
    } else {
      dx[base + j] = dy[base + j] / u.eps;
    }
  }`
    : `let n = sqrt(s[0]);
  let inv = 1.0 / max(n, u.eps);
  for (var j = lid; j < u.d; j += ${WG}u) { y[base + j] = x[base + j] * inv; }
  if (lid == 0u) { norm[row] = n; }`;
  return `
struct P { rows: u32, d: u32, eps: f32 }
${decls}
var<workgroup> s: array<f32, ${WG}>;
${mainPerRow(WG, "u.rows")}
  let base = row * u.d;
  var a = 0.0;
  for (var j = lid; j < u.d; j += ${WG}u) { a += ${acc}; }
  s[lid] = a;
  ${wgReduce(["s"], WG)}
  ${write}
}`;
}
const forwardCode = source(false);
const backwardCode = source(true);

/** y = x / max(||x_row||, eps); norm[row] = ||x_row||. */
export function l2NormalizeLaunch(
  x: Tensor,
  y: Tensor,
  norm: Tensor,
  d: number,
  eps: number,
): Launch {
  const rows = norm.size;
  return {
    name: "l2_normalize",
    code: forwardCode,
    bindings: [x.binding, y.binding, norm.binding],
    uniforms: packUniforms([["u32", rows], ["u32", d], ["f32", eps]]),
    workgroups: grid1d(rows, 1),
  };
}

/** dx of the L2 normalisation from x, dy and the stored row norms. */
export function l2NormalizeBackwardLaunch(
  x: Tensor,
  dy: Tensor,
  norm: Tensor,
  dx: Tensor,
  d: number,
  eps: number,
): Launch {
  const rows = norm.size;
  return {
    name: "l2_normalize_backward",
    code: backwardCode,
    bindings: [x.binding, dy.binding, norm.binding, dx.binding],
    uniforms: packUniforms([["u32", rows], ["u32", d], ["f32", eps]]),
    workgroups: grid1d(rows, 1),
  };
}
