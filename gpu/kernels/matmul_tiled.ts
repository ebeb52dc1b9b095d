/**
 * GEMM variant for GPUs: workgroup-memory tiling with register blocks. WGM x WGN invocations (a
 * 1-D workgroup) share a (WGM * TM) x (WGN * TN) output tile; each BK-deep k slice of A and B is
 * staged in workgroup memory as vec4s, loaded cooperatively through the operands' register-blocked
 * accessors (rbSetup/rbStep/rbValue: 4 rows x 4 k of A and 4 k x 4 columns of B per load unit, so
 * dense, transposed and implicit-im2col operands all work, with vec4 global loads where the operand
 * allows), then every invocation accumulates its TM x TN block (rows and columns interleaved by 4
 * across invocations: conflict-free vec4 reads) in vec4 registers with fma, fully unrolled.
 * Epilogue: bias, NaN-propagating ReLU, vec4 stores when N % 4 == 0; split-K writes partials.
 * A config without tile fields runs the baseline kernel (16 x 16 threads, 4 x 4 each, scalar
 * staging through the operands' scalar accessors), kept for benchmarks.
 * @module
 */
import type { Launch } from "../engine.ts";
import {
  bindingDecls,
  type EpilogueCtx,
  type EpilogueElem,
  fusionPre,
  type GemmSpec,
  launchOf,
  type OperandCtx,
  prologue,
  specLayout,
  type TiledConfig,
} from "./matmul_gemm.ts";
import { cached } from "./util.ts";

const cache = new Map<string, string>();

