/**
 * Implicit-im2col GEMM operands for conv2d (NHWC activations, HWIO weights), read straight from
 * the activation tensors by the GEMM kernels (matmul_regblock.ts / matmul_tiled.ts):
 * - forward:       A[m = (n, oh, ow), k = (kh, kw, ci)] = x[n, oh*sh - padT + kh, ow*sw - padL + kw, ci]
 * - backward-data: A[m = (n, ih, iw), k = (kh, kw, co)] = dy[n, (ih + padT - kh)/sh, (iw + padL - kw)/sw, co]
 * - backward-weight: A[m = (kh, kw, ci), k = (n, oh, ow)] = the forward's A transposed.
 * vec4 loads along channels when the channel count is a multiple of 4; scalar loads otherwise.
 * The geometry is baked into the WGSL as constants ({@link bakeConv}): lavapipe scalarises integer
 * division by a runtime value (8 `div`s per SIMD op), while division by a constant is a multiply.
 * Stride-1 convs also have sliding-window forms for the register-blocked kernels: the forward and
 * backward-data operands' `rbWindow`, and {@link convBackwardFilterWindowA} (rows grouped so a
 * kernel row's taps share their loads).
 * @module
 */
import {
  type GemmOperand,
  type NamedField,
  type OperandCtx,
  type RbWindow,
  XYZW,
} from "./matmul_gemm.ts";
import { fastCompile, type GemmVariant, kernelMode, softwareAdapter, TUNING } from "./tuning.ts";

/** Conv geometry (padT/padL: top/left padding; bottom/right follow from OH/OW). */
export interface ConvGeom {
  N: number;
  H: number;
  W: number;
  Cin: number;
  Cout: number;
  OH: number;
  OW: number;
  KH: number;
  KW: number;
  sh: number;
  sw: number;
  padT: number;
  padL: number;
}

/** The uniform fields every conv operand reads. */
export function convFields(g: ConvGeom): NamedField[] {
  return [
    ["H", "u32", g.H],
    ["W", "u32", g.W],
    ["Cin", "u32", g.Cin],
    ["Cout", "u32", g.Cout],
    ["OH", "u32", g.OH],
    ["OW", "u32", g.OW],
    ["KH", "u32", g.KH],
    ["KW", "u32", g.KW],
    ["sh", "u32", g.sh],
    ["sw", "u32", g.sw],
    ["padT", "i32", g.padT],
    ["padL", "i32", g.padL],
  ];
}

/**
 * Bakes the conv geometry into an operand's code: every `p.<field>` of {@link convFields} becomes a
 * literal, the operand then needs no uniform fields and its key names the geometry.
 */
export function bakeConv(op: GemmOperand, g: ConvGeom): GemmOperand {
  const fields = convFields(g);
  const bake = (code: string) => {
    for (const [name, type, v] of fields) {
      code = code.replace(new RegExp(`\\bp\\.${name}\\b`, "g"), type === "i32" ? `${v}i` : `${v}u`);
    }
    return code;
  };
  return {
    ...op,
    key: `${op.key}:${fields.map(([, , v]) => v).join(",")}`,
    fields: [],
    rbSetup: (c) => bake(op.rbSetup(c)),
    rbStep: (c) => bake(op.rbStep(c)),
    scalarFn: bake(op.scalarFn),
    rbRow: op.rbRow && ((c, i) => bake(op.rbRow!(c, i))),
    rbWindow: op.rbWindow && {
      ...op.rbWindow,
      iterations: bake(op.rbWindow.iterations),
      setup: (c) => bake(op.rbWindow!.setup(c)),
      step: (c) => bake(op.rbWindow!.step(c)),
      k0: (t) => bake(op.rbWindow!.k0(t)),
    },
  };
}

/**
 * `op` baked with the geometry ({@link bakeConv}) for convs of at least `TUNING.bakeWork`
 * multiply-adds (where one pipeline per shape pays; not under `COLLAPSE_TUNING=fast-compile`), or
 * as `bake` says.
 */
