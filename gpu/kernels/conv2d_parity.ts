/**
 * Strided conv backward-data as one GEMM per output parity class (no multiplications by the zeros
 * of a dilated dy, no [pixels, KH*KW*Cin] column matrix): input pixels (ih, iw) with
 * ih % sh = py, iw % sw = px are read by the taps kh = (py + padT) % sh + sh * t (and likewise kw)
 * only, so class c = py * sw + px is
 *   tmp[c][m = (n, i, j), ci] = sum over its taps (kh, kw) and co of
 *     dy[n, (ih + padT - kh) / sh, (iw + padL - kw) / sw, co] * w[kh, kw, ci, co]
 * with ih = py + sh * i, iw = px + sw * j: a batched GEMM (batch = class, K = its taps x Cout,
 * capped per class through `kLimit`). {@link parityInterleaveLaunch} then writes dx from the
 * classes. The geometry is baked in (constants); Cout % 4 == 0 (vec4 along output channels).
 * @module
 */
import type { Launch } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import type { ConvGeom } from "./conv2d_operands.ts";
import { type OperandTransform, transformedOperand, transformLoad } from "./conv2d_operands.ts";
import type { GemmOperand } from "./matmul_gemm.ts";
import { grid1d, main1d } from "./util.ts";

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Rows of one class: N * ceil(H / sh) * ceil(W / sw). */
export function parityRows(g: ConvGeom): { M: number; HC: number; WC: number; classes: number } {
  const HC = Math.ceil(g.H / g.sh), WC = Math.ceil(g.W / g.sw);
  return { M: g.N * HC * WC, HC, WC, classes: g.sh * g.sw };
}

/** The most taps of any class (the GEMM's K is this x Cout). */
export function parityMaxTaps(g: ConvGeom): number {
  return Math.ceil(g.KH / g.sh) * Math.ceil(g.KW / g.sw);
}

/** WGSL statements: the class's first tap offsets and tap count along w, for batch index `zb`. */
function classSetup(g: ConvGeom, p: string): string {
  return `  let ${p}py = zb / ${g.sw}u; let ${p}px = zb % ${g.sw}u;
  let ${p}fh = (${p}py + ${g.padT}u) % ${g.sh}u; let ${p}fw = (${p}px + ${g.padL}u) % ${g.sw}u;
  let ${p}cw = (${g.KW}u - ${p}fw + ${g.sw - 1}u) / ${g.sw}u;`;
}

/** WGSL statements: tap (kh, kw) and channel of k-step `k0`. */
function tapOfK(g: ConvGeom, p: string): string {
  return `    let ${p}t = k0 / ${g.Cout}u; let ${p}co = k0 % ${g.Cout}u;
    let ${p}kh = ${p}fh + ${g.sh}u * (${p}t / ${p}cw); let ${p}kw = ${p}fw + ${g.sw}u * (${p}t % ${p}cw);`;
}

/** WGSL u32 expression: K of batch (class) `zb`, its tap count x Cout. */
export function parityKLimit(g: ConvGeom): string {
  const ch = `((${g.KH}u - (zb / ${g.sw}u + ${g.padT}u) % ${g.sh}u + ${g.sh - 1}u) / ${g.sh}u)`;
  const cw = `((${g.KW}u - (zb % ${g.sw}u + ${g.padL}u) % ${g.sw}u + ${g.sw - 1}u) / ${g.sw}u)`;
  return `(${ch} * ${cw} * ${g.Cout}u)`;
}

