/**
 * GEMM variant for CPU (fallback) adapters: register blocking without workgroup memory or
 * barriers. Each invocation computes a TM x TN block of outputs in vec4 registers, reading vec4s
 * of A and B straight from storage in k-steps of 4 (fully unrolled). On lavapipe (Mesa 22.x) a
 * workgroup runs as 8-lane SIMD batches of one CPU thread and every storage load, uniform or not,
 * is a per-lane scalar loop (~35 cycles per vec4 component per batch), so speed comes from FLOPs
 * per loaded float: big per-thread tiles (up to 32 x 32 accumulators, spilled to the stack), no
 * store guards on whole tiles and no early return on exact grids (both put code under masks). The workgroup is one-dimensional: llvmpipe maps SIMD lanes to consecutive
 * local x only (y and z are looped), so a (wgn, wgm) workgroup with wgn = 1 would run one lane of 8.
 * @module
 */
import type { Launch } from "../engine.ts";
import { TUNING, windowUsed } from "./tuning.ts";
import {
  bindingDecls,
  type EpilogueCtx,
  type EpilogueElem,
  fusionPre,
  type GemmSpec,
  launchOf,
  type OperandCtx,
  prologue,
  type RbWindow,
  type RegblockConfig,
  specLayout,
  XYZW,
} from "./matmul_gemm.ts";
import { cached } from "./util.ts";

const cache = new Map<string, string>();

/** The launch of a GEMM spec with the register-blocked variant. */
export function regblockLaunch(s: GemmSpec): Launch {
  const c = s.config as RegblockConfig;
  const { grid, struct, data, exactGrid, kGuard, vecOut } = specLayout(s);
  // Whole tiles need no store guards (per-lane branches are costly on lavapipe).
  const guardM = s.M % (c.wgm * c.tm) !== 0;
  const guardN = s.N % (c.wgn * c.tn) !== 0;
  const win = windowOf(s, c, kGuard);
  const key = [
    c.wgm,
    c.wgn,
    c.tm,
    c.tn,
    s.a.key,
    s.b.key,
    !!s.bias,
    !!s.relu,
    vecOut,
    kGuard,
    guardM,
    guardN,
    exactGrid,
    c.ks ?? 1,
    TUNING.rbUseFma,
    !!win,
    s.kLimit ?? "",
    struct,
  ].join("|");
  const build = () => source(s, c, struct, vecOut, kGuard, guardM, guardN, exactGrid, win);
  // Fused stages are generated every time (their code depends on more than a key would say);
  // the engine caches pipelines by source.
  const code = s.fusion ? build() : cached(cache, key, build);
  return launchOf(s, code, data, grid);
}

