/** Kernel: one-hot encoding of i32 labels [N] into f32 [N, depth] (out-of-range rows are 0). @module */
import type { Launch } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import { grid1d, linearIndex, packUniforms } from "./util.ts";

const WG = 256;
const CODE = `
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<i32>;
struct P { n: u32, depth: u32, on: f32, off: f32 }
@group(0) @binding(2) var<uniform> p: P;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  ${linearIndex(WG)}
  if (i >= p.n) { return; }
  let row = i / p.depth;
  let k = i32(i % p.depth);
  out[i] = select(p.off, p.on, labels[row] == k);
}`;

/** out [N, depth] = on where k == labels[n], else off. */
export function oneHotLaunch(labels: Tensor, out: Tensor, depth: number, on = 1, off = 0): Launch {
  return {
    name: "one_hot",
    code: CODE,
    bindings: [out.binding, labels.binding],
    uniforms: packUniforms([["u32", out.size], ["u32", depth], ["f32", on], ["f32", off]]),
    workgroups: grid1d(out.size, WG),
  };
}
