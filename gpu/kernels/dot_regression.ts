/**
 * Kernels of the paper's dot-regression (DR) loss: per-batch class counts and weights
 * Ew_k = sqrt((B / |U|) / c_k) (one workgroup), the per-row loss (h_i . t_i - a_i s_i)^2 / (2 s_i)
 * with t_i = Ew_{y_i} m_{y_i} (one workgroup per row, reducing over d), the batch mean (one
 * workgroup), and the gradient dL/dh_i = coef_i m_{y_i} * upstream, where coef_i = Ew (h.t - a s) / s.
 * Labels outside [0, K) give NaN losses and gradients and raise a device-side error (thrown at the
 * next readback); count labels outside [0, K) are not counted and raise one too.
 * @module
 */
import { deviceErrorWgsl, engine, type Launch, registerDeviceError } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import { grid1d, main1d, mainPerRow, packUniforms, wgReduce } from "./util.ts";

const WG = 256;
const NAN = "bitcast<f32>(0x7fc00000u)";
/** Device error codes: a label / count label outside [0, K). */
const OOB_LABEL = registerDeviceError((e) =>
  `dotRegressionLoss: label ${e.value} (row ${e.pos}) out of range for ${e.bound} classes`
);
const OOB_COUNT = registerDeviceError((e) =>
  `dotRegressionLoss: countLabels value ${e.value} (row ${e.pos}) out of range for ${e.bound} classes`
);

const countsCode = `
struct P { b: u32, k: u32, code: u32 }
@group(0) @binding(0) var<storage, read> labels: array<i32>;
@group(0) @binding(1) var<storage, read_write> counts: array<atomic<u32>>;
@group(0) @binding(2) var<storage, read_write> ew: array<f32>;
${deviceErrorWgsl(3)}
@group(0) @binding(4) var<uniform> u: P;
var<workgroup> present: atomic<u32>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  for (var k = lid; k < u.k; k += ${WG}u) { atomicStore(&counts[k], 0u); }
  if (lid == 0u) { atomicStore(&present, 0u); }
  storageBarrier();
  workgroupBarrier();
  for (var i = lid; i < u.b; i += ${WG}u) {
    let y = labels[i];
    if (y >= 0 && u32(y) < u.k) {
      atomicAdd(&counts[u32(y)], 1u);
    } else {
      report_error(u.code, y, u.k, i, 0u);
    }
  }
  storageBarrier();
  workgroupBarrier();
  var mine = 0u;
  for (var k = lid; k < u.k; k += ${WG}u) {
    if (atomicLoad(&counts[k]) > 0u) { mine += 1u; }
  }
  atomicAdd(&present, mine);
  workgroupBarrier();
  let gamma = f32(u.b) / f32(max(atomicLoad(&present), 1u));
  for (var k = lid; k < u.k; k += ${WG}u) {
    let c = atomicLoad(&counts[k]);
    ew[k] = select(0.0, sqrt(gamma / f32(c)), c > 0u);
  }
}`;

/**
 * Class counts (u32[K], scratch) and weights Ew (f32[K], 0 for absent classes) from labels;
 * `separate`: the labels are a separate `countLabels` tensor (names it in error messages).
 */
export function drCountsLaunch(
  labels: Tensor,
  counts: Tensor,
  ew: Tensor,
  k: number,
  separate = false,
): Launch {
  return {
    name: "dot_regression_counts",
    code: countsCode,
    bindings: [labels.binding, counts.binding, ew.binding, engine().errorBinding()],
    uniforms: packUniforms([
      ["u32", labels.size],
      ["u32", k],
      ["u32", separate ? OOB_COUNT : OOB_LABEL],
    ]),
    workgroups: [1],
  };
}