/** The launch of a GEMM spec with the shared-memory tiled variant. */
export function tiledLaunch(s: GemmSpec): Launch {
  const c = s.config as TiledConfig;
  const { grid, struct, data, exactGrid, kGuard, vecOut } = specLayout(s);
  const key = [
    c.bk,
    c.wgm,
    c.wgn,
    c.tm,
    c.tn,
    s.a.key,
    s.b.key,
    !!s.bias,
    !!s.relu,
    exactGrid,
    kGuard,
    vecOut,
    s.kLimit ?? "",
    struct,
  ].join("|");
  if (!c.tm && (s.fusion || s.a.extra || s.b.extra || s.kLimit)) {
    throw new Error(
      `collapse: ${s.name}: the baseline tiled kernel (no tile fields) has no fused stages`,
    );
  }
  const build = () =>
    c.tm ? source(s, c, struct, exactGrid, kGuard, vecOut) : legacySource(s, c, struct);
  // Fused stages are generated every time (see matmul_regblock.ts).
  const code = s.fusion ? build() : cached(cache, key, build);
  return launchOf(s, code, data, grid);
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Rows (or columns) per load unit: 4, doubled until the units fit the workgroup. */
function unitSpan(extent: number, bk: number, threads: number): number {
  let span = 4;
  while ((extent / span) * (bk / 4) > threads && span < extent) span *= 2;
  return span;
}

const NAN4 = `fn relu4(v: vec4<f32>) -> vec4<f32> {
  let nan = (bitcast<vec4<u32>>(v) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);
  return select(max(v, vec4<f32>(0.0)), v, nan);
}`;

function source(
  s: GemmSpec,
  c: TiledConfig,
  struct: string,
  exactGrid: boolean,
  kGuard: boolean,
  vecOut: boolean,
): string {
  const wgm = c.wgm!, wgn = c.wgn!, tm = c.tm!, tn = c.tn!, bk = c.bk;
  const T = wgm * wgn, BM = wgm * tm, BN = wgn * tn;
  if (tm % 4 || tn % 4 || bk % 4) throw new Error(`collapse: ${s.name}: bad tiled config`);
  const KQ = bk / 4;
  const LA = unitSpan(BM, bk, T), LB = unitSpan(BN, bk, T);
  const unitsA = (BM / LA) * KQ, unitsB = (BN / LB) * KQ;
  const NB = BN / LB;
  const ctxA: OperandCtx = { tm: LA, tn: 4, kGuard };
  const ctxB: OperandCtx = { tm: 4, tn: LB, kGuard };
  const outElem = vecOut ? "vec4<f32>" : "f32";
  const kc = kGuard
    ? `      let kv1 = k0 + 1u < kEnd; let kv2 = k0 + 2u < kEnd; let kv3 = k0 + 3u < kEnd;
      let kc0 = k0; let kc1 = select(k0, k0 + 1u, kv1); let kc2 = select(k0, k0 + 2u, kv2);
      let kc3 = select(k0, k0 + 3u, kv3);`
    : `      let kc0 = k0; let kc1 = k0 + 1u; let kc2 = k0 + 2u; let kc3 = k0 + 3u;`;
  // Load A: unit = LA rows x 4 k; kq fastest across invocations.
  const loadA = [
    `    ${unitsA < T ? `if (tid < ${unitsA}u) ` : ""}{`,
    `      let k0 = kt + (tid % ${KQ}u) * 4u;`,
    ...range(LA).map((i) => `      var la${i} = vec4<f32>(0.0);`),
    `      if (k0 < kEnd) {`,
    kc,
    s.a.rbStep(ctxA),
    ...range(LA).map((i) =>
      `        la${i} = vec4<f32>(${range(4).map((kk) => s.a.rbValue(i, kk)).join(", ")});`
    ),
    `      }`,
    `      let sa = (tid % ${KQ}u) * ${BM}u + (tid / ${KQ}u) * ${LA / 4}u;`,
    ...range(4).flatMap((kk) =>
      range(LA / 4).map((g) =>
        `      sA[sa + ${(kk * BM) / 4 + g}u] = vec4<f32>(${
          range(4).map((r) => `la${4 * g + r}.${"xyzw"[kk]}`).join(", ")
        });`
      )
    ),
    `    }`,
  ];
  // Load B: unit = 4 k x LB columns; column groups fastest across invocations.
  const bv = (kk: number, j: number) =>
    kGuard && kk > 0
      ? `select(vec4<f32>(0.0), ${s.b.rbValue(kk, j)}, kv${kk})`
      : s.b.rbValue(kk, j);
  const loadB = [
    `    ${unitsB < T ? `if (tid < ${unitsB}u) ` : ""}{`,
    `      let k0 = kt + (tid / ${NB}u) * 4u;`,
    ...range(4).flatMap((kk) =>
      range(LB / 4).map((j) => `      var lb${kk}_${j} = vec4<f32>(0.0);`)
    ),
    `      if (k0 < kEnd) {`,
    kc,
    s.b.rbStep(ctxB),
    ...range(4).flatMap((kk) => range(LB / 4).map((j) => `        lb${kk}_${j} = ${bv(kk, j)};`)),
    `      }`,
    `      let sb = (tid / ${NB}u) * ${BN}u + (tid % ${NB}u) * ${LB / 4}u;`,
    ...range(4).flatMap((kk) =>
      range(LB / 4).map((j) => `      sB[sb + ${(kk * BN) / 4 + j}u] = lb${kk}_${j};`)
    ),
    `    }`,
  ];
  const acc = range(tm).flatMap((i) =>
    range(tn / 4).map((j) => `  var acc${i}_${j} = vec4<f32>(0.0);`)
  );
  const inner: string[] = [];
  for (let kk = 0; kk < bk; kk++) {
    inner.push(`    {`);
    for (let g = 0; g < tm / 4; g++) {
      inner.push(`      let xa${g} = sA[${(kk * BM) / 4}u + ty + ${wgm * g}u];`);
    }
    for (let j = 0; j < tn / 4; j++) {
      inner.push(`      let xb${j} = sB[${(kk * BN) / 4}u + tx + ${wgn * j}u];`);
    }
    for (let i = 0; i < tm; i++) {
      for (let j = 0; j < tn / 4; j++) {
        inner.push(
          `      acc${i}_${j} = fma(vec4<f32>(xa${i >> 2}.${
            "xyzw"[i & 3]
          }), xb${j}, acc${i}_${j});`,
        );
      }
    }
    inner.push(`    }`);
  }
  const { lines: stores, moduleDecl } = s.fusion?.epilogue
    ? fusedStores(s, wgm, wgn, tm, tn)
    : { lines: plainStores(s, wgm, wgn, tm, tn, vecOut), moduleDecl: "" };
  return `// ${s.name}: tiled GEMM ${BM}x${BN} (${wgm}x${wgn} threads, ${tm}x${tn} each), BK ${bk}
${struct}
${bindingDecls(s, "f32", outElem, T)}
${moduleDecl}
${s.relu ? NAN4 : ""}
var<workgroup> sA: array<vec4<f32>, ${(bk * BM) / 4}>;
var<workgroup> sB: array<vec4<f32>, ${(bk * BN) / 4}>;
@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
${fusionPre(s, T)}
${prologue(BM, BN, exactGrid, false, s.kLimit)}
  let tid = lid.x;
  let tx = tid % ${wgn}u;
  let ty = tid / ${wgn}u;
  let m0 = mT + (tid / ${KQ}u) * ${LA}u;
  let n0 = nT + (tid % ${NB}u) * ${LB}u;
${s.a.rbSetup(ctxA)}
${s.b.rbSetup(ctxB)}
${acc.join("\n")}
  for (var kt = kBegin; kt < kEnd; kt += ${bk}u) {
${loadA.join("\n")}
${loadB.join("\n")}
    workgroupBarrier();
${inner.join("\n")}
    workgroupBarrier();
  }
${stores.join("\n")}
}
`;
}

/** The baseline kernel of a config without tile fields (see the module doc). */
function legacySource(s: GemmSpec, c: TiledConfig, struct: string): string {
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

/** The plain epilogue: optional bias and NaN-propagating ReLU, guarded stores. */
function plainStores(
  s: GemmSpec,
  wgm: number,
  wgn: number,
  tm: number,
  tn: number,
  vecOut: boolean,
): string[] {
  const stores: string[] = [];
  for (let i = 0; i < tm; i++) {
    stores.push(`  {`, `    let m = mT + (ty + ${wgm * (i >> 2)}u) * 4u + ${i & 3}u;`);
    stores.push(`    if (m < p.M) {`, `      let ro = outBase + m * p.N;`);
    for (let j = 0; j < tn / 4; j++) {
      const n = `n${j}`;
      stores.push(`      let ${n} = nT + (tx + ${wgn * j}u) * 4u;`);
      if (vecOut) {
        let e = `acc${i}_${j}`;
        if (s.bias) {
          e = `${e} + vec4<f32>(bias[${n}], bias[${n} + 1u], bias[${n} + 2u], bias[${n} + 3u])`;
        }
        if (s.relu) e = `relu4(${e})`;
        stores.push(`      if (${n} < p.N) { O[(ro + ${n}) >> 2u] = ${e}; }`);
      } else {
        let e = `acc${i}_${j}`;
        if (s.relu || s.bias) {
          stores.push(`      var v${j} = ${e};`);
          e = `v${j}`;
        }
        for (let q = 0; q < 4; q++) {
          const nq = `${n} + ${q}u`;
          let ev = `${e}.${"xyzw"[q]}`;
          if (s.bias) ev = `${ev} + bias[min(${nq}, p.N - 1u)]`;
          stores.push(
            `      if (${nq} < p.N) { O[ro + ${nq}] = ${
              s.relu ? `relu4(vec4<f32>(${ev})).x` : ev
            }; }`,
          );
        }
      }
    }
    stores.push(`    }`, `  }`);
  }
  return stores;
}

/** A fused epilogue (see {@link GemmFusion}): guarded vec4 stores of the transformed values, then its finish. */
function fusedStores(
  s: GemmSpec,
  wgm: number,
  wgn: number,
  tm: number,
  tn: number,
): { lines: string[]; moduleDecl: string } {
  const epi = s.fusion!.epilogue!;
  if (s.N % 4 !== 0 || (s.splits ?? 1) > 1 || s.bias || s.relu) {
    throw new Error(`collapse: ${s.name}: a fused epilogue needs N % 4 == 0 and no split-K`);
  }
  const tn4 = tn / 4;
  const cols = range(tn4).map((j) => `(nT + (tx + ${wgn * j}u) * 4u)`);
  const lines = [epi.setup(cols)];
  const elems: EpilogueElem[] = [];
  for (let i = 0; i < tm; i++) {
    const m = `(mT + (ty + ${wgm * (i >> 2)}u) * 4u + ${i & 3}u)`;
    for (let j = 0; j < tn4; j++) {
      const e: EpilogueElem = { v: `e${i}_${j}`, m, ok: `(${m} < p.M)`, j };
      elems.push(e);
      lines.push(`  var ${e.v} = acc${i}_${j};`, epi.value(e));
      lines.push(
        `  if (${e.ok} && ${cols[j]} < p.N) { O[(outBase + ${m} * p.N + ${
          cols[j]
        }) >> 2u] = ${e.v}; }`,
      );
    }
  }
  const ctx: EpilogueCtx = {
    threads: wgm * wgn,
    wgm,
    wgn,
    tn4,
    tileM: wgm * tm,
    col: (tx, j) => `(nT + ((${tx}) + ${wgn}u * (${j})) * 4u)`,
  };
  lines.push(epi.finish(ctx, elems));
  return { lines, moduleDecl: epi.moduleDecl(ctx) };
}
