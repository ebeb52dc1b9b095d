/**
 * Kernels: windowed 2-D pooling over NHWC tensors (max, average with or without the padding in the
 * count), forward (one thread per output element; max also writes the flat input index it took)
 * and backward as a gather (one thread per input element summing the outputs whose window covers
 * it; no atomics).
 * @module
 */
import type { Launch } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import { cached, grid1d, main1d, packUniforms } from "./util.ts";

const WG = 256;

/** Pooling kind: max, average over valid elements, average counting padding. */
export type PoolMode = "max" | "avg" | "avg_pad";

/** The geometry of a pooling launch. */
export interface PoolGeom {
  n: number;
  h: number;
  w: number;
  c: number;
  oh: number;
  ow: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
}

const STRUCT = `struct P { total: u32, h: i32, w: i32, c: i32, oh: i32, ow: i32,
  kh: i32, kw: i32, sh: i32, sw: i32, ph: i32, pw: i32 }`;

function uniforms(total: number, g: PoolGeom) {
  return packUniforms([
    ["u32", total],
    ...[g.h, g.w, g.c, g.oh, g.ow, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw].map(
      (v) => ["i32", v] as ["i32", number],
    ),
  ]);
}

// WGSL: the number of window elements of output (oy, ox) that fall inside the input.
const COUNT = (mode: PoolMode) =>
  `fn count(oy: i32, ox: i32) -> f32 {
  let y0 = oy * u.sh - u.ph; let x0 = ox * u.sw - u.pw;
  ${
    mode === "avg_pad"
      ? `let y1 = min(y0 + u.kh, u.h + u.ph); let x1 = min(x0 + u.kw, u.w + u.pw);
  return f32((y1 - y0) * (x1 - x0));`
      : `let y1 = min(y0 + u.kh, u.h); let x1 = min(x0 + u.kw, u.w);
  return f32((y1 - max(y0, 0)) * (x1 - max(x0, 0)));`
  }
}`;

// WGSL: (n, y, x, c) of NHWC element i of a tensor of H = u.<h>, W = u.<w> (ii: i as i32).
const pixelOf = (y: string, x: string, h: string, w: string) =>
  `let ii = i32(i);
  let c = ii % u.c;
  let ${x} = (ii / u.c) % u.${w};
  let ${y} = (ii / (u.c * u.${w})) % u.${h};
  let n = ii / (u.c * u.${w} * u.${h});`;

// WGSL: max pooling's update (NaN wins, then the first maximum).
const TAKE_MAX =
  "if (bi < 0 || v > best || (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u) { best = v; bi = j; }";

function forwardSource(mode: PoolMode): string {
  const max = mode === "max";
  return `
${STRUCT}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
${max ? "@group(0) @binding(2) var<storage, read_write> arg: array<i32>;" : ""}
@group(0) @binding(${max ? 3 : 2}) var<uniform> u: P;
${max ? "" : COUNT(mode)}
${main1d(WG)}
  if (i >= u.total) { return; }
  ${pixelOf("oy", "ox", "oh", "ow")}
  let y0 = oy * u.sh - u.ph;
  let x0 = ox * u.sw - u.pw;
  ${max ? "var best = -3.402823e38; var bi = -1;" : "var s = 0.0;"}
  for (var ky = 0; ky < u.kh; ky++) {
    let iy = y0 + ky;
    if (iy < 0 || iy >= u.h) { continue; }
    for (var kx = 0; kx < u.kw; kx++) {
      let ix = x0 + kx;
      if (ix < 0 || ix >= u.w) { continue; }
      let j = ((n * u.h + iy) * u.w + ix) * u.c + c;
      let v = x[j];
      ${max ? TAKE_MAX : "s = s + v;"}
    }
  }
  ${max ? "y[i] = best; arg[i] = bi;" : "y[i] = s / count(oy, ox);"}
}`;
}

function backwardSource(mode: PoolMode): string {
  const max = mode === "max";
  return `
${STRUCT}
@group(0) @binding(0) var<storage, read> dy: array<f32>;
${max ? "@group(0) @binding(1) var<storage, read> arg: array<i32>;" : ""}
@group(0) @binding(${max ? 2 : 1}) var<storage, read_write> dx: array<f32>;
@group(0) @binding(${max ? 3 : 2}) var<uniform> u: P;
${max ? "" : COUNT(mode)}
${main1d(WG)}
  if (i >= u.total) { return; }
  ${pixelOf("iy", "ix", "h", "w")}
  let ay = iy + u.ph;
  let ax = ix + u.pw;
  let oy0 = select(0, (ay - u.kh + u.sh) / u.sh, ay - u.kh + 1 > 0);
  let ox0 = select(0, (ax - u.kw + u.sw) / u.sw, ax - u.kw + 1 > 0);
  let oy1 = min(u.oh - 1, ay / u.sh);
  let ox1 = min(u.ow - 1, ax / u.sw);
  var s = 0.0;
  for (var oy = oy0; oy <= oy1; oy++) {
    for (var ox = ox0; ox <= ox1; ox++) {
      let o = ((n * u.oh + oy) * u.ow + ox) * u.c + c;
      ${max ? "if (arg[o] == ii) { s = s + dy[o]; }" : "s = s + dy[o] / count(oy, ox);"}
    }
  }
  dx[i] = s;
}`;
}

const fwd = new Map<PoolMode, string>();
const bwd = new Map<PoolMode, string>();

/** Forward pooling; `arg` (i32, shaped like y) is required for max and must be null otherwise. */
export function poolForwardLaunch(
  mode: PoolMode,
  x: Tensor,
  y: Tensor,
  arg: Tensor | null,
  g: PoolGeom,
): Launch {
  const bindings = [x.binding, y.binding];
  if (arg) bindings.push(arg.binding);
  return {
    name: `pool_${mode}_forward`,
    code: cached(fwd, mode, () => forwardSource(mode)),
    bindings,
    uniforms: uniforms(y.size, g),
    workgroups: grid1d(y.size, WG),
  };
}

/** Backward pooling (gather): dx from dy (and, for max, the recorded input indices). */
export function poolBackwardLaunch(
  mode: PoolMode,
  dy: Tensor,
  arg: Tensor | null,
  dx: Tensor,
  g: PoolGeom,
): Launch {
  const bindings = [dy.binding];
  if (arg) bindings.push(arg.binding);
  bindings.push(dx.binding);
  return {
    name: `pool_${mode}_backward`,
    code: cached(bwd, mode, () => backwardSource(mode)),
    bindings,
    uniforms: uniforms(dx.size, g),
    workgroups: grid1d(dx.size, WG),
  };
}
