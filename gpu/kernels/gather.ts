/**
 * Kernels: gather along an axis and its gradient. x is viewed as [O, D, I] (outer, gathered axis,
 * inner) and the indices as [J]; the gather writes [O, J, I]. An out-of-range index reads 0 and is
 * reported through the engine's device-side error words (thrown at the next readback). The
 * gradient (scatter-add without atomics) gives each dx element (o, d, i) the sum of dy (o, j, i)
 * over the j with indices[j] == d: one thread per dx element looping over J.
 * @module
 */
import { deviceErrorWgsl, engine, type Launch, registerDeviceError } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import { grid1d, main1d, packUniforms } from "./util.ts";

const WG = 256;
/** Device error code: an index outside [0, D). */
const OOB = registerDeviceError((e) =>
  `gather: index ${e.value} (at position ${e.pos} of the indices) out of range for axis ${e.extra} ` +
  `of size ${e.bound}`
);
const sources = new Map<string, string>();

function gatherSource(dtype: string): string {
  let c = sources.get(`g|${dtype}`);
  if (c) return c;
  c = `
@group(0) @binding(0) var<storage, read_write> out: array<${dtype}>;
@group(0) @binding(1) var<storage, read> x: array<${dtype}>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
${deviceErrorWgsl(3)}
struct P { n: u32, D: u32, J: u32, I: u32, axis: u32 }
@group(0) @binding(4) var<uniform> p: P;
${main1d(WG)}
  if (i >= p.n) { return; }
  let ii = i % p.I;
  let j = (i / p.I) % p.J;
  let o = i / (p.I * p.J);
  let d = idx[j];
  if (d < 0 || d >= i32(p.D)) {
    if (o == 0u && ii == 0u) { report_error(${OOB}u, d, p.D, j, p.axis); }
    out[i] = ${dtype}(0);
    return;
  }
  out[i] = x[(o * p.D + u32(d)) * p.I + ii];
}`;
  sources.set(`g|${dtype}`, c);
  return c;
}

const GRAD = `
@group(0) @binding(0) var<storage, read_write> dx: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
struct P { n: u32, D: u32, J: u32, I: u32 }
@group(0) @binding(3) var<uniform> p: P;
${main1d(WG)}
  if (i >= p.n) { return; }
  let ii = i % p.I;
  let d = i32((i / p.I) % p.D);
  let o = i / (p.I * p.D);
  var acc = 0.0;
  for (var j = 0u; j < p.J; j++) {
    if (idx[j] == d) { acc += dy[(o * p.J + j) * p.I + ii]; }
  }
  dx[i] = acc;
}`;

/**
 * out [O, J, I] = x [O, D, I] gathered at idx [J] along D (`axis` only names it in error messages;
 * an index outside [0, D) reads 0 and raises a device-side error).
 */
export function gatherLaunch(
  x: Tensor,
  idx: Tensor,
  out: Tensor,
  dims: { D: number; J: number; I: number; axis?: number },
): Launch {
  return {
    name: "gather",
    code: gatherSource(x.dtype),
    bindings: [out.binding, x.binding, idx.binding, engine().errorBinding()],
    uniforms: packUniforms([
      ["u32", out.size],
      ["u32", dims.D],
      ["u32", dims.J],
      ["u32", dims.I],
      ["u32", dims.axis ?? 0],
    ]),
    workgroups: grid1d(out.size, WG),
  };
}

/** dx [O, D, I] = scatter-add of dy [O, J, I] at idx [J]. */
export function gatherGradLaunch(
  dy: Tensor,
  idx: Tensor,
  dx: Tensor,
  dims: { D: number; J: number; I: number },
): Launch {
  return {
    name: "gather_grad",
    code: GRAD,
    bindings: [dx.binding, dy.binding, idx.binding],
    uniforms: packUniforms([["u32", dx.size], ["u32", dims.D], ["u32", dims.J], ["u32", dims.I]]),
    workgroups: grid1d(dx.size, WG),
  };
}
