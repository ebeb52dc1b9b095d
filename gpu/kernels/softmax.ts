/**
 * Kernel: softmax / log-softmax over the last axis of a contiguous [N, K] tensor, one workgroup
 * per row (max, then sum of exponentials, by workgroup-memory trees), numerically stable.
 * Also exports {@link wgTree} and {@link wgRowMax}, the snippets the cross-entropy kernel shares.
 * @module
 */
import type { Launch } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import { cached, grid1d, mainPerRow, packUniforms, wgReduce } from "./util.ts";

/** Workgroup size for rows of length k: small rows waste fewer idle threads. */
export function rowWorkgroup(k: number): number {
  return k <= 64 ? 64 : 256;
}

/** WGSL: tree-reduces `arr[lid]` over a workgroup of `wg` threads with `op` (+ or max/min). */
export function wgTree(arr: string, op: "+" | "max", wg: number): string {
  return wgReduce([arr], wg, op === "+" ? {} : { combine: (a, b) => `max(${a}, ${b})` });
}

/**
 * WGSL: `let mx` = the max of row `src[base .. base + p.K)` over a workgroup of `wg` threads (tree
 * in workgroup array `arr`, which is free again after the closing barrier).
 */
export function wgRowMax(src: string, arr: string, wg: number): string {
  return `var m = ${src}[base + min(lid, p.K - 1u)];
  for (var k = lid; k < p.K; k += ${wg}u) { m = max(m, ${src}[base + k]); }
  ${arr}[lid] = m;
  ${wgTree(arr, "max", wg)}
  let mx = ${arr}[0];
  workgroupBarrier();`;
}

const sources = new Map<string, string>();

function source(log: boolean, wg: number): string {
  const key = `${log}|${wg}`;
  const write = log ? "x[base + k] - mx - log(tot)" : "exp(x[base + k] - mx) / tot";
  return cached(sources, key, () => `
@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
struct P { N: u32, K: u32 }
@group(0) @binding(2) var<uniform> p: P;
var<workgroup> sh: array<f32, ${wg}>;
${mainPerRow(wg, "p.N")}
  let base = row * p.K;
  ${wgRowMax("x", "sh", wg)}
  var s = 0.0;
  for (var k = lid; k < p.K; k += ${wg}u) { s += exp(x[base + k] - mx); }
  sh[lid] = s;
  ${wgTree("sh", "+", wg)}
  let tot = sh[0];
  for (var k = lid; k < p.K; k += ${wg}u) { y[base + k] = ${write}; }
}`);
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
