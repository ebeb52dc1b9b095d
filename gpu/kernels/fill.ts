/** Kernel: fill a tensor with one value (f32, i32 or u32). @module */
import { grid1d, main1d, packUniforms } from "./util.ts";
import type { Launch } from "../engine.ts";
import type { Tensor } from "../tensor.ts";

const WG = 256;
const code = new Map<string, string>();

function source(dtype: string): string {
  let c = code.get(dtype);
  if (!c) {
    c = `
@group(0) @binding(0) var<storage, read_write> out: array<${dtype}>;
struct P { n: u32, value: ${dtype} }
@group(0) @binding(1) var<uniform> p: P;
${main1d(WG)}
  if (i < p.n) { out[i] = p.value; }
}`;
    code.set(dtype, c);
  }
  return c;
}

/** The launch that writes `value` into every element of `out`. */
export function fillLaunch(out: Tensor, value: number): Launch {
  return {
    name: "fill",
    code: source(out.dtype),
    bindings: [out.binding],
    uniforms: packUniforms([["u32", out.size], [out.dtype, value]]),
    workgroups: grid1d(out.size, WG),
  };
}
