/**
 * Fused BatchNorm coefficients: {@link FusionPart}s whose pre-stage fills workgroup arrays with a
 * BatchNorm's per-channel coefficients (vec4 per 4 channels, C % 4 == 0), so that a GEMM operand,
 * epilogue or row kernel can apply the normalisation while it loads or stores.
 *
 * Layouts: `saved` = f32[2C], [batch mean; 1/sqrt(var + eps)] (as ops/batch_norm.ts); forward
 * partials = f32[2 * P * C], per row tile p the tile's mean and sum of squared deviations (M2),
 * combined here with Chan's parallel formula (tile p holds min(tileRows, rows - p * tileRows) rows);
 * gradient partials = f32[2 * P * C], per tile the sums of dy and dy * xhat.
 *
 * - {@link bnFwdCoefPart}: `<n>_a` = gamma * invstd, `<n>_b` = beta - mean * `<n>_a`
 *   (y = x * a + b). From partials the first workgroup also writes `saved` and updates the running
 *   statistics in place (PyTorch's convention, unbiased variance); or from `saved`, or from the
 *   running statistics (eval).
 * - {@link bnGradCoefPart}: dx = `<n>_a` * dy + `<n>_b` * x + `<n>_d`, the training-mode
 *   BatchNorm backward in terms of the forward's input x; from gradient partials (the first
 *   workgroup also writes dgamma and dbeta) or from dgamma and dbeta already written.
 * @module
 */
import type { Tensor } from "../tensor.ts";
import type { FusionPart } from "./fusion_parts.ts";
import type { NamedField } from "./matmul_gemm.ts";

/** Where forward coefficients come from. */
export type BnFwdSource =
  | { kind: "partials"; part: Tensor; tiles: number; tileRows: number; momentum: number }
  | { kind: "saved" }
  | { kind: "running" };

/** A BatchNorm's tensors (f32[C] each, `saved` f32[2C]). */
export interface BnTensors {
  gamma: Tensor;
  beta: Tensor;
  runMean: Tensor;
  runVar: Tensor;
  saved: Tensor;
  eps: number;
  /** Rows the statistics are taken over (N * H * W). */
  rows: number;
}

const V4 = "array<vec4<f32>>";

function decl(first: number, list: [string, boolean][]): string {
  return list.map(([name, rw], i) =>
    `@group(0) @binding(${first + i}) var<storage, ${rw ? "read_write" : "read"}> ${name}: ${V4};`
  ).join("\n");
}

/**
 * How a workgroup of `threads` combines P partials of C/4 channel quads: `lanes` threads per quad
 * (a power of 2, 2 to 16) each walk every lanes-th partial, then a tree merges the lanes; with
 * fewer than 2 threads per quad (lanes 0), each thread walks all partials of its quads.
 */
function combineLanes(threads: number, c4: number): number {
  let l = 1;
  while (l * 2 <= Math.min(16, threads / c4)) l *= 2;
  return l === 1 ? 0 : l;
}

/**
 * WGSL: the pre-stage loop over partials for quad `q`, lanes `L` (see {@link combineLanes}):
 * `init` (per-thread state), `step` (one partial `t`), `merge(o)` (state of slot o into this
 * thread's state, in scratch arrays), `save` / `load` (state <-> scratch slot `lid.x`), and
 * `final` (for the quad, with the total state).
 */
function combinePre(
  n: string,
  threads: number,
  c4: number,
  code: { init: string; step: string; save: string; merge: string; final: string },
): string {
  const L = combineLanes(threads, c4);
  if (L === 0) {
    return `  for (var q = lid.x; q < ${c4}u; q += ${threads}u) {
    ${code.init}
    for (var t = 0u; t < p.${n}P; t++) {
      ${code.step}
    }
    ${code.final}
  }`;
  }
  return `  {
    let q = lid.x % ${c4}u;
    let lane = lid.x / ${c4}u;
    ${code.init}
    if (lane < ${L}u) {
      for (var t = lane; t < p.${n}P; t += ${L}u) {
        ${code.step}
      }
    }
    if (lid.x < ${L * c4}u) {
      ${code.save}
    }
    workgroupBarrier();
    for (var stride = ${L / 2}u; stride > 0u; stride >>= 1u) {
      if (lane < stride) {
        let o = lid.x + stride * ${c4}u;
        ${code.merge}
        ${code.save}
      }
      workgroupBarrier();
    }
    if (lane == 0u) {
      ${code.final}
    }
  }`;
}

