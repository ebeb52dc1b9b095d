/**
 * Kernels for on-GPU training statistics: in-place accumulation of small vectors into a running
 * sum (`acc[offset + i] += x[i]`) and a step monitor that counts steps and remembers the first one
 * whose watched values were not finite (NaN/Inf), so the host learns the exact step at its next
 * (rare) readback.
 * @module
 */
import type { Launch } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import { grid1d, main1d, packUniforms } from "./util.ts";

const WG = 64;

const accumulateCode = `
@group(0) @binding(0) var<storage, read_write> acc: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
struct P { n: u32, offset: u32 }
@group(0) @binding(2) var<uniform> p: P;
${main1d(WG)}
  if (i < p.n) { acc[p.offset + i] = acc[p.offset + i] + x[i]; }
}`;

/** The launch adding `x` (f32, n elements) into `acc[offset .. offset + n)`. */
export function accumulateLaunch(acc: Tensor, x: Tensor, offset: number): Launch {
  return {
    name: "accumulate",
    code: accumulateCode,
    bindings: [acc.binding, x.binding],
    uniforms: packUniforms([["u32", x.size], ["u32", offset]]),
    workgroups: grid1d(x.size, WG),
  };
}

const watchCode = `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> state: array<u32>;
struct P { n: u32 }
@group(0) @binding(2) var<uniform> p: P;
@compute @workgroup_size(1)
fn main() {
  let step = state[0] + 1u;
  state[0] = step;
  if (state[1] != 0u) { return; }
  for (var i = 0u; i < p.n; i++) {
    let bits = bitcast<u32>(x[i]);
    if ((bits & 0x7f800000u) == 0x7f800000u) { state[1] = step; return; }
  }
}`;

/**
 * The launch of the step monitor: `state[0] += 1`; if `state[1] == 0` and any of `x` is NaN or
 * infinite, `state[1] = state[0]` (the 1-based step of the first bad value).
 */
export function watchFiniteLaunch(x: Tensor, state: Tensor): Launch {
  return {
    name: "watch_finite",
    code: watchCode,
    bindings: [x.binding, state.binding],
    uniforms: packUniforms([["u32", x.size]]),
    workgroups: [1],
  };
}