export function bakeWhenLarge(op: GemmOperand, g: ConvGeom, bake?: boolean): GemmOperand {
  const work = g.N * g.OH * g.OW * g.Cout * g.KH * g.KW * g.Cin;
  return bake ?? (work >= TUNING.bakeWork && !fastCompile()) ? bakeConv(op, g) : op;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/**
 * A per-channel transform of the values an operand loads, with coefficients in workgroup vec4
 * arrays that a fusion pre-stage fills (bn_coef.ts): "bnRelu" loads relu(v * a[c] + b[c])
 * (NaN-propagating, the ReLU of a BatchNorm), "bnGrad" loads a[c] * v + b[c] * v2 + d[c] with v2
 * from the second array `src2` at the same index (a BatchNorm backward). Padding stays 0.
 */
export type OperandTransform =
  | { kind: "bnRelu"; a: string; b: string }
  | { kind: "bnGrad"; a: string; b: string; d: string; src2: string };

/**
 * WGSL: `x` (a vec4 expression) through the NaN-propagating ReLU (by an ordered compare where
 * `TUNING.reluByCompare` says so, else by a bit test of the NaN pattern).
 */
export function reluNan4(x: string): string {
  if (TUNING.reluByCompare ?? softwareAdapter()) {
    return `select(${x}, vec4<f32>(0.0), ${x} < vec4<f32>(0.0))`;
  }
  return `select(max(${x}, vec4<f32>(0.0)), ${x}, ` +
    `(bitcast<vec4<u32>>(${x}) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u))`;
}

/**
 * WGSL statements defining `out` = the transformed vec4 at storage index `idx` of A (`arr`) when
 * `ok` (0 otherwise), with coefficient vec4s `co` (a, b[, d] expressions).
 */
export function transformLoad(
  out: string,
  arr: string,
  idx: string,
  ok: string,
  t: OperandTransform,
  co: string[],
): string {
  const ii = `${out}_i`;
  const at = `let ${ii} = select(0u, ${idx}, ${ok});`;
  if (t.kind === "bnRelu") {
    return `${at} let ${out}_u = ${arr}[${ii}] * ${co[0]} + ${co[1]};
    let ${out} = select(vec4<f32>(0.0), ${reluNan4(`${out}_u`)}, ${ok});`;
  }
  return `${at}
    let ${out} = select(vec4<f32>(0.0), ${arr}[${ii}] * ${co[0]} + ${t.src2}[${ii}] * ${co[1]} + ${
    co[2]
  }, ${ok});`;
}

/** The coefficient arrays of a transform, indexed at `q` (a WGSL channel-quad index). */
function coefAt(t: OperandTransform, q: string): string[] {
  return t.kind === "bnRelu" ? [`${t.a}[${q}]`, `${t.b}[${q}]`] : [
    `${t.a}[${q}]`,
    `${t.b}[${q}]`,
    `${t.d}[${q}]`,
  ];
}

/** An operand with a transform's key part and second source added. */
export function transformedOperand(op: GemmOperand, t: OperandTransform | undefined): GemmOperand {
  if (!t) return op;
  return {
    ...op,
    key: `${op.key}:${t.kind}:${t.a}`,
    extra: t.kind === "bnGrad" ? [{ name: t.src2, elem: "vec4<f32>" }] : undefined,
    // bnRelu: one load and a few ALU ops; bnGrad: two loads.
    loadCost: t.kind === "bnGrad" ? 2 : 1.3,
  };
}

/** Scalar load of A at an index valid when `ok` (index 0 otherwise). */
function ld(idx: string, ok: string, vec: boolean): string {
  return `select(${vec ? "vec4<f32>(0.0)" : "0.0"}, A[select(0u, ${idx}, ${ok})], ${ok})`;
}

function kOk(c: OperandCtx, kk: number): string {
  return c.kGuard && kk > 0 ? ` && kv${kk}` : "";
}

/** Whether input pixel (y, x) (i32 WGSL) lies inside x. */
function inb(y: string, x: string): string {
  return `u32(${y}) < p.H && u32(${x}) < p.W`;
}

/** The flat index of x[b / H + y, x, ci] (`b`: the image's first row, n * H). */
function xIdx(b: string, y: string, x: string, ci: string): string {
  return `((${b} + u32(${y})) * p.W + u32(${x})) * p.Cin + ${ci}`;
}

// WGSL: the end of `a_at` of the forward and backward-weight operands, reading x at the tap.
const X_AT_TAP = `  let y = i32(oh * p.sh + kh) - p.padT; let x = i32(ow * p.sw + kw) - p.padL;
  let ok = ${inb("y", "x")};
  return ${ld(xIdx("n * p.H", "y", "x", "ci"), "ok", false)};
}`;

/** WGSL: splits k index `k` into channel `ch` (of `C` channels) and tap kw, kh (i32), names suffixed. */
function tapOf(ch: string, C: string, k: string, sfx: string | number): string {
  return `    let ${ch}${sfx} = ${k} % p.${C}; let kt${sfx} = ${k} / p.${C};` +
    ` let kw${sfx} = i32(kt${sfx} % p.KW); let kh${sfx} = i32(kt${sfx} / p.KW);`;
}

/**
 * The scalar-load k-step: `head` lines, then for each of the tm rows i the lines of `load(i, kk)`
 * (which define `v<i>_<kk>`) for the 4 k of the step, packed into `a<i>`.
 */
function scalarStep(
  c: OperandCtx,
  head: string[],
  load: (i: number, kk: number) => string[],
): string {
  const lines = [...head];
  for (const i of range(c.tm)) {
    for (const kk of range(4)) lines.push(...load(i, kk));
    lines.push(`    let a${i} = vec4<f32>(${range(4).map((kk) => `v${i}_${kk}`).join(", ")});`);
  }
  return lines.join("\n");
}

/**
 * The sliding window of a stride-1 conv operand (see {@link RbWindow}). A thread's tm rows are
 * segments of `seg` = min(tm, rowSpan) consecutive pixels of one image row each; segment s's
 * window holds the vec4s of `C` channels at image row `row(s)` and columns `col0(s)` + u,
 * u < seg + KW - 1, of a `rows` x `cols` image whose first row is `base(s)` (`setup(s)` defines
 * them from `wm`, the thread's first row). Iteration q covers kernel row `kh` and channel quad
 * `ch`. Every thread's col0 lies in [colMin, colMax(seg)], so some offsets u are in range for all
 * threads (no column test) and some for none (no load).
 */
function rowWindow(o: {
  g: ConvGeom;
  C: "Cin" | "Cout";
  rowSpan: number;
  setup: (s: number) => string;
  row: (s: number) => string;
  rows: "H" | "OH";
  cols: "W" | "OW";
  colExtent: number;
  base: (s: number) => string;
  col0: (s: number) => string;
  colMin: number;
  colMax: (seg: number) => number;
  xf?: OperandTransform;
  /** Window position of a segment's row i (0 <= i < seg) at tap t. */
  at: (i: number, t: number) => number;
}): RbWindow {
  const { g, C, xf } = o;
  const names = xf?.kind === "bnGrad" ? ["ga", "gb", "gd"] : ["fa", "fb"];
  const segOf = (tm: number) => Math.min(tm, o.rowSpan);
  return {
    taps: g.KW,
    rowSpan: o.rowSpan,
    iterations: `(p.KH * (p.${C} >> 2u))`,
    setup: (c) => {
      const seg = segOf(c.tm);
      const lines = [`  let wm = min(m0, p.M - ${c.tm}u);`];
      for (const sg of range(c.tm / seg)) {
        lines.push(`  let wm${sg} = wm + ${sg * seg}u;`, o.setup(sg));
      }
      return lines.join("\n");
    },
    step: (c) => {
      const seg = segOf(c.tm);
      const lines = [`    let kh = i32(q / (p.${C} >> 2u)); let ch = (q % (p.${C} >> 2u)) * 4u;`];
      if (xf) {
        const co = coefAt(xf, "ch >> 2u");
        lines.push(`    ${names.map((n, i) => `let ${n} = ${co[i]};`).join(" ")}`);
      }
      for (const sg of range(c.tm / seg)) {
        lines.push(
          `    let wy${sg} = ${o.row(sg)}; let oky${sg} = u32(wy${sg}) < p.${o.rows};` +
            ` let wrow${sg} = (${o.base(sg)} + u32(wy${sg})) * p.${o.cols};`,
        );
        for (const u of range(seg + g.KW - 1)) {
          const w = `w${sg}_${u}`;
          if (o.colMax(seg) + u < 0 || o.colMin + u >= o.colExtent) {
            lines.push(`    let ${w} = vec4<f32>(0.0);`); // padding for every thread
            continue;
          }
          const x = `wx${sg}_${u}`, ok = `wok${sg}_${u}`;
          const inside = o.colMin + u >= 0 && o.colMax(seg) + u < o.colExtent;
          const idx = `((wrow${sg} + u32(${x})) * p.${C} + ch) >> 2u`;
          lines.push(
            `    let ${x} = ${o.col0(sg)} + ${u}; let ${ok} = oky${sg}${
              inside ? "" : ` && u32(${x}) < p.${o.cols}`
            };\n    ${
              xf ? transformLoad(w, "A", idx, ok, xf, names) : `let ${w} = ${ld(idx, ok, true)};`
            }`,
          );
        }
      }
      return lines.join("\n");
    },
    k0: (t) => `(u32(kh) * p.KW + ${t}) * p.${C} + ch`,
    slot: (c, i, t) => {
      const seg = segOf(c.tm);
      return `w${Math.floor(i / seg)}_${o.at(i % seg, t)}`;
    },
  };
}

/**
 * Forward: x [N, H, W, Cin] as the im2col matrix [N*OH*OW, KH*KW*Cin]. `vec`: Cin % 4 == 0.
 * `xf`: a transform of the loaded x (vec only; e.g. the previous BatchNorm + ReLU).
 */
export function convForwardA(g: ConvGeom, vec: boolean, xf?: OperandTransform): GemmOperand {
  if (xf && !vec) throw new Error("collapse: conv operand transforms need Cin % 4 == 0");
  // Output pixels ow0 + i read input columns ow0 - padL + i + t: window position i + t.
  const window = vec && g.sh === 1 && g.sw === 1
    ? rowWindow({
      g,
      C: "Cin",
      rowSpan: g.OW,
      setup: (sg) =>
        `  let wt${sg} = wm${sg} / p.OW; let xb${sg} = (wt${sg} / p.OH) * p.H;` +
        ` let ih${sg} = i32(wt${sg} % p.OH) - p.padT; let iw${sg} = i32(wm${sg} % p.OW) - p.padL;`,
      row: (sg) => `ih${sg} + kh`,
      rows: "H",
      cols: "W",
      colExtent: g.W,
      base: (sg) => `xb${sg}`,
      col0: (sg) => `iw${sg}`,
      colMin: -g.padL,
      colMax: (seg) => g.OW - seg - g.padL,
      xf,
      at: (i, t) => i + t,
    })
    : undefined;
  return transformedOperand({
    key: `convFwdA:${vec}${window ? `:win:${g.KW}:${g.padL}:${g.W}:${g.OW}` : ""}`,
    fields: convFields(g),
    rbElem: vec ? "vec4<f32>" : "f32",
    scalarFn: `fn a_at(bi: vec4<u32>, m: u32, k: u32) -> f32 {
  let ow = m % p.OW; let t = m / p.OW; let oh = t % p.OH; let n = t / p.OH;
  let ci = k % p.Cin; let kt = k / p.Cin; let kw = kt % p.KW; let kh = kt / p.KW;
${X_AT_TAP}`,
    rbSetup: (c) =>
      range(c.tm).map((i) =>
        `  let fm${i} = min(m0 + ${i}u, p.M - 1u); let fo${i} = fm${i} % p.OW;` +
        ` let ft${i} = fm${i} / p.OW;\n  let xb${i} = (ft${i} / p.OH) * p.H;` +
        ` let ih${i} = i32((ft${i} % p.OH) * p.sh) - p.padT; let iw${i} = i32(fo${i} * p.sw) - p.padL;`
      ).join("\n"),
    rbStep: (c) => {
      if (vec) {
        const co = xf ? coefAt(xf, "ci >> 2u") : [];
        return [tapOf("ci", "Cin", "k0", "")].concat(
          xf ? [`    let fa = ${co[0]}; let fb = ${co[1]};`] : [],
          range(c.tm).map((i) => {
            const idx = `(${xIdx(`xb${i}`, `y${i}`, `x${i}`, "ci")}) >> 2u`;
            return `    let y${i} = ih${i} + kh; let x${i} = iw${i} + kw; let ok${i} = ${
              inb(`y${i}`, `x${i}`)
            };\n    ${
              xf
                ? transformLoad(`a${i}`, "A", idx, `ok${i}`, xf, ["fa", "fb"])
                : `let a${i} = ${ld(idx, `ok${i}`, true)};`
            }`;
          }),
        ).join("\n");
      }
      return scalarStep(c, range(4).map((kk) => tapOf("ci", "Cin", `kc${kk}`, kk)), (i, kk) => {
        const y = `(ih${i} + kh${kk})`, x = `(iw${i} + kw${kk})`;
        return [
          `    let ok${i}_${kk} = ${inb(y, x)}${kOk(c, kk)};`,
          `    let v${i}_${kk} = ${ld(xIdx(`xb${i}`, y, x, `ci${kk}`), `ok${i}_${kk}`, false)};`,
        ];
      });
    },
    rbValue: (i, kk) => `a${i}.${XYZW[kk]}`,
    rbWindow: window,
  }, xf);
}

/**
 * Backward-data: dy [N, OH, OW, Cout] as the matrix [N*H*W, KH*KW*Cout] of the transposed conv.
 * `vec`: Cout % 4 == 0; `unit`: stride 1 (no divisibility tests). `dyf`: a transform of the
 * loaded dy (vec only; e.g. the BatchNorm backward that produces it).
 */
export function convBackwardDataA(
  g: ConvGeom,
  vec: boolean,
  unit: boolean,
  dyf?: OperandTransform,
): GemmOperand {
  if (dyf && !vec) throw new Error("collapse: conv operand transforms need Cout % 4 == 0");
  // Output pixel (oh, ow) that reads input pixel via tap (kh, kw); valid when in range.
  const pos = (hy: string, wx: string) =>
    unit ? { ok: `u32(${hy}) < p.OH && u32(${wx}) < p.OW`, oh: `u32(${hy})`, ow: `u32(${wx})` } : {
      ok: `${hy} >= 0 && ${wx} >= 0 && u32(${hy}) % p.sh == 0u && u32(${wx}) % p.sw == 0u && ` +
        `u32(${hy}) / p.sh < p.OH && u32(${wx}) / p.sw < p.OW`,
      oh: `(u32(${hy}) / p.sh)`,
      ow: `(u32(${wx}) / p.sw)`,
    };
  const yIdx = (b: string, oh: string, ow: string, co: string) =>
    `((${b} + ${oh}) * p.OW + ${ow}) * p.Cout + ${co}`;
  const sp = pos("hy", "wx");
  // Input pixels iw0 + i read dy columns iw0 + i + padL - t: window position i + KW - 1 - t.
  const back = g.KW - 1;
  const window = vec && unit
    ? rowWindow({
      g,
      C: "Cout",
      rowSpan: g.W,
      setup: (sg) =>
        `  let wt${sg} = wm${sg} / p.W; let yb${sg} = (wt${sg} / p.H) * p.OH;` +
        ` let ph${sg} = i32(wt${sg} % p.H) + p.padT;` +
        ` let pw${sg} = i32(wm${sg} % p.W) + p.padL - ${back};`,
      row: (sg) => `ph${sg} - kh`,
      rows: "OH",
      cols: "OW",
      colExtent: g.OW,
      base: (sg) => `yb${sg}`,
      col0: (sg) => `pw${sg}`,
      colMin: g.padL - back,
      colMax: (seg) => g.W - seg + g.padL - back,
      xf: dyf,
      at: (i, t) => i + back - t,
    })
    : undefined;
  return transformedOperand({
    key: `convBwdDataA:${vec}:${unit}${window ? `:win:${g.KW}:${g.padL}:${g.W}:${g.OW}` : ""}`,
    fields: convFields(g),
    rbElem: vec ? "vec4<f32>" : "f32",
    scalarFn: `fn a_at(bi: vec4<u32>, m: u32, k: u32) -> f32 {
  let iw = m % p.W; let t = m / p.W; let ih = t % p.H; let n = t / p.H;
  let co = k % p.Cout; let kt = k / p.Cout; let kw = kt % p.KW; let kh = kt / p.KW;
  let hy = i32(ih) + p.padT - i32(kh); let wx = i32(iw) + p.padL - i32(kw);
  let ok = ${sp.ok};
  return ${ld(yIdx("n * p.OH", sp.oh, sp.ow, "co"), "ok", false)};
}`,
    rbSetup: (c) =>
      range(c.tm).map((i) =>
        `  let dm${i} = min(m0 + ${i}u, p.M - 1u); let dw${i} = dm${i} % p.W;` +
        ` let dt${i} = dm${i} / p.W;\n  let yb${i} = (dt${i} / p.H) * p.OH;` +
        ` let ph${i} = i32(dt${i} % p.H) + p.padT; let pw${i} = i32(dw${i}) + p.padL;`
      ).join("\n"),
    rbStep: (c) => {
      if (vec) {
        const co = dyf ? coefAt(dyf, "co >> 2u") : [];
        return [tapOf("co", "Cout", "k0", "")].concat(
          dyf ? [`    let ga = ${co[0]}; let gb = ${co[1]}; let gd = ${co[2]};`] : [],
          range(c.tm).map((i) => {
            const q = pos(`hy${i}`, `wx${i}`);
            const idx = `(${yIdx(`yb${i}`, q.oh, q.ow, "co")}) >> 2u`;
            return `    let hy${i} = ph${i} - kh; let wx${i} = pw${i} - kw; let ok${i} = ${q.ok};\n` +
              `    ${
                dyf
                  ? transformLoad(`a${i}`, "A", idx, `ok${i}`, dyf, ["ga", "gb", "gd"])
                  : `let a${i} = ${ld(idx, `ok${i}`, true)};`
              }`;
          }),
        ).join("\n");
      }
      return scalarStep(c, range(4).map((kk) => tapOf("co", "Cout", `kc${kk}`, kk)), (i, kk) => {
        const q = pos(`hy${i}_${kk}`, `wx${i}_${kk}`);
        return [
          `    let hy${i}_${kk} = ph${i} - kh${kk}; let wx${i}_${kk} = pw${i} - kw${kk};` +
          ` let ok${i}_${kk} = ${q.ok}${kOk(c, kk)};`,
          `    let v${i}_${kk} = ${
            ld(yIdx(`yb${i}`, q.oh, q.ow, `co${kk}`), `ok${i}_${kk}`, false)
          };`,
        ];
      });
    },
    rbValue: (i, kk) => `a${i}.${XYZW[kk]}`,
    rbWindow: window,
  }, dyf);
}

/**
 * Backward-weight: x as the matrix [KH*KW*Cin, N*OH*OW] (the forward im2col transposed).
 * `vec`: Cin % 4 == 0 (4 consecutive rows are 4 consecutive channels). `xf`: a transform of the
 * loaded x (vec only), as in {@link convForwardA}.
 */
export function convBackwardFilterA(g: ConvGeom, vec: boolean, xf?: OperandTransform): GemmOperand {
  if (xf && !vec) throw new Error("collapse: conv operand transforms need Cin % 4 == 0");
  const rowSetup = (r: string, m: string) =>
    `  let fm${r} = ${m}; let fc${r} = fm${r} % p.Cin; let fq${r} = fm${r} / p.Cin;` +
    ` let fw${r} = i32(fq${r} % p.KW) - p.padL; let fh${r} = i32(fq${r} / p.KW) - p.padT;`;
  const pixel = (kk: number) =>
    `    let pw${kk} = kc${kk} % p.OW; let pt${kk} = kc${kk} / p.OW; let pb${kk} = (pt${kk} / p.OH) * p.H;` +
    ` let py${kk} = i32((pt${kk} % p.OH) * p.sh); let px${kk} = i32(pw${kk} * p.sw);`;
  return transformedOperand({
    key: `convBwdFiltA:${vec}`,
    fields: convFields(g),
    rbElem: vec ? "vec4<f32>" : "f32",
    scalarFn: `fn a_at(bi: vec4<u32>, m: u32, k: u32) -> f32 {
  let ci = m % p.Cin; let mt = m / p.Cin; let kw = mt % p.KW; let kh = mt / p.KW;
  let ow = k % p.OW; let t = k / p.OW; let oh = t % p.OH; let n = t / p.OH;
${X_AT_TAP}`,
    rbSetup: (c) =>
      vec
        ? range(c.tm / 4).map((q) =>
          rowSetup(`${q}`, `min(m0 + ${4 * q}u, p.M - 4u)`) +
          (xf
            ? `\n  let fa${q} = ${coefAt(xf, `fc${q} >> 2u`)[0]}; let fb${q} = ${
              coefAt(xf, `fc${q} >> 2u`)[1]
            };`
            : "")
        ).join("\n")
        : range(c.tm).map((i) => rowSetup(`${i}`, `min(m0 + ${i}u, p.M - 1u)`)).join("\n"),
    rbStep: (c) => {
      const lines = range(4).map(pixel);
      if (vec) {
        for (const kk of range(4)) {
          for (const q of range(c.tm / 4)) {
            lines.push(
              `    let y${kk}_${q} = py${kk} + fh${q}; let x${kk}_${q} = px${kk} + fw${q};` +
                ` let ok${kk}_${q} = ${inb(`y${kk}_${q}`, `x${kk}_${q}`)}${kOk(c, kk)};`,
              xf
                ? `    ${
                  transformLoad(
                    `a${kk}_${q}`,
                    "A",
                    `(${xIdx(`pb${kk}`, `y${kk}_${q}`, `x${kk}_${q}`, `fc${q}`)}) >> 2u`,
                    `ok${kk}_${q}`,
                    xf,
                    [`fa${q}`, `fb${q}`],
                  )
                }`
                : `    let a${kk}_${q} = ${
                  ld(
                    `(${xIdx(`pb${kk}`, `y${kk}_${q}`, `x${kk}_${q}`, `fc${q}`)}) >> 2u`,
                    `ok${kk}_${q}`,
                    true,
                  )
                };`,
            );
          }
        }
        return lines.join("\n");
      }
      return scalarStep(c, lines, (i, kk) => [
        `    let y${i}_${kk} = py${kk} + fh${i}; let x${i}_${kk} = px${kk} + fw${i};` +
        ` let ok${i}_${kk} = ${inb(`y${i}_${kk}`, `x${i}_${kk}`)}${kOk(c, kk)};`,
        `    let v${i}_${kk} = ${
          ld(xIdx(`pb${kk}`, `y${i}_${kk}`, `x${i}_${kk}`, `fc${i}`), `ok${i}_${kk}`, false)
        };`,
      ]);
    },
    rbValue: (i, kk) => vec ? `a${kk}_${i >> 2}.${XYZW[i & 3]}` : `a${i}.${XYZW[kk]}`,
  }, xf);
}

/**
 * Whether a conv's weight gradient runs with {@link convBackwardFilterWindowA}: CPU kernels (the
 * register-blocked variant, unless `variant` forces the tiled one), `TUNING.rbWindow`, a conv
 * of at least `TUNING.rbWindowWork` multiply-adds, the geometry it needs, and rows per thread (`tm`, when forced) in whole groups.
 */
export function filterWindowFits(g: ConvGeom, variant?: GemmVariant, tm?: number): boolean {
  const work = g.N * g.OH * g.OW * g.KH * g.KW * g.Cin * g.Cout;
  return kernelMode() === "cpu" && variant !== "tiled" && TUNING.rbWindow &&
    work >= TUNING.rbWindowWork && g.sh === 1 &&
    g.sw === 1 && g.Cin % 4 === 0 && g.OW % 4 === 0 && (!tm || tm % (4 * g.KW) === 0);
}

/**
 * Backward-weight of a stride-1 conv with rows in groups that share a sliding window: row
 * m' = ((kh * Cin/4 + cq) * KW + kw) * 4 + c of A is row (kh * KW + kw) * Cin + 4 cq + c of
 * {@link convBackwardFilterA}'s (stores go there, {@link GemmOperand.rbRow}). A thread's rows
 * are whole groups (tm a multiple of 4 * KW): for a k-step of 4 pixels of one output row, a
 * group's KW taps read 4 + KW - 1 input pixels, loaded once (half the loads for a 3x3 kernel).
 * Needs Cin % 4 == 0, OW % 4 == 0 and K = N * OH * OW planned without a k guard; register-blocked
 * variant only (`xf` as in {@link convBackwardFilterA}).
 */
export function convBackwardFilterWindowA(g: ConvGeom, xf?: OperandTransform): GemmOperand {
  if (g.sh !== 1 || g.sw !== 1 || g.Cin % 4 !== 0 || g.OW % 4 !== 0) {
    throw new Error(
      "collapse: the windowed weight-gradient operand needs stride 1, Cin and OW % 4 == 0",
    );
  }
  const R = 4 * g.KW, CQ = g.Cin / 4, span = 4 + g.KW - 1;
  const groups = (c: OperandCtx) => {
    if (c.tm % R !== 0) {
      throw new Error(`collapse: ${c.tm} rows per thread is not a multiple of ${R}`);
    }
    return range(c.tm / R);
  };
  // Every thread's first pixel column px lies in [0, OW - 4] (k-steps of 4 within a row).
  const inside = (u: number) => u - g.padL >= 0 && g.OW - 4 + u - g.padL < g.W;
  const outside = (u: number) => g.OW - 4 + u - g.padL < 0 || u - g.padL >= g.W;
  const op = transformedOperand({
    key: `convBwdFiltWinA:${g.Cin}:${g.KW}:${g.KH}:${g.padT}:${g.padL}:${g.W}:${g.OW}`,
    fields: convFields(g),
    rbElem: "vec4<f32>",
    scalarFn: `fn a_at(bi: vec4<u32>, mp: u32, k: u32) -> f32 {
  let grp = mp / ${R}u; let kw = (mp % ${R}u) / 4u; let kh = grp / ${CQ}u;
  let ci = (grp % ${CQ}u) * 4u + mp % 4u;
  let ow = k % p.OW; let t = k / p.OW; let oh = t % p.OH; let n = t / p.OH;
${X_AT_TAP}`,
    rbTmMultiple: R,
    rbSetup: (c) =>
      ["  // A rows grouped by (kh, channel quad): the taps share loads"].concat(
        groups(c).map((s) => {
          const head = `  let fg${s} = min(m0 / ${R}u + ${s}u, ${g.KH * CQ - 1}u);` +
            ` let fh${s} = i32(fg${s} / ${CQ}u) - p.padT; let fc${s} = (fg${s} % ${CQ}u) * 4u;`;
          if (!xf) return head;
          const co = coefAt(xf, `fg${s} % ${CQ}u`);
          return `${head}\n  let fa${s} = ${co[0]}; let fb${s} = ${co[1]};`;
        }),
      ).join("\n"),
    rbStep: (c) => {
      const lines = [
        `    let pw = k0 % p.OW; let pt = k0 / p.OW; let pb = (pt / p.OH) * p.H;` +
        ` let py = i32(pt % p.OH); let px = i32(pw) - p.padL;`,
      ];
      for (const s of groups(c)) {
        lines.push(
          `    let y${s} = py + fh${s}; let oky${s} = u32(y${s}) < p.H;` +
            ` let xr${s} = (pb + u32(y${s})) * p.W;`,
        );
        for (const u of range(span)) {
          const w = `a${s}_${u}`;
          if (outside(u)) {
            lines.push(`    let ${w} = vec4<f32>(0.0);`);
            continue;
          }
          const x = `x${s}_${u}`, ok = `ok${s}_${u}`;
          const idx = `((xr${s} + u32(${x})) * p.Cin + fc${s}) >> 2u`;
          lines.push(
            `    let ${x} = px + ${u}; let ${ok} = oky${s}${
              inside(u) ? "" : ` && u32(${x}) < p.W`
            };\n    ${
              xf
                ? transformLoad(w, "A", idx, ok, xf, [`fa${s}`, `fb${s}`])
                : `let ${w} = ${ld(idx, ok, true)};`
            }`,
          );
        }
      }
      return lines.join("\n");
    },
    // Row i: group i / R, tap kw = (i % R) / 4, channel c = i % 4; pixel k0 + kk reads column u = kk + kw.
    rbValue: (i, kk) => `a${Math.floor(i / R)}_${kk + Math.floor((i % R) / 4)}.${XYZW[i % 4]}`,
    rbRow: (_c, i) => {
      const s = Math.floor(i / R), kw = Math.floor((i % R) / 4);
      return `(u32(fh${s} + p.padT) * p.KW + ${kw}u) * p.Cin + fc${s} + ${i % 4}u`;
    },
  }, xf);
  // Loads per value: span per 4 * KW (the transform's cost on top, as for the unwindowed form).
  return { ...op, loadCost: ((op.loadCost ?? 1) * span) / (4 * g.KW) };
}
