/**
 * Kernels: BatchNorm's elementwise passes over an [M, C] (channels-last) tensor: the forward
 * y = (x - mean) * invstd * gamma + beta, and the backward dx (training: through the batch
 * statistics, dx = gamma * invstd * (dy - sum(dy) / M - xhat * sum(dy * xhat) / M); eval:
 * dx = gamma * invstd * dy). `stats` holds [mean; invstd] (f32[2C]).
 * @module
 */
import type { Launch } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import { grid1d, main1d, packUniforms } from "./util.ts";

const WG = 256;

const forwardCode = `
struct P { n: u32, c: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> stats: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<uniform> u: P;
${main1d(WG)}
  if (i >= u.n) { return; }
  let c = i % u.c;
  y[i] = (x[i] - stats[c]) * stats[u.c + c] * gamma[c] + beta[c];
}`;

/** y = (x - mean) * invstd * gamma + beta. */
export function bnForwardLaunch(
  x: Tensor,
  stats: Tensor,
  gamma: Tensor,
  beta: Tensor,
  y: Tensor,
  c: number,
): Launch {
  return {
    name: "batch_norm_forward",
    code: forwardCode,
    bindings: [x.binding, stats.binding, gamma.binding, beta.binding, y.binding],
    uniforms: packUniforms([["u32", x.size], ["u32", c]]),
    workgroups: grid1d(x.size, WG),
  };
}

const trainBackwardCode = `
struct P { n: u32, c: u32, rows: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> stats: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> sum_dy_xhat: array<f32>;
@group(0) @binding(5) var<storage, read> sum_dy: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;
@group(0) @binding(7) var<uniform> u: P;
${main1d(WG)}
  if (i >= u.n) { return; }
  let c = i % u.c;
  let inv = stats[u.c + c];
  let xh = (x[i] - stats[c]) * inv;
  let m = f32(u.rows);
  dx[i] = gamma[c] * inv * (dy[i] - sum_dy[c] / m - xh * sum_dy_xhat[c] / m);
}`;

/** Training-mode dx from the per-channel sums (dgamma = sum(dy * xhat), dbeta = sum(dy)). */
export function bnBackwardTrainLaunch(
  x: Tensor,
  dy: Tensor,
  stats: Tensor,
  gamma: Tensor,
  sumDyXhat: Tensor,
  sumDy: Tensor,
  dx: Tensor,
  c: number,
): Launch {
  return {
    name: "batch_norm_backward",
    code: trainBackwardCode,
    bindings: [
      x.binding,
      dy.binding,
      stats.binding,
      gamma.binding,
      sumDyXhat.binding,
      sumDy.binding,
      dx.binding,
    ],
    uniforms: packUniforms([["u32", x.size], ["u32", c], ["u32", x.size / c]]),
    workgroups: grid1d(x.size, WG),
  };
}

const evalBackwardCode = `
struct P { n: u32, c: u32 }
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> stats: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@group(0) @binding(4) var<uniform> u: P;
${main1d(WG)}
  if (i >= u.n) { return; }
  let c = i % u.c;
  dx[i] = gamma[c] * stats[u.c + c] * dy[i];
}`;

/** Eval-mode dx = gamma * invstd * dy. */
export function bnBackwardEvalLaunch(
  dy: Tensor,
  stats: Tensor,
  gamma: Tensor,
  dx: Tensor,
  c: number,
): Launch {
  return {
    name: "batch_norm_backward_eval",
    code: evalBackwardCode,
    bindings: [dy.binding, stats.binding, gamma.binding, dx.binding],
    uniforms: packUniforms([["u32", dy.size], ["u32", c]]),
    workgroups: grid1d(dy.size, WG),
  };
}
