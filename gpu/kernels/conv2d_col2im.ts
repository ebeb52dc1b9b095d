/**
 * Kernel: col2im for strided conv backward-data. Given dcol [N*OH*OW, KH*KW*Cin] (= dy x w^T, one
 * row of tap gradients per output pixel), sums for every input pixel the taps that read it:
 * dx[n, ih, iw, ci] = sum over (kh, kw) with ih + padT - kh = oh*sh, iw + padL - kw = ow*sw of
 * dcol[(n, oh, ow), (kh, kw, ci)]. With stride > 1 most (pixel, tap) pairs are invalid, so this
 * replaces the implicit GEMM that would multiply zeros. The geometry is baked into the source
 * (division by constants); vec4 over channels when Cin % 4 == 0.
 * @module
 */
import type { Launch } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import type { ConvGeom } from "./conv2d_operands.ts";
import { grid1d, main1d } from "./util.ts";

const WG = 64;
const cache = new Map<string, string>();

function source(g: ConvGeom, vec: boolean, total: number): string {
  const T = vec ? "vec4<f32>" : "f32";
  const C = vec ? g.Cin / 4 : g.Cin;
  const taps: string[] = [];
  for (let kh = 0; kh < g.KH; kh++) {
    for (let kw = 0; kw < g.KW; kw++) {
      const hy = `hy${kh}`, wx = `wx${kw}`;
      // Unconditional (clamped) loads; an if-block per tap measured the same on lavapipe.
      taps.push(
        `  let ok${kh}_${kw} = (${hy} >= 0) & (${wx} >= 0) & (${hy} % ${g.sh} == 0) & ` +
          `(${wx} % ${g.sw} == 0) & (${hy} / ${g.sh} < ${g.OH}) & (${wx} / ${g.sw} < ${g.OW});\n` +
          `  let ix${kh}_${kw} = ((rb + u32(${hy} / ${g.sh})) * ${g.OW}u + u32(${wx} / ${g.sw})) * ` +
          `${g.KH * g.KW * C}u + ${(kh * g.KW + kw) * C}u + c;\n` +
          `  acc += select(${T}(0.0), col[select(0u, ix${kh}_${kw}, ok${kh}_${kw})], ok${kh}_${kw});`,
      );
    }
  }
  const rows = Array.from({ length: g.KH }, (_, kh) => `  let hy${kh} = ih - ${kh};`);
  const cols = Array.from({ length: g.KW }, (_, kw) => `  let wx${kw} = iw - ${kw};`);
  return `// conv2d_col2im: ${JSON.stringify(g)}
@group(0) @binding(0) var<storage, read> col: array<${T}>;
@group(0) @binding(1) var<storage, read_write> dx: array<${T}>;
${main1d(WG)}
  if (i >= ${total}u) { return; }
  let c = i % ${C}u;
  let t = i / ${C}u;
  let iw = i32(t % ${g.W}u) + ${g.padL};
  let t2 = t / ${g.W}u;
  let ih = i32(t2 % ${g.H}u) + ${g.padT};
  let rb = (t2 / ${g.H}u) * ${g.OH}u;
${rows.join("\n")}
${cols.join("\n")}
  var acc = ${T}(0.0);
${taps.join("\n")}
  dx[i] = acc;
}
`;
}

/** dx [N, H, W, Cin] from dcol [N*OH*OW, KH*KW*Cin] (see the module comment). */
export function col2imLaunch(dcol: Tensor, dx: Tensor, g: ConvGeom): Launch {
  const vec = g.Cin % 4 === 0;
  const total = g.N * g.H * g.W * (vec ? g.Cin / 4 : g.Cin);
  const key = `${JSON.stringify(g)}|${vec}`;
  let code = cache.get(key);
  if (!code) {
    code = source(g, vec, total);
    cache.set(key, code);
  }
  return {
    name: "conv2d_col2im",
    code,
    bindings: [dcol.binding, dx.binding],
    workgroups: grid1d(total, WG),
  };
}
