/**
 * Kernels: fused softmax cross-entropy over logits [N, K]. The forward (one workgroup per row)
 * computes the row's log-sum-exp, its loss `sum_k t_k * (lse - z_k)`, the target mass `sum_k t_k`
 * and saves the softmax. The backward is elementwise: dz = (p * tsum - t) * g, where g is the
 * upstream gradient (per row, or one scalar times `scale` for mean/sum reductions). Targets are
 * hard labels (i32 [N]; a label outside [0, K) makes the row contribute nothing and raises a
 * device-side error, thrown at the next readback) or soft targets (f32 [N, K]), with
 * optional label smoothing t = (1 - eps) t + eps / K.
 * @module
 */
import { deviceErrorWgsl, engine, type Launch, registerDeviceError } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import { cached, grid1d, main1d, mainPerRow, packUniforms, wgReduce } from "./util.ts";
import { rowWorkgroup, wgRowMax } from "./softmax.ts";

const WG = 256;
/** Device error code: a class label outside [0, K). */
const OOB = registerDeviceError((e) =>
  `softmaxCrossEntropy: label ${e.value} (row ${e.pos}) out of range for ${e.bound} classes`
);
const sources = new Map<string, string>();

/** WGSL fn tgt_at(row, k) -> f32 for hard or soft targets (binding `tg`). */
function targetFn(soft: boolean): string {
  const raw = soft ? "tg[row * p.K + k]" : "select(0.0, 1.0, i32(k) == tg[row])";
  const valid = soft ? "true" : "tg[row] >= 0 && tg[row] < i32(p.K)";
  return `
fn tgt_at(row: u32, k: u32) -> f32 {
  if (!(${valid})) { return 0.0; }
  return (1.0 - p.eps) * ${raw} + p.eps / f32(p.K);
}`;
}

function forwardSource(soft: boolean, wg: number): string {
  const key = `fwd|${soft}|${wg}`;
  return cached(sources, key, () => `
@group(0) @binding(0) var<storage, read_write> probs: array<f32>;
@group(0) @binding(1) var<storage, read_write> loss: array<f32>;
@group(0) @binding(2) var<storage, read_write> tsum: array<f32>;
@group(0) @binding(3) var<storage, read> z: array<f32>;
@group(0) @binding(4) var<storage, read> tg: array<${soft ? "f32" : "i32"}>;
${soft ? "" : deviceErrorWgsl(5)}
struct P { N: u32, K: u32, eps: f32 }
@group(0) @binding(${soft ? 5 : 6}) var<uniform> p: P;
var<workgroup> sa: array<f32, ${wg}>;
var<workgroup> sb: array<f32, ${wg}>;
var<workgroup> sc: array<f32, ${wg}>;
${targetFn(soft)}
${mainPerRow(wg, "p.N")}
  let base = row * p.K;
  ${
    soft ? "" : `if (lid == 0u && (tg[row] < 0 || tg[row] >= i32(p.K))) {
    report_error(${OOB}u, tg[row], p.K, row, 0u);
  }`
  }
  ${wgRowMax("z", "sa", wg)}
  var se = 0.0;
  var tz = 0.0;
  var ts = 0.0;
  for (var k = lid; k < p.K; k += ${wg}u) {
    let v = z[base + k] - mx;
    let t = tgt_at(row, k);
    se += exp(v);
    tz += t * v;
    ts += t;
  }
  sa[lid] = se;
  sb[lid] = tz;
  sc[lid] = ts;
  ${wgReduce(["sa", "sb", "sc"], wg)}
  let tot = sa[0];
  let lse = log(tot);
  for (var k = lid; k < p.K; k += ${wg}u) { probs[base + k] = exp(z[base + k] - mx) / tot; }
  if (lid == 0u) {
    loss[row] = sc[0] * lse - sb[0];
    tsum[row] = sc[0];
  }
}`);
}

function backwardSource(soft: boolean, perRow: boolean): string {
  const key = `bwd|${soft}|${perRow}`;
  return cached(sources, key, () => `
@group(0) @binding(0) var<storage, read_write> dz: array<f32>;
@group(0) @binding(1) var<storage, read> probs: array<f32>;
@group(0) @binding(2) var<storage, read> tsum: array<f32>;
@group(0) @binding(3) var<storage, read> tg: array<${soft ? "f32" : "i32"}>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
struct P { N: u32, K: u32, eps: f32, scale: f32 }
@group(0) @binding(5) var<uniform> p: P;
${targetFn(soft)}
${main1d(WG)}
  if (i >= p.N * p.K) { return; }
  let row = i / p.K;
  let k = i % p.K;
  let g = ${perRow ? "dy[row]" : "dy[0]"} * p.scale;
  dz[i] = (probs[i] * tsum[row] - tgt_at(row, k)) * g;
}`);
}

/** Forward: writes probs [N, K], per-row loss [N] and per-row target mass [N]. */
export function softmaxCrossEntropyLaunch(
  logits: Tensor,
  targets: Tensor,
  out: { probs: Tensor; loss: Tensor; tsum: Tensor },
  eps: number,
): Launch {
  const [n, k] = logits.shape;
  const soft = targets.dtype === "f32";
  const wg = rowWorkgroup(k);
  return {
    name: "softmax_cross_entropy",
    code: forwardSource(soft, wg),
    bindings: [
      out.probs.binding,
      out.loss.binding,
      out.tsum.binding,
      logits.binding,
      targets.binding,
      ...(soft ? [] : [engine().errorBinding()]),
    ],
    uniforms: packUniforms([["u32", n], ["u32", k], ["f32", eps]]),
    workgroups: grid1d(n, 1),
  };
}

/** Backward: dz [N, K] from the saved probs/tsum, the targets and dy ([N] or [1] times scale). */
export function softmaxCrossEntropyGradLaunch(
  saved: { probs: Tensor; tsum: Tensor },
  targets: Tensor,
  dy: Tensor,
  dz: Tensor,
  eps: number,
  scale: number,
): Launch {
  const [n, k] = dz.shape;
  const soft = targets.dtype === "f32";
  const perRow = dy.size > 1;
  return {
    name: "softmax_cross_entropy_grad",
    code: backwardSource(soft, perRow),
    bindings: [dz.binding, saved.probs.binding, saved.tsum.binding, targets.binding, dy.binding],
    uniforms: packUniforms([["u32", n], ["u32", k], ["f32", eps], ["f32", scale]]),
    workgroups: grid1d(n * k, WG),
  };
}