const RW = 64;
const rowsCode = `
struct P { b: u32, d: u32, k: u32 }
@group(0) @binding(0) var<storage, read> h: array<f32>;
@group(0) @binding(1) var<storage, read> m: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read> ew: array<f32>;
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> coef: array<f32>;
${deviceErrorWgsl(6)}
@group(0) @binding(7) var<uniform> u: P;
var<workgroup> s_hm: array<f32, ${RW}>;
var<workgroup> s_hh: array<f32, ${RW}>;
var<workgroup> s_mm: array<f32, ${RW}>;
${mainPerRow(RW, "u.b")}
  let y = labels[row];
  let valid = y >= 0 && u32(y) < u.k;
  let yc = select(0u, u32(y), valid);
  if (lid == 0u && !valid) { report_error(${OOB_LABEL}u, y, u.k, row, 0u); }
  var hm = 0.0;
  var hh = 0.0;
  var mm = 0.0;
  for (var j = lid; j < u.d; j += ${RW}u) {
    let hv = h[row * u.d + j];
    let mv = m[j * u.k + yc];
    hm += hv * mv;
    hh += hv * hv;
    mm += mv * mv;
  }
  s_hm[lid] = hm;
  s_hh[lid] = hh;
  s_mm[lid] = mm;
  ${wgReduce(["s_hm", "s_hh", "s_mm"], RW)}
  if (lid == 0u) {
    let w = ew[yc];
    let sn = max(sqrt(s_hh[0]), 1e-8);
    let a = w * sqrt(s_mm[0]);
    let r = w * s_hm[0] - a * sn;
    loss[row] = select(${NAN}, r * r / (2.0 * sn), valid);
    coef[row] = select(${NAN}, w * r / sn, valid);
  }
}`;

/** Per-row loss and gradient coefficient (one workgroup per row). */
export function drRowsLaunch(
  h: Tensor,
  m: Tensor,
  labels: Tensor,
  ew: Tensor,
  loss: Tensor,
  coef: Tensor,
  d: number,
  k: number,
): Launch {
  const b = labels.size;
  return {
    name: "dot_regression_rows",
    code: rowsCode,
    bindings: [
      h.binding,
      m.binding,
      labels.binding,
      ew.binding,
      loss.binding,
      coef.binding,
      engine().errorBinding(),
    ],
    uniforms: packUniforms([["u32", b], ["u32", d], ["u32", k]]),
    workgroups: grid1d(b, 1),
  };
}

const meanCode = `
struct P { n: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> u: P;
var<workgroup> s: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  var a = 0.0;
  for (var i = lid; i < u.n; i += ${WG}u) { a += x[i]; }
  s[lid] = a;
  ${wgReduce(["s"], WG)}
  if (lid == 0u) { out[0] = s[0] / f32(u.n); }
}`;

/** out[0] = mean of x (one workgroup). */
export function drMeanLaunch(x: Tensor, out: Tensor): Launch {
  return {
    name: "dot_regression_mean",
    code: meanCode,
    bindings: [x.binding, out.binding],
    uniforms: packUniforms([["u32", x.size]]),
    workgroups: [1],
  };
}

const gradCode = `
struct P { total: u32, d: u32, k: u32, mean: u32, b: u32 }
@group(0) @binding(0) var<storage, read> m: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<i32>;
@group(0) @binding(2) var<storage, read> coef: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dh: array<f32>;
@group(0) @binding(5) var<uniform> u: P;
${main1d(WG)}
  if (i >= u.total) { return; }
  let row = i / u.d;
  let j = i % u.d;
  let y = labels[row];
  let yc = select(0u, u32(y), y >= 0 && u32(y) < u.k);
  var up: f32;
  if (u.mean == 1u) { up = dy[0] / f32(u.b); } else { up = dy[row]; }
  dh[i] = coef[row] * m[j * u.k + yc] * up;
}`;

/** dh = coef_i * M[:, y_i] * upstream (dy[0] / B for the mean, dy[i] per row otherwise). */
export function drGradLaunch(
  m: Tensor,
  labels: Tensor,
  coef: Tensor,
  dy: Tensor,
  dh: Tensor,
  d: number,
  k: number,
  mean: boolean,
): Launch {
  return {
    name: "dot_regression_grad",
    code: gradCode,
    bindings: [m.binding, labels.binding, coef.binding, dy.binding, dh.binding],
    uniforms: packUniforms([
      ["u32", dh.size],
      ["u32", d],
      ["u32", k],
      ["u32", mean ? 1 : 0],
      ["u32", labels.size],
    ]),
    workgroups: grid1d(dh.size, WG),
  };
}
