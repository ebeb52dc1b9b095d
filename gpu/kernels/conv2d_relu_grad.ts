/**
 * Kernel: the backward of conv2d's fused ReLU epilogue: dz = dy where the output is positive,
 * else 0.
 * @module
 */
import type { Launch } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import { grid1d, main1d, packUniforms } from "./util.ts";

const WG = 64;
const CODE = `
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> dz: array<f32>;
struct P { n: u32 }
@group(0) @binding(3) var<uniform> p: P;
${main1d(WG)}
  if (i >= p.n) { return; }
  dz[i] = select(0.0, dy[i], y[i] > 0.0);
}`;

/** dz = dy * (y > 0). */
export function reluGradLaunch(dy: Tensor, y: Tensor, dz: Tensor): Launch {
  return {
    name: "conv2d_relu_grad",
    code: CODE,
    bindings: [dy.binding, y.binding, dz.binding],
    uniforms: packUniforms([["u32", dy.size]]),
    workgroups: grid1d(dy.size, WG),
  };
}
