/**
 * Kernel: swaps the channel axes of HWIO conv weights, [KH, KW, Cin, Cout] -> [KH, KW, Cout, Cin],
 * so the backward-data GEMM reads them as a row-major [KH*KW*Cout, Cin] matrix.
 * @module
 */
import type { Launch } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import { grid1d, main1d, packUniforms } from "./util.ts";

const WG = 64;
const CODE = `
@group(0) @binding(0) var<storage, read> w: array<f32>;
@group(0) @binding(1) var<storage, read_write> wt: array<f32>;
struct P { n: u32, cin: u32, cout: u32 }
@group(0) @binding(2) var<uniform> p: P;
${main1d(WG)}
  if (i >= p.n) { return; }
  let ci = i % p.cin;
  let t = i / p.cin;
  let co = t % p.cout;
  let s = t / p.cout;
  wt[i] = w[(s * p.cin + ci) * p.cout + co];
}`;

/** wt[kh, kw, co, ci] = w[kh, kw, ci, co]. */
export function convWeightTLaunch(w: Tensor, wt: Tensor, cin: number, cout: number): Launch {
  return {
    name: "conv2d_weight_t",
    code: CODE,
    bindings: [w.binding, wt.binding],
    uniforms: packUniforms([["u32", w.size], ["u32", cin], ["u32", cout]]),
    workgroups: grid1d(w.size, WG),
  };
}
