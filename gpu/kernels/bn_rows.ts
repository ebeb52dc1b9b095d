/**
 * Row kernels of the fused conv + BatchNorm ops: elementwise passes over a channels-last [R, C]
 * tensor (C % 4 == 0, vec4 per 4 channels), one workgroup per chunk of rows, that can run fusion
 * parts' pre-stages (BatchNorm coefficients, split-K riders; fusion_parts.ts) and reduce two
 * per-channel sums over their rows into partials (f32[2 * P * C], P = the workgroups), which the
 * next kernel's pre-stage combines. {@link rowKernelLaunch} assembles one from a body:
 * - {@link bnApplyLaunch}: y = relu(z * a + b [+ shortcut(x)]) (a BatchNorm from partials,
 *   saved or running statistics; identity or option-A shortcut).
 * - {@link reluGradStatsLaunch}: g = dy * (y > 0), and the sums of g and g * xhat.
 * - {@link stridedGradLaunch}: a strided conv's input gradient from its parity classes, with a
 *   shortcut's gradient, a ReLU mask and statistics.
 * @module
 */
import type { Launch } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import { type FusionPart, partsDecl, partsPre } from "./fusion_parts.ts";
import { type NamedField, uniformBlock } from "./matmul_gemm.ts";
import { type ConvGeom, reluNan4 } from "./conv2d_operands.ts";
import { parityIndex } from "./conv2d_parity.ts";
import { kernelMode, TUNING } from "./tuning.ts";

/** A tensor a row kernel's body reads or writes, as array<vec4<f32>> `name`. */
export interface RowIo {
  name: string;
  t: Tensor;
  write?: boolean;
}

/** A row kernel (see the module doc). */
export interface RowKernelSpec {
  name: string;
  /** Rows R and channels C of the [R, C] layout the body walks. */
  rows: number;
  C: number;
  parts: FusionPart[];
  io: RowIo[];
  /** Uniform fields of the body (names unique among the parts'). */
  fields: NamedField[];
  /** Per-thread statements once `q` (the channel quad) is known. */
  setup?: string;
  /**
   * Statements per (row `r`, quad `q`; `i` = r * C4 + q the vec4 index); may add to `acc0` and
   * `acc1` (vec4s) when `reduce` is set.
   */
  body: string;
  /** f32[2 * P * C]: the per-workgroup sums of acc0 and acc1. */
  reduce?: Tensor;
  /** Module-scope WGSL (helper functions). */
  helpers?: string;
}

/** Workgroups and rows per workgroup of a row kernel over `rows` rows. */
export function rowGrid(rows: number): { groups: number; rowsPer: number } {
  const t = TUNING.rowKernel[kernelMode()];
  const rowsPer = Math.max(1, Math.ceil(rows / t.groups));
  return { groups: Math.ceil(rows / rowsPer), rowsPer };
}

/** Threads per workgroup: C/4 quads x the row lanes that fit `TUNING.rowKernel` threads. */
function layout(c4: number): { lanes: number; threads: number } {
  const lanes = Math.max(1, Math.floor(TUNING.rowKernel[kernelMode()].threads / c4));
  return { lanes, threads: lanes * c4 };
}

/**
 * How a workgroup's rows are walked: `sweepRows` row lanes (the threads of `TUNING.rowKernel`'s
 * `sweep`, rounded up to whole rows) step together through a block of `blockRows` contiguous
 * rows, one block per such set of lanes. On lavapipe a workgroup runs as 8-lane SIMD batches one
 * after the other, so 8 threads that sweep their own block stream through memory, where the
 * whole workgroup interleaved would have each batch stride across all of the workgroup's rows.
 */
function sweepOf(lanes: number, c4: number, rowsPer: number) {
  const sweep = TUNING.rowKernel[kernelMode()].sweep;
  let sweepRows = sweep > 0 ? Math.ceil(sweep / c4) : lanes;
  if (sweepRows > lanes || lanes % sweepRows !== 0) sweepRows = lanes;
  const blockRows = Math.ceil(rowsPer / (lanes / sweepRows));
  return { sweepRows, blockRows };
}