function source(
  s: GemmSpec,
  c: RegblockConfig,
  struct: string,
  vecOut: boolean,
  kGuard: boolean,
  guardM: boolean,
  guardN: boolean,
  exactGrid: boolean,
  win: RbWindow | null,
): string {
  const { tm, tn, wgm, wgn } = c;
  const lanesK = c.ks ?? 1;
  const tn4 = tn / 4;
  const ctx: OperandCtx = { tm, tn, kGuard };
  const outElem = vecOut ? "vec4<f32>" : "f32";
  const acc: string[] = [];
  for (let i = 0; i < tm; i++) {
    for (let j = 0; j < tn4; j++) acc.push(`  var c${i}_${j} = vec4<f32>(0.0);`);
  }
  const kc = kGuard
    ? `    let kv1 = k0 + 1u < kEnd; let kv2 = k0 + 2u < kEnd; let kv3 = k0 + 3u < kEnd;
    let kc0 = k0; let kc1 = select(k0, k0 + 1u, kv1); let kc2 = select(k0, k0 + 2u, kv2);
    let kc3 = select(k0, k0 + 3u, kv3);`
    : `    let kc0 = k0; let kc1 = k0 + 1u; let kc2 = k0 + 2u; let kc3 = k0 + 3u;`;
  // One loop-carried update per accumulator per k-step: lavapipe masks every store to a
  // loop-carried variable, so four products are summed before the update.
  const fmas: string[] = [];
  for (let i = 0; i < tm; i++) {
    for (let j = 0; j < tn4; j++) {
      const t = [0, 1, 2, 3].map((kk) => [s.a.rbValue(i, kk), s.b.rbValue(kk, j)]);
      fmas.push(
        TUNING.rbUseFma
          ? `    c${i}_${j} = ${
            t.reduce((acc, [a, b]) => `fma(vec4<f32>(${a}), ${b}, ${acc})`, `c${i}_${j}`)
          };`
          : `    c${i}_${j} += ${t.map(([a, b]) => `${a} * ${b}`).join(" + ")};`,
      );
    }
  }
  const loop = win ? windowLoop(s, c, win, ctx) : `  for (var k0 = kBegin; k0 < kEnd; k0 += 4u) {
${kc}
${s.a.rbStep(ctx)}
${s.b.rbStep(ctx)}
${fmas.join("\n")}
  }`;
  const { lines: stores, moduleDecl } = s.fusion?.epilogue
    ? fusedStores(s, c, guardM, guardN)
    : { lines: plainStores(s, c, vecOut, guardM, guardN), moduleDecl: "" };
  return `// ${s.name}: register-blocked GEMM ${wgm}x${wgn} threads, ${tm}x${tn} per thread
${struct}
${bindingDecls(s, outElem, outElem, lanesK * wgn * wgm)}
${moduleDecl}
@compute @workgroup_size(${lanesK * wgn * wgm})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
${fusionPre(s, lanesK * wgn * wgm)}
${prologue(wgm * tm, wgn * tn, exactGrid, lanesK > 1, s.kLimit)}
  let m0 = mT${lanesK > 1 ? "" : ` + (lid.x / ${wgn}u) * ${tm}u`};
  let n0 = nT${lanesK > 1 ? "" : ` + (lid.x % ${wgn}u) * ${tn}u`};
${win ? win.setup(ctx) : s.a.rbSetup(ctx)}
${s.b.rbSetup(ctx)}
${acc.join("\n")}
${loop}
${stores.join("\n")}
}
`;
}

/**
 * The sliding window of A used for a spec, or null: A has one and `windowUsed` (tuning.ts) says
 * so, the loop covering all of K in whole steps (no split-K, no k guard).
 */
function windowOf(s: GemmSpec, c: RegblockConfig, kGuard: boolean): RbWindow | null {
  const w = s.a.rbWindow;
  const whole = (s.splits ?? 1) === 1 && (c.ks ?? 1) === 1 && !kGuard && !s.kLimit;
  return w && windowUsed(w.rowSpan, c.tm, s.M, s.M * s.N * s.K * s.batch, whole) ? w : null;
}

/** The K loop over window iterations: the window's loads, then a loop over the taps (B step, FMAs). */
function windowLoop(s: GemmSpec, c: RegblockConfig, w: RbWindow, ctx: OperandCtx): string {
  const rows: string[] = [];
  const fmas: string[] = [];
  for (let i = 0; i < c.tm; i++) {
    let v = w.slot(ctx, i, 0);
    for (let t = 1; t < w.taps; t++) v = `select(${v}, ${w.slot(ctx, i, t)}, t == ${t}u)`;
    rows.push(`      let aw${i} = ${v};`);
    for (let j = 0; j < c.tn / 4; j++) {
      const terms = [0, 1, 2, 3].map((kk) => `aw${i}.${XYZW[kk]} * ${s.b.rbValue(kk, j)}`);
      fmas.push(`      c${i}_${j} += ${terms.join(" + ")};`);
    }
  }
  return `  for (var q = 0u; q < ${w.iterations}; q++) {
${w.step(ctx)}
    for (var t = 0u; t < ${w.taps}u; t++) {
      let k0 = ${w.k0("t")};
      let kc0 = k0; let kc1 = k0 + 1u; let kc2 = k0 + 2u; let kc3 = k0 + 3u;
${s.b.rbStep(ctx)}
${rows.join("\n")}
${fmas.join("\n")}
    }
  }`;
}

