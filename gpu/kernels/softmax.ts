/**
 * Kernel: softmax / log-softmax over the last axis of a contiguous [N, K] tensor, one workgroup
 * per row (max, then sum of exponentials, by workgroup-memory trees), numerically stable.
 * Also exports {@link wgTree}, the tree-reduction snippet the cross-entropy kernel shares.
 * @module
 */
import type { Launch } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import { grid1d, packUniforms } from "./util.ts";

/** Workgroup size for rows of length k: small rows waste fewer idle threads. */
export function rowWorkgroup(k: number): number {
  return k <= 64 ? 64 : 256;
}

/** WGSL: tree-reduces `arr[lid]` over a workgroup of `wg` threads with `op` (+ or max/min). */
export function wgTree(arr: string, op: "+" | "max", wg: number): string {
  const comb = op === "+" ? `${arr}[lid] + ${arr}[lid + s]` : `max(${arr}[lid], ${arr}[lid + s])`;
  return `workgroupBarrier();
  for (var s = ${wg / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { ${arr}[lid] = ${comb}; }
    workgroupBarrier();
  }`;
}

const sources = new Map<string, string>();

function source(log: boolean, wg: number): string {
  const key = `${log}|${wg}`;
  let c = sources.get(key);
  if (c) return c;
  const write = log ? "x[base + k] - mx - log(tot)" : "exp(x[base + k] - mx) / tot";
  c = `
@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
struct P { N: u32, K: u32 }
@group(0) @binding(2) var<uniform> p: P;
var<workgroup> sh: array<f32, ${wg}>;
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.N) { return; }
  let base = row * p.K;
  var m = x[base + min(lid, p.K - 1u)];
  for (var k = lid; k < p.K; k += ${wg}u) { m = max(m, x[base + k]); }
  sh[lid] = m;
  ${wgTree("sh", "max", wg)}
  let mx = sh[0];
  workgroupBarrier();
  var s = 0.0;
  for (var k = lid; k < p.K; k += ${wg}u) { s += exp(x[base + k] - mx); }
  sh[lid] = s;
  ${wgTree("sh", "+", wg)}
  let tot = sh[0];
  for (var k = lid; k < p.K; k += ${wg}u) { y[base + k] = ${write}; }
}`;
  sources.set(key, c);
  return c;
}

/** Softmax (or log-softmax) of x viewed as [N, K] into y. */
export function softmaxLaunch(x: Tensor, y: Tensor, n: number, k: number, log: boolean): Launch {
  const wg = rowWorkgroup(k);
  return {
    name: log ? "log_softmax" : "softmax",
    code: source(log, wg),
    bindings: [y.binding, x.binding],
    uniforms: packUniforms([["u32", n], ["u32", k]]),
    workgroups: grid1d(n, 1),
  };
}