/** Workgroup arrays `<n>_<s>` of `len` elements of `type`. */
function scratch(n: string, threads: number, c4: number, arrays: [string, string][]): string {
  const L = combineLanes(threads, c4);
  if (L === 0) return "";
  return arrays.map(([sfx, type]) => `var<workgroup> ${n}_${sfx}: array<${type}, ${L * c4}>;`)
    .join("\n");
}

/** Workgroup arrays `<n>_<s>` of C/4 vec4s for each suffix. */
function wgArrays(n: string, c4: number, suffixes: string[]): string {
  return suffixes.map((s) => `var<workgroup> ${n}_${s}: array<vec4<f32>, ${c4}>;`).join("\n");
}

/** Forward coefficients `<n>_a`, `<n>_b` (see the module doc). */
export function bnFwdCoefPart(n: string, t: BnTensors, src: BnFwdSource): FusionPart {
  const C = t.gamma.size, c4 = C / 4;
  if (C % 4 !== 0) throw new Error(`collapse: fused BatchNorm needs C % 4 == 0, got ${C}`);
  const fields: NamedField[] = [[`${n}C4`, "u32", c4], [`${n}eps`, "f32", t.eps]];
  const wg = wgArrays(n, c4, ["a", "b"]);
  if (src.kind === "partials") {
    fields.push(
      [`${n}P`, "u32", src.tiles],
      [`${n}rows`, "u32", t.rows],
      [`${n}tile`, "u32", src.tileRows],
      [`${n}mom`, "f32", src.momentum],
    );
    return {
      key: `bnFwd:${n}:${c4}:partials`,
      bindings: [
        src.part.binding,
        t.gamma.binding,
        t.beta.binding,
        t.saved.binding,
        t.runMean.binding,
        t.runVar.binding,
      ],
      fields,
      decl: (first, threads) =>
        decl(first, [
          [`${n}_part`, false],
          [`${n}_g`, false],
          [`${n}_bt`, false],
          [`${n}_sv`, true],
          [`${n}_rm`, true],
          [`${n}_rv`, true],
        ]) + "\n" + wg + "\n" +
        scratch(n, threads, c4, [["xn", "f32"], ["xm", "vec4<f32>"], ["x2", "vec4<f32>"]]),
      pre: (threads) =>
        combinePre(n, threads, c4, {
          init: `var cnt = 0.0;
    var mean = vec4<f32>(0.0);
    var m2 = vec4<f32>(0.0);`,
          step: `let np = f32(min(p.${n}tile, p.${n}rows - t * p.${n}tile));
        let tot = cnt + np;
        let d = ${n}_part[t * p.${n}C4 + q] - mean;
        mean += d * (np / tot);
        m2 += ${n}_part[(p.${n}P + t) * p.${n}C4 + q] + d * d * (cnt * np / tot);
        cnt = tot;`,
          save: `${n}_xn[lid.x] = cnt; ${n}_xm[lid.x] = mean; ${n}_x2[lid.x] = m2;`,
          merge: `let on = ${n}_xn[o];
        if (on > 0.0) {
          let tot = cnt + on;
          let d = ${n}_xm[o] - mean;
          mean += d * (on / tot);
          m2 += ${n}_x2[o] + d * d * (cnt * on / tot);
          cnt = tot;
        }`,
          final: `let v = max(m2 / cnt, vec4<f32>(0.0));
    let inv = inverseSqrt(v + vec4<f32>(p.${n}eps));
    let a = ${n}_g[q] * inv;
    ${n}_a[q] = a;
    ${n}_b[q] = ${n}_bt[q] - mean * a;
    if (wgLinear == 0u) {
      ${n}_sv[q] = mean;
      ${n}_sv[p.${n}C4 + q] = inv;
      let m = p.${n}mom;
      ${n}_rm[q] = (1.0 - m) * ${n}_rm[q] + m * mean;
      ${n}_rv[q] = (1.0 - m) * ${n}_rv[q] + m * v * (cnt / (cnt - 1.0));
    }`,
        }),
    };
  }
  const running = src.kind === "running";
  return {
    key: `bnFwd:${n}:${c4}:${src.kind}`,
    bindings: running
      ? [t.gamma.binding, t.beta.binding, t.runMean.binding, t.runVar.binding]
      : [t.gamma.binding, t.beta.binding, t.saved.binding],
    fields,
    decl: (first) =>
      decl(
        first,
        running
          ? [[`${n}_g`, false], [`${n}_bt`, false], [`${n}_rm`, false], [`${n}_rv`, false]]
          : [[`${n}_g`, false], [`${n}_bt`, false], [`${n}_sv`, false]],
      ) + "\n" + wg,
    pre: (threads) =>
      `  for (var q = lid.x; q < p.${n}C4; q += ${threads}u) {
    ${
        running
          ? `let mean = ${n}_rm[q];
    let inv = inverseSqrt(${n}_rv[q] + vec4<f32>(p.${n}eps));`
          : `let mean = ${n}_sv[q];
    let inv = ${n}_sv[p.${n}C4 + q];`
      }
    let a = ${n}_g[q] * inv;
    ${n}_a[q] = a;
    ${n}_b[q] = ${n}_bt[q] - mean * a;
  }`,
  };
}

