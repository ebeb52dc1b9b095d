/**
 * Kernel: one-hot encoding of i32 labels [N] into f32 [N, depth]. A label outside [0, depth) gives
 * an all-`off` row and a device-side error (thrown at the next readback).
 * @module
 */
import { deviceErrorWgsl, engine, type Launch, registerDeviceError } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import { grid1d, main1d, packUniforms } from "./util.ts";

const WG = 256;
/** Device error code: a label outside [0, depth). */
const OOB = registerDeviceError((e) =>
  `oneHot: label ${e.value} (row ${e.pos}) out of range for depth ${e.bound}`
);
const CODE = `
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<i32>;
${deviceErrorWgsl(2)}
struct P { n: u32, depth: u32, on: f32, off: f32 }
@group(0) @binding(3) var<uniform> p: P;
${main1d(WG)}
  if (i >= p.n) { return; }
  let row = i / p.depth;
  let k = i32(i % p.depth);
  let y = labels[row];
  if (k == 0 && (y < 0 || y >= i32(p.depth))) { report_error(${OOB}u, y, p.depth, row, 0u); }
  out[i] = select(p.off, p.on, y == k);
}`;

/** out [N, depth] = on where k == labels[n], else off. */
export function oneHotLaunch(labels: Tensor, out: Tensor, depth: number, on = 1, off = 0): Launch {
  return {
    name: "one_hot",
    code: CODE,
    bindings: [out.binding, labels.binding, engine().errorBinding()],
    uniforms: packUniforms([["u32", out.size], ["u32", depth], ["f32", on], ["f32", off]]),
    workgroups: grid1d(out.size, WG),
  };
}