/** The number of partial rows (workgroups) a reducing row kernel over `rows` rows writes. */
export function rowPartials(rows: number): number {
  return rowGrid(rows).groups;
}

/** The launch of a row kernel. */
export function rowKernelLaunch(s: RowKernelSpec): Launch {
  if (s.C % 4 !== 0) throw new Error(`collapse: ${s.name}: needs C % 4 == 0, got ${s.C}`);
  const c4 = s.C / 4;
  const { lanes, threads } = layout(c4);
  const { groups, rowsPer } = rowGrid(s.rows);
  const { sweepRows, blockRows } = sweepOf(lanes, c4, rowsPer);
  // One block: every lane walks the workgroup's rows interleaved.
  const rowLoop = sweepRows === lanes
    ? `  for (var r = wgLinear * p.rowsPer + lane; r < r1; r += ${lanes}u) {`
    : `  let rs = wgLinear * p.rowsPer + (lane / ${sweepRows}u) * ${blockRows}u;
  let re = min(r1, rs + ${blockRows}u);
  for (var r = rs + lane % ${sweepRows}u; r < re; r += ${sweepRows}u) {`;
  // The kernel's own geometry is baked into the source (lavapipe scalarises integer division by
  // a runtime value); the parts' fields stay uniforms.
  const own: NamedField[] = [
    ["R", "u32", s.rows],
    ["C4", "u32", c4],
    ["rowsPer", "u32", rowsPer],
    ["P", "u32", groups],
    ...s.fields,
  ];
  const partFields = s.parts.flatMap((p) => p.fields);
  const uni: NamedField[] = partFields.length ? partFields : [["unused", "u32", 0]];
  const { struct, data } = uniformBlock(uni);
  const bake = (code: string) => {
    for (const [name, type, v] of own) {
      const lit = type === "i32" ? `${v}i` : type === "u32" ? `${v}u` : `${v}f`;
      code = code.replace(new RegExp(`\\bp\\.${name}\\b`, "g"), lit);
    }
    return code;
  };
  // Generated every time (parts' code depends on more than their keys); the engine caches
  // pipelines by source.
  const code = (() => {
    const io = s.io.map((x, i) =>
      `@group(0) @binding(${i}) var<storage, ${
        x.write ? "read_write" : "read"
      }> ${x.name}: array<vec4<f32>>;`
    );
    let next = s.io.length;
    if (s.reduce) {
      io.push(`@group(0) @binding(${next++}) var<storage, read_write> rk_part: array<vec4<f32>>;`);
    }
    const parts = partsDecl(s.parts, next, threads);
    const red = s.reduce ? `var<workgroup> rk_red: array<vec4<f32>, ${2 * threads}>;` : "";
    const finish = s.reduce
      ? `  rk_red[2u * lid.x] = acc0;
  rk_red[2u * lid.x + 1u] = acc1;
  workgroupBarrier();
  if (lane == 0u) {
    var t0 = vec4<f32>(0.0);
    var t1 = vec4<f32>(0.0);
    for (var l = 0u; l < ${lanes}u; l++) {
      t0 += rk_red[2u * (l * p.C4 + q)];
      t1 += rk_red[2u * (l * p.C4 + q) + 1u];
    }
    rk_part[wgLinear * p.C4 + q] = t0;
    rk_part[(p.P + wgLinear) * p.C4 + q] = t1;
  }`
      : "";
    return `// ${s.name}: row kernel, ${threads} threads (${lanes} rows x ${c4} channel quads)
${struct}
${io.join("\n")}
${parts.decl}
@group(0) @binding(${parts.next}) var<uniform> p: P;
${red}
${s.helpers ?? ""}
@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  _ = p.${uni[0][0]}; // keeps the uniforms bound when only baked fields are read
  let wgLinear = wid.x + wid.y * nwg.x;
  let wgCount = nwg.x * nwg.y;
${partsPre(s.parts, threads)}
  let q = lid.x % p.C4;
  let lane = lid.x / p.C4;
${s.setup ?? ""}
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  let r1 = min(p.R, (wgLinear + 1u) * p.rowsPer);
${rowLoop}
    let i = r * p.C4 + q;
${s.body}
  }
${finish}
}
`;
  })();
  const baked = bake(code);
  const bindings = s.io.map((x) => x.t.binding);
  if (s.reduce) bindings.push(s.reduce.binding);
  bindings.push(...s.parts.flatMap((p) => p.bindings));
  return { name: s.name, code: baked, bindings, uniforms: data, workgroups: [groups, 1, 1] };
}

