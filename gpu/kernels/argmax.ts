/**
 * Kernel: index of the maximum along the last axis of [N, K] (first one on ties; NaN is skipped),
 * one thread per row, i32 output [N].
 * @module
 */
import type { Launch } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import { grid1d, main1d, packUniforms } from "./util.ts";

const WG = 256;
const sources = new Map<string, string>();

function source(dtype: string): string {
  let c = sources.get(dtype);
  if (c) return c;
  c = `
@group(0) @binding(0) var<storage, read_write> out: array<i32>;
@group(0) @binding(1) var<storage, read> x: array<${dtype}>;
struct P { N: u32, K: u32 }
@group(0) @binding(2) var<uniform> p: P;
${
    dtype === "f32"
      // bit test; \`v != v\` is false for NaN on some drivers (lavapipe)
      ? "fn is_nan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }"
      : `fn is_nan(v: ${dtype}) -> bool { return false; }`
  }
${main1d(WG)}
  if (i >= p.N) { return; }
  let base = i * p.K;
  var best = x[base];
  var arg = 0u;
  for (var k = 1u; k < p.K; k++) {
    let v = x[base + k];
    if (v > best || (is_nan(best) && !is_nan(v))) { best = v; arg = k; }
  }
  out[i] = i32(arg);
}`;
  sources.set(dtype, c);
  return c;
}

/** out [N] (i32) = argmax over the last axis of x viewed as [N, K]. */
export function argmaxLaunch(x: Tensor, out: Tensor, n: number, k: number): Launch {
  return {
    name: "argmax",
    code: source(x.dtype),
    bindings: [out.binding, x.binding],
    uniforms: packUniforms([["u32", n], ["u32", k]]),
    workgroups: grid1d(n, WG),
  };
}