/** A: dy [N, OH, OW, Cout] per class (see the module doc); `dyf` transforms the loaded dy. */
export function parityA(g: ConvGeom, dyf?: OperandTransform): GemmOperand {
  if (g.Cout % 4 !== 0) throw new Error("collapse: parity backward-data needs Cout % 4 == 0");
  const { M, HC, WC } = parityRows(g);
  const key = `parityA:${JSON.stringify(g)}`;
  return transformedOperand({
    key,
    fields: [],
    rbElem: "vec4<f32>",
    // Scalar accessor (the batch index is bi.x); only the register-blocked accessors take `dyf`.
    scalarFn: `fn a_at(bi: vec4<u32>, m: u32, k: u32) -> f32 {
  let zb = bi.x;
${classSetup(g, "a")}
  let k0 = k;
${tapOfK(g, "a")}
  let pt = m / ${WC}u; let pi = pt % ${HC}u; let pj = m % ${WC}u;
  let hy = i32(apy + ${g.sh}u * pi) + ${g.padT} - i32(akh);
  let wx = i32(apx + ${g.sw}u * pj) + ${g.padL} - i32(akw);
  let ok = hy >= 0 && wx >= 0 && hy < ${g.OH * g.sh} && wx < ${g.OW * g.sw};
  let idx = (((pt / ${HC}u) * ${g.OH}u + u32(hy) / ${g.sh}u) * ${g.OW}u + u32(wx) / ${g.sw}u) * ${g.Cout}u + aco;
  return select(0.0, A[select(0u, idx, ok)], ok);
}`,
    rbSetup: (c) =>
      [classSetup(g, "a")].concat(
        range(c.tm).map((i) =>
          `  let pm${i} = min(m0 + ${i}u, ${M - 1}u); let pt${i} = pm${i} / ${WC}u;` +
          ` let pi${i} = pt${i} % ${HC}u; let pj${i} = pm${i} % ${WC}u;\n` +
          `  let pyb${i} = (pt${i} / ${HC}u) * ${g.OH}u;` +
          ` let pih${i} = i32(apy + ${g.sh}u * pi${i}) + ${g.padT};` +
          ` let piw${i} = i32(apx + ${g.sw}u * pj${i}) + ${g.padL};\n` +
          `  let prow${i} = apy + ${g.sh}u * pi${i} < ${g.H}u && apx + ${g.sw}u * pj${i} < ${g.W}u;`
        ),
      ).join("\n"),
    rbStep: (c) => {
      const co = dyf ? ["ga", "gb", "gd"] : [];
      const lines = [tapOfK(g, "a")];
      if (dyf) {
        const q = "aco >> 2u";
        lines.push(
          dyf.kind === "bnRelu"
            ? `    let ga = ${dyf.a}[${q}]; let gb = ${dyf.b}[${q}];`
            : `    let ga = ${dyf.a}[${q}]; let gb = ${dyf.b}[${q}]; let gd = ${dyf.d}[${q}];`,
        );
      }
      for (const i of range(c.tm)) {
        lines.push(
          `    let hy${i} = pih${i} - i32(akh); let wx${i} = piw${i} - i32(akw);` +
            ` let ok${i} = prow${i} && hy${i} >= 0 && wx${i} >= 0 && hy${i} < ${g.OH * g.sh} &&` +
            ` wx${i} < ${g.OW * g.sw};`,
        );
        const idx = `((pyb${i} + u32(hy${i}) / ${g.sh}u) * ${g.OW}u + u32(wx${i}) / ${g.sw}u) * ` +
          `${g.Cout / 4}u + (aco >> 2u)`;
        lines.push(
          dyf
            ? `    ${transformLoad(`a${i}`, "A", idx, `ok${i}`, dyf, co)}`
            : `    let a${i} = select(vec4<f32>(0.0), A[select(0u, ${idx}, ok${i})], ok${i});`,
        );
      }
      return lines.join("\n");
    },
    rbValue: (i, kk) => `a${i}.${"xyzw"[kk]}`,
  }, dyf);
}

/** B: w [KH, KW, Cin, Cout] at the class's taps, B[k = (tap, co), n = ci]. */
export function parityB(g: ConvGeom): GemmOperand {
  const tapSize = g.Cin * g.Cout;
  return {
    key: `parityB:${JSON.stringify(g)}`,
    fields: [],
    rbElem: "vec4<f32>",
    scalarFn: `fn b_at(bi: vec4<u32>, k: u32, n: u32) -> f32 {
  let zb = bi.x;
${classSetup(g, "b")}
  let k0 = k;
${tapOfK(g, "b")}
  return B[(bkh * ${g.KW}u + bkw) * ${tapSize}u + n * ${g.Cout}u + bco];
}`,
    rbSetup: (c) =>
      [classSetup(g, "b")].concat(
        range(c.tn).map((n) => `  let wr${n} = min(n0 + ${n}u, ${g.Cin - 1}u) * ${g.Cout}u;`),
      ).join("\n"),
    rbStep: (c) =>
      [
        tapOfK(g, "b"),
        `    let wb = (bkh * ${g.KW}u + bkw) * ${tapSize}u + bco;`,
      ].concat(
        range(c.tn).map((n) => `    let bt${n} = B[(wb + wr${n}) >> 2u];`),
        range(4).flatMap((kk) =>
          range(c.tn / 4).map((j) =>
            `    let b${kk}_${j} = vec4<f32>(${
              range(4).map((q) => `bt${4 * j + q}.${"xyzw"[kk]}`).join(", ")
            });`
          )
        ),
      ).join("\n"),
    rbValue: (kk, j) => `b${kk}_${j}`,
  };
}

/** WGSL: the index into the class buffer of dx element (pixel `r` = (n, ih, iw), quad `q`). */
export function parityIndex(g: ConvGeom, r: string, q: string): string {
  const { M, HC, WC } = parityRows(g);
  return `(((${r} / ${g.W}u) % ${g.H}u % ${g.sh}u * ${g.sw}u + ${r} % ${g.W}u % ${g.sw}u) * ${M}u + ` +
    `((${r} / ${g.W * g.H}u) * ${HC}u + (${r} / ${g.W}u) % ${g.H}u / ${g.sh}u) * ${WC}u + ` +
    `${r} % ${g.W}u / ${g.sw}u) * ${g.Cin / 4}u + ${q}`;
}

/** dx [N, H, W, Cin] from the class buffer [classes, M, Cin] (Cin % 4 == 0). */
export function parityInterleaveLaunch(tmp: Tensor, dx: Tensor, g: ConvGeom): Launch {
  const c4 = g.Cin / 4, total = g.N * g.H * g.W * c4;
  return {
    name: "conv2d_parity_interleave",
    code: `// conv2d_parity_interleave: ${JSON.stringify(g)}
@group(0) @binding(0) var<storage, read> tmp: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dx: array<vec4<f32>>;
${main1d(64)}
  if (i >= ${total}u) { return; }
  let r = i / ${c4}u;
  let q = i % ${c4}u;
  dx[i] = tmp[${parityIndex(g, "r", "q")}];
}`,
    bindings: [tmp.binding, dx.binding],
    workgroups: grid1d(total, 64),
  };
}
