/**
 * Fused GEMM epilogues ({@link FusionPart}s with a {@link GemmEpilogue}) for convolutions next to a
 * BatchNorm, N = channels (N % 4 == 0), partials laid out as in bn_coef.ts with one tile per row
 * tile of the GEMM (P = ceil(M / tileM)):
 * - {@link bnStatsEpilogue}: stores the raw output and writes each tile's per-channel mean and
 *   sum of squared deviations (two passes over the tile's registers), for the next kernel's
 *   bnFwdCoefPart.
 * - {@link bnGradEpilogue}: the backward's store: optionally adds a residual gradient, masks with
 *   a ReLU's derivative (of relu(z * a + b) for a BatchNorm's coefficients, or of a stored ReLU
 *   output), stores, and writes each tile's sums of the result and of the result times the xhat
 *   of a BatchNorm's input, for the next kernel's bnGradCoefPart.
 * @module
 */
import type { Bindable } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import type { FusionPart } from "./fusion_parts.ts";
import type { EpilogueCtx, EpilogueElem } from "./matmul_gemm.ts";

/** Per column group j, the WGSL sum over the thread's elements of f(e) (rows outside M add 0). */
function colSums(elems: EpilogueElem[], tn4: number, f: (e: EpilogueElem) => string): string[] {
  return Array.from(
    { length: tn4 },
    (_, j) =>
      elems.filter((e) => e.j === j).map((e) =>
        e.ok === "true" ? f(e) : `select(vec4<f32>(0.0), ${f(e)}, ${e.ok})`
      ).join(" + ") || "vec4<f32>(0.0)",
  );
}

/**
 * WGSL: puts each thread's vec4 values (one expression per column group, `k` arrays side by
 * side) in workgroup memory, then runs `each` once per (column thread, column group) with `tot0`,
 * `tot1`, ... (the sums over the tile's row threads), `col` (the column) and `r` (the slot).
 */
function tileSums(c: EpilogueCtx, arr: string, vals: string[][], each: string): string {
  const k = vals.length;
  const stores = vals.flatMap((vs, a) =>
    vs.map((v, j) => `  ${arr}[(lid.x * ${c.tn4}u + ${j}u) * ${k}u + ${a}u] = ${v};`)
  );
  const decls = vals.map((_, a) => `    var tot${a} = vec4<f32>(0.0);`);
  const adds = vals.map((_, a) => `tot${a} += ${arr}[s * ${k}u + ${a}u];`).join(" ");
  return `${stores.join("\n")}
  workgroupBarrier();
  for (var r = lid.x; r < ${c.wgn * c.tn4}u; r += ${c.threads}u) {
    let tx = r % ${c.wgn}u;
    let j = r / ${c.wgn}u;
${decls.join("\n")}
    for (var ty = 0u; ty < ${c.wgm}u; ty++) {
      let s = (ty * ${c.wgn}u + tx) * ${c.tn4}u + j;
      ${adds}
    }
    let col = ${c.col("tx", "j")};
${each}
  }`;
}

/** WGSL: writes `a` and `b` (vec4s) as tile `tmi`'s two partials of column `col`. */
function writePartials(part: string, a: string, b: string): string {
  return `    if (col < p.N) {
      let P = p.tiles / p.tilesN;
      ${part}[(tmi * p.N + col) >> 2u] = ${a};
      ${part}[((P + tmi) * p.N + col) >> 2u] = ${b};
    }`;
}

/** Raw store + per-tile mean and M2 per channel into `part` (f32[2 * P * N]). */
export function bnStatsEpilogue(part: Tensor): FusionPart {
  return {
    key: "epiStats",
    bindings: [part.binding],
    fields: [],
    decl: (first) =>
      `@group(0) @binding(${first}) var<storage, read_write> es_part: array<vec4<f32>>;`,
    epilogue: {
      moduleDecl: (c) =>
        `var<workgroup> es_red: array<vec4<f32>, ${c.threads * c.tn4}>;
var<workgroup> es_mean: array<vec4<f32>, ${c.wgn * c.tn4}>;`,
      setup: () => "",
      value: () => "",
      finish: (c, elems) => {
        const dev = (e: EpilogueElem) => {
          const d = `(${e.v} - es_mean[(lid.x % ${c.wgn}u) + ${c.wgn * e.j}u])`;
          return `${d} * ${d}`;
        };
        return `  let es_rows = f32(min(${c.tileM}u, p.M - mT));
${tileSums(c, "es_red", [colSums(elems, c.tn4, (e) => e.v)], "    es_mean[r] = tot0 / es_rows;")}
  workgroupBarrier();
${
          tileSums(
            c,
            "es_red",
            [colSums(elems, c.tn4, dev)],
            writePartials("es_part", "es_mean[r]", "tot0"),
          )
        }`;
      },
    },
  };
}

