/**
 * Kernels: global average pooling NHWC [N, H, W, C] -> [N, C] (one thread per (n, c) looping over
 * H * W; neighbouring threads read neighbouring channels) and its backward (dx = dy / (H * W),
 * broadcast over the pixels).
 * @module
 */
import type { Launch } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import { grid1d, linearIndex, packUniforms } from "./util.ts";

const WG = 256;
const HEAD =
  "fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {";

const forwardCode = `
struct P { total: u32, hw: u32, c: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> u: P;
@compute @workgroup_size(${WG})
${HEAD}
  ${linearIndex(WG)}
  if (i >= u.total) { return; }
  let c = i % u.c;
  let n = i / u.c;
  var s = 0.0;
  var j = n * u.hw * u.c + c;
  for (var k = 0u; k < u.hw; k++) {
    s = s + x[j];
    j = j + u.c;
  }
  y[i] = s / f32(u.hw);
}`;

/** y[n, c] = mean over h, w of x[n, h, w, c]. */
export function globalAvgPoolLaunch(x: Tensor, y: Tensor, hw: number, c: number): Launch {
  return {
    name: "global_avg_pool",
    code: forwardCode,
    bindings: [x.binding, y.binding],
    uniforms: packUniforms([["u32", y.size], ["u32", hw], ["u32", c]]),
    workgroups: grid1d(y.size, WG),
  };
}

const backwardCode = `
struct P { total: u32, hw: u32, c: u32 }
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;
@group(0) @binding(2) var<uniform> u: P;
@compute @workgroup_size(${WG})
${HEAD}
  ${linearIndex(WG)}
  if (i >= u.total) { return; }
  let c = i % u.c;
  let n = i / (u.hw * u.c);
  dx[i] = dy[n * u.c + c] / f32(u.hw);
}`;

/** dx[n, h, w, c] = dy[n, c] / (H * W). */
export function globalAvgPoolBackwardLaunch(dy: Tensor, dx: Tensor, hw: number, c: number): Launch {
  return {
    name: "global_avg_pool_backward",
    code: backwardCode,
    bindings: [dy.binding, dx.binding],
    uniforms: packUniforms([["u32", dx.size], ["u32", hw], ["u32", c]]),
    workgroups: grid1d(dx.size, WG),
  };
}
