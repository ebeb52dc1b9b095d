/**
 * Kernels: training-mode BatchNorm over few rows (e.g. BatchNorm1d on a [batch, d] feature) in one
 * dispatch each way: one workgroup per 16 channels walks all rows twice. Forward: shifted sums of
 * x and x^2 (shift = row 0) -> mean, 1/std (into `stats`), the running-stat update, then y.
 * Backward: sums of dy and dy * xhat -> dbeta, dgamma, then dx. Same maths as
 * batch_norm_reduce.ts + batch_norm_apply.ts, which large tensors use.
 * @module
 */
import type { Launch } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import { packUniforms, wgReduce } from "./util.ts";

const CW = 16; // channels per workgroup
const RW = 16; // row lanes per workgroup

const HEAD = `var<workgroup> s1: array<f32, ${CW * RW}>;
var<workgroup> s2: array<f32, ${CW * RW}>;
@compute @workgroup_size(${CW}, ${RW})
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let c = wid.x * ${CW}u + lid.x;
  let cc = min(c, u.c - 1u);
  let li = lid.y * ${CW}u + lid.x;`;

// After the reduction, lane (0, x) of the arrays holds channel x's totals.
const REDUCE = `s1[li] = a;
  s2[li] = b;
  ${wgReduce(["s1", "s2"], RW, { lane: "lid.y", at: "li", step: CW })}
  let t1 = s1[lid.x];
  let t2 = s2[lid.x];`;

const forwardCode = `
struct P { rows: u32, c: u32, momentum: f32, eps: f32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> gamma: array<f32>;
@group(0) @binding(2) var<storage, read> beta: array<f32>;
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;
@group(0) @binding(4) var<storage, read_write> run_mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> run_var: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;
@group(0) @binding(7) var<uniform> u: P;
${HEAD}
  let k = x[cc];
  var a = 0.0;
  var b = 0.0;
  for (var r = lid.y; r < u.rows; r = r + ${RW}u) {
    let v = x[r * u.c + cc] - k;
    a = a + v;
    b = b + v * v;
  }
  ${REDUCE}
  let m = f32(u.rows);
  let d = t1 / m;
  let var_ = max(t2 / m - d * d, 0.0);
  let mean = k + d;
  let inv = inverseSqrt(var_ + u.eps);
  if (c < u.c) {
    if (lid.y == 0u) {
      stats[c] = mean;
      stats[u.c + c] = inv;
      run_mean[c] = (1.0 - u.momentum) * run_mean[c] + u.momentum * mean;
      run_var[c] = (1.0 - u.momentum) * run_var[c] + u.momentum * var_ * m / (m - 1.0);
    }
    for (var r = lid.y; r < u.rows; r = r + ${RW}u) {
      let j = r * u.c + c;
      y[j] = (x[j] - mean) * inv * gamma[c] + beta[c];
    }
  }
}`;

/** The whole training-mode forward (see the module doc); `stats` = f32[2C] [mean; invstd]. */
export function bnSmallForwardLaunch(
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  stats: Tensor,
  runMean: Tensor,
  runVar: Tensor,
  y: Tensor,
  rows: number,
  c: number,
  momentum: number,
  eps: number,
): Launch {
  return {
    name: "batch_norm_small_forward",
    code: forwardCode,
    bindings: [
      x.binding,
      gamma.binding,
      beta.binding,
      stats.binding,
      runMean.binding,
      runVar.binding,
      y.binding,
    ],
    uniforms: packUniforms([["u32", rows], ["u32", c], ["f32", momentum], ["f32", eps]]),
    workgroups: [Math.ceil(c / CW)],
  };
}

const backwardCode = `
struct P { rows: u32, c: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> stats: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(5) var<storage, read_write> dbeta: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;
@group(0) @binding(7) var<uniform> u: P;
${HEAD}
  let mean = stats[cc];
  let inv = stats[u.c + cc];
  var a = 0.0;
  var b = 0.0;
  for (var r = lid.y; r < u.rows; r = r + ${RW}u) {
    let j = r * u.c + cc;
    let g = dy[j];
    a = a + g;
    b = b + g * (x[j] - mean) * inv;
  }
  ${REDUCE}
  if (c < u.c) {
    if (lid.y == 0u) {
      dbeta[c] = t1;
      dgamma[c] = t2;
    }
    let m = f32(u.rows);
    let k = gamma[c] * inv;
    for (var r = lid.y; r < u.rows; r = r + ${RW}u) {
      let j = r * u.c + c;
      dx[j] = k * (dy[j] - t1 / m - (x[j] - mean) * inv * t2 / m);
    }
  }
}`;

/** The whole training-mode backward: dgamma, dbeta and dx (see the module doc). */
export function bnSmallBackwardLaunch(
  x: Tensor,
  dy: Tensor,
  stats: Tensor,
  gamma: Tensor,
  dgamma: Tensor,
  dbeta: Tensor,
  dx: Tensor,
  rows: number,
  c: number,
): Launch {
  return {
    name: "batch_norm_small_backward",
    code: backwardCode,
    bindings: [
      x.binding,
      dy.binding,
      stats.binding,
      gamma.binding,
      dgamma.binding,
      dbeta.binding,
      dx.binding,
    ],
    uniforms: packUniforms([["u32", rows], ["u32", c]]),
    workgroups: [Math.ceil(c / CW)],
  };
}
