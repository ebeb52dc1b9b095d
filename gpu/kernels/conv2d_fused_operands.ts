/**
 * GEMM operands of the conv backward passes beyond conv2d_operands.ts's (register-blocked
 * accessors, vec4 loads):
 * - {@link convWeightTB}: the weights of backward-data read straight from w [KH, KW, Cin, Cout]
 *   as B[k = (kh, kw, co), n = ci] (no transposed copy), 4 consecutive k = 4 output channels.
 * - {@link paddedCinB}: the weights of a forward conv whose input channels were zero-padded to 4
 *   (an RGB stem, kernels/pad_channels.ts): w [KH, KW, Cin, Cout] read as [KH*KW*4, Cout] with zero
 *   rows for the padded channels.
 * - {@link bnGradB}: a [K, N] matrix computed while loading, a[n] * B + b[n] * B2 + d[n] with
 *   per-column coefficients in workgroup arrays (a fused BatchNorm backward, bn_coef.ts): the
 *   gradient of a conv's output when a BatchNorm follows it.
 * @module
 */
import type { GemmOperand } from "./matmul_gemm.ts";

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** b<kk>_<j> = column group j's 4 values at k0 + kk, from per-column vec4s `bt<n>` over 4 k. */
function gatherColumns(tn: number): string[] {
  return range(4).flatMap((kk) =>
    range(tn / 4).map((j) =>
      `    let b${kk}_${j} = vec4<f32>(${
        range(4).map((q) => `bt${4 * j + q}.${"xyzw"[kk]}`).join(", ")
      });`
    )
  );
}

/** w [KH, KW, Cin, Cout] as B [KH*KW*Cout, Cin] of backward-data (Cout % 4 == 0). */
export function convWeightTB(cin: number, cout: number): GemmOperand {
  if (cout % 4 !== 0) throw new Error(`collapse: convWeightTB needs Cout % 4 == 0, got ${cout}`);
  const tapSize = cin * cout;
  return {
    key: `convWeightTB:${cin}:${cout}`,
    fields: [],
    rbElem: "vec4<f32>",
    scalarFn: `fn b_at(bi: vec4<u32>, k: u32, n: u32) -> f32 {
  return B[((k / ${cout}u) * ${tapSize}u + n * ${cout}u + k % ${cout}u) >> 2u][k % 4u];
}`,
    rbSetup: (c) =>
      range(c.tn).map((n) => `  let wr${n} = min(n0 + ${n}u, p.N - 1u) * ${cout}u;`).join("\n"),
    rbStep: (c) =>
      [`    let wb = (k0 / ${cout}u) * ${tapSize}u + k0 % ${cout}u;`].concat(
        range(c.tn).map((n) => `    let bt${n} = B[(wb + wr${n}) >> 2u];`),
        gatherColumns(c.tn),
      ).join("\n"),
    rbValue: (kk, j) => `b${kk}_${j}`,
  };
}

/**
 * [K, N] B computed as a[n] * B[k, n] + b[n] * B2[k, n] + d[n] (N % 4 == 0), with `a`, `b`, `d`
 * the names of workgroup vec4 arrays over N / 4 and `src2` the second array's name. With `store`
 * (an array name), the workgroups of the first row tile also write the values they compute there
 * (each element once: the matrix materialised for a later GEMM at no extra pass).
 */
export function bnGradB(
  coef: { a: string; b: string; d: string },
  src2: string,
  store?: string,
): GemmOperand {
  const extra: NonNullable<GemmOperand["extra"]> = [{ name: src2, elem: "vec4<f32>" }];
  if (store) extra.push({ name: store, elem: "vec4<f32>", write: true });
  return {
    key: `bnGradB:${coef.a}:${store ?? ""}`,
    fields: [],
    rbElem: "vec4<f32>",
    extra,
    loadCost: store ? 2.3 : 2,
    scalarFn: `fn b_at(bi: vec4<u32>, k: u32, n: u32) -> f32 {
  let i = (k * p.N + n) >> 2u;
  let q = n >> 2u;
  return (B[i] * ${coef.a}[q] + ${src2}[i] * ${coef.b}[q] + ${coef.d}[q])[n % 4u];
}`,
    rbSetup: (c) =>
      [`  let bn4 = p.N >> 2u;`].concat(
        range(c.tn / 4).map((j) =>
          `  let bc${j} = min(n0 + ${4 * j}u, p.N - 4u) >> 2u;` +
          ` let ga${j} = ${coef.a}[bc${j}]; let gb${j} = ${coef.b}[bc${j}]; let gd${j} = ${coef.d}[bc${j}];`
        ),
      ).join("\n"),
    rbStep: (c) =>
      range(4).flatMap((kk) =>
        range(c.tn / 4).map((j) =>
          `    let bi${kk}_${j} = bc${j} + kc${kk} * bn4;` +
          ` let b${kk}_${j} = B[bi${kk}_${j}] * ga${j} + ${src2}[bi${kk}_${j}] * gb${j} + gd${j};`
        )
      ).concat(
        store
          ? [
            `    if (tmi == 0u) {`,
            ...range(4).flatMap((kk) =>
              range(c.tn / 4).map((j) => `      ${store}[bi${kk}_${j}] = b${kk}_${j};`)
            ),
            `    }`,
          ]
          : [],
      ).join("\n"),
    rbValue: (kk, j) => `b${kk}_${j}`,
  };
}

/** w [KH, KW, Cin, Cout] (Cin < 4, Cout % 4 == 0) as the B [KH*KW*4, Cout] of a 4-channel input. */
export function paddedCinB(cin: number, cout: number): GemmOperand {
  if (cin > 4 || cout % 4 !== 0) {
    throw new Error("collapse: paddedCinB needs Cin <= 4, Cout % 4 == 0");
  }
  const c4 = cout / 4;
  return {
    key: `paddedCinB:${cin}:${cout}`,
    fields: [],
    rbElem: "vec4<f32>",
    scalarFn: `fn b_at(bi: vec4<u32>, k: u32, n: u32) -> f32 {
  let ci = k % 4u;
  return select(0.0, B[((k / 4u) * ${cin}u + min(ci, ${
      cin - 1
    }u)) * ${c4}u + n / 4u][n % 4u], ci < ${cin}u);
}`,
    rbSetup: (c) =>
      range(c.tn / 4).map((j) => `  let pc${j} = min(n0 + ${4 * j}u, p.N - 4u) >> 2u;`).join("\n"),
    rbStep: (c) =>
      [`    let prow = (k0 >> 2u) * ${cin}u;`].concat(
        range(4).flatMap((kk) =>
          range(c.tn / 4).map((j) =>
            kk < cin
              ? `    let b${kk}_${j} = B[(prow + ${kk}u) * ${c4}u + pc${j}];`
              : `    let b${kk}_${j} = vec4<f32>(0.0);`
          )
        ),
      ).join("\n"),
    rbValue: (kk, j) => `b${kk}_${j}`,
  };
}