/** What {@link bnGradEpilogue} does to the GEMM's output (all tensors [M, N] unless noted). */
export interface BnGradEpilogueOptions {
  /** Added first (a residual branch's gradient). */
  residual?: Tensor;
  /** dy * relu'(z * a + b), with a, b from a BatchNorm's `saved`, gamma, beta (f32[2N], [N], [N]). */
  bnRelu?: { z: Tensor; saved: Tensor; gamma: Tensor; beta: Tensor };
  /** dy * (y > 0), y a ReLU's output. */
  positive?: Tensor;
  /**
   * Partials (f32[2 * P * N]) of the result and of the result times xhat = (z - mean) * invstd
   * (`saved` = [mean; invstd]).
   */
  stats?: { z: Tensor; saved: Tensor; part: Tensor };
}

/** The backward store of a conv next to a BatchNorm + ReLU (see {@link BnGradEpilogueOptions}). */
export function bnGradEpilogue(o: BnGradEpilogueOptions): FusionPart {
  const bindings: Bindable[] = [];
  const names: [string, boolean][] = [];
  if (o.residual) {
    bindings.push(o.residual.binding);
    names.push(["eg_res", false]);
  }
  if (o.bnRelu) {
    bindings.push(o.bnRelu.z.binding, o.bnRelu.saved.binding, o.bnRelu.gamma.binding);
    bindings.push(o.bnRelu.beta.binding);
    names.push(["eg_rz", false], ["eg_rsv", false], ["eg_rg", false], ["eg_rb", false]);
  }
  if (o.positive) {
    bindings.push(o.positive.binding);
    names.push(["eg_pos", false]);
  }
  // The stats' z is the mask's z when they are the same tensor (one load).
  const sameZ = !!(o.stats && o.bnRelu && o.stats.z === o.bnRelu.z &&
    o.stats.saved === o.bnRelu.saved);
  if (o.stats) {
    if (!sameZ) {
      bindings.push(o.stats.z.binding, o.stats.saved.binding);
      names.push(["eg_sz", false], ["eg_ssv", false]);
    }
    bindings.push(o.stats.part.binding);
    names.push(["eg_part", true]);
  }
  let cols: string[] = [];
  const key = `epiGrad:${!!o.residual}:${!!o.bnRelu}:${!!o.positive}:${!!o.stats}:${sameZ}`;
  return {
    key,
    bindings,
    fields: [],
    decl: (first) =>
      names.map(([n, rw], i) =>
        `@group(0) @binding(${first + i}) var<storage, ${
          rw ? "read_write" : "read"
        }> ${n}: array<vec4<f32>>;`
      ).join("\n"),
    epilogue: {
      moduleDecl: (c) =>
        o.stats ? `var<workgroup> eg_red: array<vec4<f32>, ${c.threads * c.tn4 * 2}>;` : "",
      setup: (cs) => {
        cols = cs;
        const lines: string[] = [];
        cs.forEach((col, j) => {
          const q = `(${col} >> 2u)`, c4 = "(p.N >> 2u)";
          if (o.bnRelu) {
            lines.push(
              `  let eg_ra${j} = eg_rg[${q}] * eg_rsv[${c4} + ${q}];`,
              `  let eg_rb${j} = eg_rb[${q}] - eg_rsv[${q}] * eg_ra${j};`,
            );
          }
          if (o.stats) {
            const sv = sameZ ? "eg_rsv" : "eg_ssv";
            lines.push(
              `  let eg_mean${j} = ${sv}[${q}];`,
              `  let eg_inv${j} = ${sv}[${c4} + ${q}];`,
              `  var eg_s${j} = vec4<f32>(0.0);`,
              `  var eg_sx${j} = vec4<f32>(0.0);`,
            );
          }
        });
        return lines.join("\n");
      },
      value: (e) => {
        const idx = `(${e.m} * p.N + ${cols[e.j]}) >> 2u`;
        const v = e.v, j = e.j;
        const lines = [`  {`, `    let eg_i = ${idx};`];
        if (o.residual) lines.push(`    ${v} += eg_res[eg_i];`);
        if (o.bnRelu) {
          lines.push(
            `    let eg_z = eg_rz[eg_i];`,
            `    ${v} = select(vec4<f32>(0.0), ${v}, eg_z * eg_ra${j} + eg_rb${j} > vec4<f32>(0.0));`,
          );
        }
        if (o.positive) {
          lines.push(`    ${v} = select(vec4<f32>(0.0), ${v}, eg_pos[eg_i] > vec4<f32>(0.0));`);
        }
        if (o.stats) {
          const z = sameZ ? "eg_z" : "eg_sz[eg_i]";
          const add = (s: string, x: string) =>
            e.ok === "true" ? `${s} += ${x};` : `${s} += select(vec4<f32>(0.0), ${x}, ${e.ok});`;
          lines.push(
            `    ${add(`eg_s${j}`, v)}`,
            `    ${add(`eg_sx${j}`, `${v} * ((${z} - eg_mean${j}) * eg_inv${j})`)}`,
          );
        }
        lines.push(`  }`);
        return lines.join("\n");
      },
      finish: (c) => {
        if (!o.stats) return "";
        const js = Array.from({ length: c.tn4 }, (_, j) => j);
        return tileSums(
          c,
          "eg_red",
          [js.map((j) => `eg_s${j}`), js.map((j) => `eg_sx${j}`)],
          writePartials("eg_part", "tot0", "tot1"),
        );
      },
    },
  };
}