/** Where gradient coefficients come from. */
export type BnGradSource =
  | { kind: "partials"; part: Tensor; tiles: number }
  | { kind: "final" };

/**
 * Backward coefficients `<n>_a`, `<n>_b`, `<n>_d` (see the module doc), with dgamma = sum(dy *
 * xhat) and dbeta = sum(dy): written from partials by the first workgroup, or read.
 */
export function bnGradCoefPart(
  n: string,
  t: BnTensors,
  dgamma: Tensor,
  dbeta: Tensor,
  src: BnGradSource,
): FusionPart {
  const C = t.gamma.size, c4 = C / 4;
  const fields: NamedField[] = [[`${n}C4`, "u32", c4], [`${n}rows`, "f32", t.rows]];
  const fromParts = src.kind === "partials";
  if (fromParts) fields.push([`${n}P`, "u32", src.tiles]);
  const bindings = [t.gamma.binding, t.saved.binding, dgamma.binding, dbeta.binding];
  if (fromParts) bindings.unshift(src.part.binding);
  const names: [string, boolean][] = [
    [`${n}_g`, false],
    [`${n}_sv`, false],
    [`${n}_dg`, fromParts],
    [`${n}_db`, fromParts],
  ];
  if (fromParts) names.unshift([`${n}_part`, false]);
  const coef = `let mean = ${n}_sv[q];
    let inv = ${n}_sv[p.${n}C4 + q];
    let a = ${n}_g[q] * inv;
    let k = a * inv * sgx / p.${n}rows;
    ${n}_a[q] = a;
    ${n}_b[q] = -k;
    ${n}_d[q] = k * mean - a * sg / p.${n}rows;`;
  const pre = (threads: number) =>
    fromParts
      ? combinePre(n, threads, c4, {
        init: `var sg = vec4<f32>(0.0);
    var sgx = vec4<f32>(0.0);`,
        step: `sg += ${n}_part[t * p.${n}C4 + q];
        sgx += ${n}_part[(p.${n}P + t) * p.${n}C4 + q];`,
        save: `${n}_xs[lid.x] = sg; ${n}_xx[lid.x] = sgx;`,
        merge: `sg += ${n}_xs[o]; sgx += ${n}_xx[o];`,
        final: `if (wgLinear == 0u) {
      ${n}_dg[q] = sgx;
      ${n}_db[q] = sg;
    }
    ${coef}`,
      })
      : `  for (var q = lid.x; q < p.${n}C4; q += ${threads}u) {
    let sg = ${n}_db[q];
    let sgx = ${n}_dg[q];
    ${coef}
  }`;
  return {
    key: `bnGrad:${n}:${c4}:${src.kind}`,
    bindings,
    fields,
    decl: (first, threads) =>
      decl(first, names) + "\n" + wgArrays(n, c4, ["a", "b", "d"]) + "\n" +
      (fromParts ? scratch(n, threads, c4, [["xs", "vec4<f32>"], ["xx", "vec4<f32>"]]) : ""),
    pre,
  };
}
