/**
 * Kernels: global average pooling NHWC [N, H, W, C] -> [N, C] (one thread per (n, c) looping over
 * H * W; neighbouring threads read neighbouring channels) and its backward (dx = dy / (H * W),
 * broadcast over the pixels).
 * @module
 */
import type { Launch } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import { grid1d, main1d, packUniforms } from "./util.ts";

const WG = 256;

/** WGSL: a kernel from `src` to `dst` (one thread per element i of dst, channel c) with `body`. */
const source = (src: string, dst: string, body: string) => `
struct P { total: u32, hw: u32, c: u32 }
@group(0) @binding(0) var<storage, read> ${src}: array<f32>;
@group(0) @binding(1) var<storage, read_write> ${dst}: array<f32>;
@group(0) @binding(2) var<uniform> u: P;
${main1d(WG)}
  if (i >= u.total) { return; }
  let c = i % u.c;
  ${body}
}`;

const forwardCode = source(
  "x",
  "y",
  `let n = i / u.c;
  var s = 0.0;
  var j = n * u.hw * u.c + c;
  for (var k = 0u; k < u.hw; k++) {
    s = s + x[j];
    j = j + u.c;
  }
  y[i] = s / f32(u.hw);`,
);

/** y[n, c] = mean over h, w of x[n, h, w, c]. */
export function globalAvgPoolLaunch(x: Tensor, y: Tensor, hw: number, c: number): Launch {
  return launch("global_avg_pool", forwardCode, x, y, hw, c);
}

const backwardCode = source(
  "dy",
  "dx",
  `let n = i / (u.hw * u.c);
  dx[i] = dy[n * u.c + c] / f32(u.hw);`,
);

/** dx[n, h, w, c] = dy[n, c] / (H * W). */
export function globalAvgPoolBackwardLaunch(dy: Tensor, dx: Tensor, hw: number, c: number): Launch {
  return launch("global_avg_pool_backward", backwardCode, dy, dx, hw, c);
}

function launch(
  name: string,
  code: string,
  src: Tensor,
  dst: Tensor,
  hw: number,
  c: number,
): Launch {
  return {
    name,
    code,
    bindings: [src.binding, dst.binding],
    uniforms: packUniforms([["u32", dst.size], ["u32", hw], ["u32", c]]),
    workgroups: grid1d(dst.size, WG),
  };
}