/** WGSL: the output row of thread row `i` (see `GemmOperand.rbRow`). */
function rowOf(s: GemmSpec, c: RegblockConfig, i: number): string {
  return s.a.rbRow ? s.a.rbRow({ tm: c.tm, tn: c.tn, kGuard: false }, i) : `m0 + ${i}u`;
}

/** The plain epilogue: optional bias and ReLU, stores guarded where tiles are partial. */
function plainStores(
  s: GemmSpec,
  c: RegblockConfig,
  vecOut: boolean,
  guardM: boolean,
  guardN: boolean,
): string[] {
  const { tm, tn } = c;
  const stores: string[] = [];
  for (let i = 0; i < tm; i++) {
    stores.push(guardM ? `  if (m0 + ${i}u < p.M) {` : "  {");
    stores.push(`    let ro = outBase + (${rowOf(s, c, i)}) * p.N;`);
    for (let j = 0; j < tn / 4; j++) {
      const n = `n0 + ${4 * j}u`;
      const v = `c${i}_${j}`;
      if (vecOut) {
        let e = v;
        if (s.bias) e = `${e} + bias[(${n}) >> 2u]`;
        if (s.relu) e = `max(${e}, vec4<f32>(0.0))`;
        const st = `O[(ro + ${n}) >> 2u] = ${e};`;
        stores.push(guardN ? `    if (${n} < p.N) { ${st} }` : `    ${st}`);
      } else {
        for (let q = 0; q < 4; q++) {
          const nq = `n0 + ${4 * j + q}u`;
          let e = `${v}.${"xyzw"[q]}`;
          if (s.bias) e = `${e} + bias[${nq}]`;
          if (s.relu) e = `max(${e}, 0.0)`;
          const st = `O[ro + ${nq}] = ${e};`;
          stores.push(guardN ? `    if (${nq} < p.N) { ${st} }` : `    ${st}`);
        }
      }
    }
    stores.push(`  }`);
  }
  return stores;
}

/** A fused epilogue (see {@link GemmFusion}): vec4 stores of the transformed values, then its finish. */
function fusedStores(
  s: GemmSpec,
  c: RegblockConfig,
  guardM: boolean,
  guardN: boolean,
): { lines: string[]; moduleDecl: string } {
  const epi = s.fusion!.epilogue!;
  const { tm, tn, wgm, wgn } = c;
  if (s.N % 4 !== 0 || (s.splits ?? 1) > 1 || s.bias || s.relu || (c.ks ?? 1) > 1) {
    throw new Error(`collapse: ${s.name}: a fused epilogue needs N % 4 == 0 and no split-K`);
  }
  const tn4 = tn / 4;
  const cols = Array.from({ length: tn4 }, (_, j) => `(n0 + ${4 * j}u)`);
  const lines = [epi.setup(cols)];
  const elems: EpilogueElem[] = [];
  for (let i = 0; i < tm; i++) {
    for (let j = 0; j < tn4; j++) {
      const e: EpilogueElem = {
        v: `e${i}_${j}`,
        m: `(${rowOf(s, c, i)})`,
        ok: guardM ? `(m0 + ${i}u < p.M)` : "true",
        j,
      };
      elems.push(e);
      lines.push(`  var ${e.v} = c${i}_${j};`, epi.value(e));
      const st = `O[(outBase + ${e.m} * p.N + ${cols[j]}) >> 2u] = ${e.v};`;
      const guards = [guardM ? e.ok : "", guardN ? `${cols[j]} < p.N` : ""].filter((g) => g);
      lines.push(guards.length ? `  if (${guards.join(" && ")}) { ${st} }` : `  ${st}`);
    }
  }
  const ctx: EpilogueCtx = {
    threads: wgm * wgn,
    wgm,
    wgn,
    tn4,
    tileM: wgm * tm,
    col: (tx, j) => `(nT + (${tx}) * ${tn}u + 4u * (${j}))`,
  };
  lines.push(epi.finish(ctx, elems));
  return { lines, moduleDecl: epi.moduleDecl(ctx) };
}