/** The shortcut added by {@link bnApplyLaunch}. */
export type RowShortcut =
  | { kind: "identity"; x: Tensor }
  | {
    kind: "optionA";
    x: Tensor;
    /** Input [N, H, W, Cin] subsampled by `stride`, channels placed at [pad, pad + Cin). */
    H: number;
    W: number;
    Cin: number;
    OH: number;
    OW: number;
    stride: number;
    pad: number;
  };

/**
 * y = relu(z * a + b [+ shortcut]) over z, y [R, C], with the coefficients `<coef>_a`, `<coef>_b`
 * of a forward BatchNorm part among `parts`.
 */
export function bnApplyLaunch(
  z: Tensor,
  y: Tensor,
  coef: string,
  parts: FusionPart[],
  shortcut?: RowShortcut,
): Launch {
  const C = z.shape[z.rank - 1], rows = z.size / C;
  const io: RowIo[] = [{ name: "z", t: z }, { name: "y", t: y, write: true }];
  const fields: NamedField[] = [];
  let add = "";
  if (shortcut?.kind === "identity") {
    io.push({ name: "sx", t: shortcut.x });
    add = "v += sx[i];";
  } else if (shortcut?.kind === "optionA") {
    io.push({ name: "sx", t: shortcut.x });
    const sc = shortcut;
    if (sc.pad % 4 !== 0 || sc.Cin % 4 !== 0) {
      throw new Error("collapse: fused option-A shortcut needs channel counts divisible by 4");
    }
    fields.push(
      ["sH", "u32", sc.H],
      ["sW", "u32", sc.W],
      ["sC4", "u32", sc.Cin / 4],
      ["sOH", "u32", sc.OH],
      ["sOW", "u32", sc.OW],
      ["sS", "u32", sc.stride],
      ["sPad4", "u32", sc.pad / 4],
    );
    add = `let ow = r % p.sOW; let t = r / p.sOW; let oh = t % p.sOH; let n = t / p.sOH;
    let cq = q - p.sPad4;
    if (q >= p.sPad4 && cq < p.sC4) {
      v += sx[((n * p.sH + oh * p.sS) * p.sW + ow * p.sS) * p.sC4 + cq];
    }`;
  }
  return rowKernelLaunch({
    name: "bn_apply_relu",
    rows,
    C,
    parts,
    io,
    fields,
    setup: `  let ca = ${coef}_a[q];\n  let cb = ${coef}_b[q];`,
    body: `    var v = z[i] * ca + cb;
    ${add}
    y[i] = ${reluNan4("v")};`,
  });
}

/**
 * g = dy * (y > 0) (the ReLU's derivative at its output y), and into `part` the per-workgroup
 * sums of g and g * (z - mean) * invstd (`saved` = [mean; invstd] of the BatchNorm of z).
 */
