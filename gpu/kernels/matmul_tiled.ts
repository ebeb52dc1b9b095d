/**
 * GEMM variant for GPUs: classic workgroup-memory tiling. 16 x 16 invocations share a 64 x 64
 * output tile; each k-slice of BK columns of A and rows of B is staged in workgroup memory by all
 * invocations (through the operands' scalar accessors, so implicit-im2col operands work
 * unchanged), then each invocation accumulates a 4 x 4 register block.
 * @module
 */
import type { Launch } from "../engine.ts";
import {
  coreFields,
  type GemmSpec,
  launchOf,
  prologue,
  type TiledConfig,
  uniformBlock,
} from "./matmul_gemm.ts";

const cache = new Map<string, string>();

/** The launch of a GEMM spec with the shared-memory tiled variant. */
export function tiledLaunch(s: GemmSpec): Launch {
  const c = s.config as TiledConfig;
  const { fields, grid } = coreFields(s);
  const { struct, data } = uniformBlock([...fields, ...s.a.fields, ...s.b.fields]);
  const key = [c.bk, s.a.key, s.b.key, !!s.bias, !!s.relu, struct].join("|");
  let code = cache.get(key);
  if (!code) {
    code = source(s, c, struct);
    cache.set(key, code);
  }
  return launchOf(s, code, data, grid);
}

function source(s: GemmSpec, c: TiledConfig, struct: string): string {
  const bk = c.bk;
  const per = (64 * bk) / 256;
  let bind = 0;
  const decl = [
    `@group(0) @binding(${bind++}) var<storage, read> A: array<f32>;`,
    `@group(0) @binding(${bind++}) var<storage, read> B: array<f32>;`,
  ];
  if (s.bias) decl.push(`@group(0) @binding(${bind++}) var<storage, read> bias: array<f32>;`);
  decl.push(`@group(0) @binding(${bind++}) var<storage, read_write> O: array<f32>;`);
  decl.push(`@group(0) @binding(${bind++}) var<uniform> p: P;`);
  let epi = "acc[i][j]";
  if (s.bias) epi = `${epi} + bias[n]`;
  if (s.relu) epi = `max(${epi}, 0.0)`;
  return `// ${s.name}: shared-memory tiled GEMM 64x64, BK ${bk}
${struct}
${decl.join("\n")}
${s.a.scalarFn}
${s.b.scalarFn}
var<workgroup> As: array<f32, ${64 * bk}>;
var<workgroup> Bs: array<f32, ${64 * bk}>;
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
${prologue(64, 64)}
  let bi = vec4<u32>(bi0, bi1, bi2, bi3);
  let tid = lid.y * 16u + lid.x;
  var acc: array<array<f32, 4>, 4>;
  for (var k0 = kBegin; k0 < kEnd; k0 += ${bk}u) {
    for (var r = 0u; r < ${per}u; r++) {
      let e = tid + r * 256u;
      let lm = e / ${bk}u;
      let lk = e % ${bk}u;
      let m = mT + lm;
      let k = k0 + lk;
      var v = 0.0;
      if (m < p.M && k < kEnd) { v = a_at(bi, m, k); }
      As[lk * 64u + lm] = v;
      let lk2 = e / 64u;
      let ln = e % 64u;
      let n = nT + ln;
      let k2 = k0 + lk2;
      var w = 0.0;
      if (n < p.N && k2 < kEnd) { w = b_at(bi, k2, n); }
      Bs[lk2 * 64u + ln] = w;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${bk}u; kk++) {
      var a: array<f32, 4>;
      var b: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) {
        a[i] = As[kk * 64u + lid.y + 16u * i];
        b[i] = Bs[kk * 64u + lid.x + 16u * i];
      }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { acc[i][j] = fma(a[i], b[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let m = mT + lid.y + 16u * i;
    for (var j = 0u; j < 4u; j++) {
      let n = nT + lid.x + 16u * j;
      if (m < p.M && n < p.N) { O[outBase + m * p.N + n] = ${epi}; }
    }
  }
}
`;
}