export function reluGradStatsLaunch(
  dy: Tensor,
  y: Tensor,
  z: Tensor,
  saved: Tensor,
  g: Tensor,
  part: Tensor,
): Launch {
  const C = z.shape[z.rank - 1], rows = z.size / C;
  return rowKernelLaunch({
    name: "relu_grad_bn_stats",
    rows,
    C,
    parts: [],
    io: [
      { name: "dy", t: dy },
      { name: "y", t: y },
      { name: "z", t: z },
      { name: "sv", t: saved },
      { name: "g", t: g, write: true },
    ],
    fields: [],
    setup: `  let mean = sv[q];\n  let inv = sv[p.C4 + q];`,
    body: `    let v = select(vec4<f32>(0.0), dy[i], y[i] > vec4<f32>(0.0));
    g[i] = v;
    acc0 += v;
    acc1 += v * ((z[i] - mean) * inv);`,
    reduce: part,
  });
}

/** What {@link stridedGradLaunch} adds to a strided conv's input gradient. */
export interface StridedGradOptions {
  /**
   * The option-A shortcut's gradient: dx[n, ih, iw, c] += g[n, ih / s, iw / s, c + pad] where
   * ih, iw divide the stride s (g [N, OH, OW, Cg], `pad` the channels padded before).
   */
  shortcut?: { g: Tensor; stride: number; pad: number };
  /** dx * (y > 0) and the per-workgroup sums of it and of it times xhat of z (see reluGradStatsLaunch). */
  reluStats?: { y: Tensor; z: Tensor; saved: Tensor; part: Tensor };
}

/**
 * A strided conv's dx [N, H, W, Cin] from its parity classes' GEMM output (kernels/conv2d_parity.ts),
 * as a row kernel: plus the options' shortcut gradient and ReLU mask with statistics, and the
 * pre-stages of `parts` (e.g. a rider).
 */
export function stridedGradLaunch(
  tmp: Tensor,
  dx: Tensor,
  g: ConvGeom,
  o: StridedGradOptions,
  parts: FusionPart[],
): Launch {
  const io: RowIo[] = [{ name: "tmp", t: tmp }, { name: "dx", t: dx, write: true }];
  const body = [`    var v = tmp[${parityIndex(g, "r", "q")}];`];
  if (o.shortcut) {
    const sc = o.shortcut;
    const cg = sc.g.shape[3];
    if (sc.pad % 4 !== 0 || cg % 4 !== 0) {
      throw new Error("collapse: fused option-A shortcut needs channel counts divisible by 4");
    }
    const [, sOH, sOW] = sc.g.shape;
    io.push({ name: "sg", t: sc.g });
    body.push(
      `    let pw = r % ${g.W}u; let pt = r / ${g.W}u;`,
      `    let sy = pt % ${g.H}u; let sq = q + ${sc.pad / 4}u;`,
      `    if (sy % ${sc.stride}u == 0u && pw % ${sc.stride}u == 0u && sq < ${cg / 4}u) {`,
      `      v += sg[(((pt / ${g.H}u) * ${sOH}u + sy / ${sc.stride}u) * ${sOW}u + pw / ${sc.stride}u) * ${
        cg / 4
      }u + sq];`,
      `    }`,
    );
  }
  let setup = "";
  if (o.reluStats) {
    const rs = o.reluStats;
    io.push({ name: "ry", t: rs.y }, { name: "rz", t: rs.z }, { name: "rsv", t: rs.saved });
    setup = `  let mean = rsv[q];\n  let inv = rsv[p.C4 + q];`;
    body.push(
      `    v = select(vec4<f32>(0.0), v, ry[i] > vec4<f32>(0.0));`,
      `    acc0 += v;`,
      `    acc1 += v * ((rz[i] - mean) * inv);`,
    );
  }
  body.push(`    dx[i] = v;`);
  return rowKernelLaunch({
    name: "conv2d_strided_grad",
    rows: g.N * g.H * g.W,
    C: g.Cin,
    parts,
    io,
    fields: [],
    setup,
    body: body.join("\n"),
    reduce: o.reluStats?.part,
  });
}
