/**
 * Dense GEMM operands: a plain row-major matrix per batch, optionally transposed, with batch
 * offsets from up to four broadcast batch strides. vec4 loads along the contiguous dimension when
 * it is a multiple of 4, scalar loads otherwise.
 * @module
 */
import { type GemmOperand, type NamedField, type OperandCtx, XYZW } from "./matmul_gemm.ts";

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function baseExpr(r: string): string {
  return `let ${r}Base = bi0 * p.${r}s0 + bi1 * p.${r}s1 + bi2 * p.${r}s2 + bi3 * p.${r}s3;`;
}

function strideFields(r: string, strides: number[]): NamedField[] {
  return [0, 1, 2, 3].map((i) => [`${r}s${i}`, "u32", strides[i] ?? 0] as NamedField);
}

/**
 * Left operand A (M x K): stored [M, K] per batch, or [K, M] when `transposed`.
 * `vec`: the contiguous dimension (K, or M when transposed) is a multiple of 4.
 */
export function denseA(transposed: boolean, vec: boolean, strides: number[]): GemmOperand {
  const fields = strideFields("a", strides);
  const scalarFn = `fn a_at(bi: vec4<u32>, m: u32, k: u32) -> f32 {
  let base = dot(bi, vec4<u32>(p.as0, p.as1, p.as2, p.as3));
  return A[base + ${transposed ? "k * p.M + m" : "m * p.K + k"}];
}`;
  const guard = (c: OperandCtx, kk: number, e: string, zero: string) =>
    c.kGuard && kk > 0 ? `select(${zero}, ${e}, kv${kk})` : e;
  if (!transposed) {
    return {
      key: `denseA:${vec}`,
      fields,
      rbElem: vec ? "vec4<f32>" : "f32",
      scalarFn,
      rbSetup: (c) =>
        [baseExpr("a")].concat(
          range(c.tm).map((i) =>
            vec
              ? `  let ar${i} = (aBase + min(m0 + ${i}u, p.M - 1u) * p.K) >> 2u;`
              : `  let ar${i} = aBase + min(m0 + ${i}u, p.M - 1u) * p.K;`
          ),
        ).join("\n"),
      rbStep: (c) =>
        range(c.tm).map((i) =>
          vec
            ? `    let a${i} = A[ar${i} + (k0 >> 2u)];`
            : `    let a${i} = vec4<f32>(${
              range(4).map((kk) => guard(c, kk, `A[ar${i} + kc${kk}]`, "0.0")).join(", ")
            });`
        ).join("\n"),
      rbValue: (i, kk) => `a${i}.${XYZW[kk]}`,
    };
  }
  return {
    key: `denseAT:${vec}`,
    fields,
    rbElem: vec ? "vec4<f32>" : "f32",
    scalarFn,
    rbSetup: (c) =>
      [baseExpr("a")].concat(
        vec
          ? range(c.tm / 4).map((q) => `  let ac${q} = aBase + min(m0 + ${4 * q}u, p.M - 4u);`)
          : range(c.tm).map((i) => `  let ac${i} = aBase + min(m0 + ${i}u, p.M - 1u);`),
      ).join("\n"),
    rbStep: (c) =>
      vec
        ? range(4).flatMap((kk) =>
          range(c.tm / 4).map((q) =>
            `    let a${kk}_${q} = ${
              guard(c, kk, `A[(ac${q} + kc${kk} * p.M) >> 2u]`, "vec4<f32>(0.0)")
            };`
          )
        ).join("\n")
        : range(c.tm).map((i) =>
          `    let a${i} = vec4<f32>(${
            range(4).map((kk) => guard(c, kk, `A[ac${i} + kc${kk} * p.M]`, "0.0")).join(", ")
          });`
        ).join("\n"),
    rbValue: (i, kk) => vec ? `a${kk}_${i >> 2}.${XYZW[i & 3]}` : `a${i}.${XYZW[kk]}`,
  };
}

/**
 * Right operand B (K x N): stored [K, N] per batch, or [N, K] when `transposed`.
 * `vec`: the contiguous dimension (N, or K when transposed) is a multiple of 4.
 * B values need no k guard: A is zeroed past kEnd and B's index is clamped.
 */
export function denseB(transposed: boolean, vec: boolean, strides: number[]): GemmOperand {
  const fields = strideFields("b", strides);
  const scalarFn = `fn b_at(bi: vec4<u32>, k: u32, n: u32) -> f32 {
  let base = dot(bi, vec4<u32>(p.bs0, p.bs1, p.bs2, p.bs3));
  return B[base + ${transposed ? "n * p.K + k" : "k * p.N + n"}];
}`;
  if (!transposed) {
    return {
      key: `denseB:${vec}`,
      fields,
      rbElem: vec ? "vec4<f32>" : "f32",
      scalarFn,
      rbSetup: (c) =>
        [baseExpr("b")].concat(
          vec
            ? [`  let bn4 = p.N >> 2u;`].concat(
              range(c.tn / 4).map((j) =>
                `  let bc${j} = (bBase + min(n0 + ${4 * j}u, p.N - 4u)) >> 2u;`
              ),
            )
            : range(c.tn).map((n) => `  let bc${n} = bBase + min(n0 + ${n}u, p.N - 1u);`),
        ).join("\n"),
      rbStep: (c) =>
        range(4).flatMap((kk) =>
          range(c.tn / 4).map((j) =>
            vec
              ? `    let b${kk}_${j} = B[bc${j} + kc${kk} * bn4];`
              : `    let b${kk}_${j} = vec4<f32>(${
                range(4).map((q) => `B[bc${4 * j + q} + kc${kk} * p.N]`).join(", ")
              });`
          )
        ).join("\n"),
      rbValue: (kk, j) => `b${kk}_${j}`,
    };
  }
  return {
    key: `denseBT:${vec}`,
    fields,
    rbElem: vec ? "vec4<f32>" : "f32",
    scalarFn,
    rbSetup: (c) =>
      [baseExpr("b")].concat(
        range(c.tn).map((n) =>
          vec
            ? `  let br${n} = (bBase + min(n0 + ${n}u, p.N - 1u) * p.K) >> 2u;`
            : `  let br${n} = bBase + min(n0 + ${n}u, p.N - 1u) * p.K;`
        ),
      ).join("\n"),
    rbStep: (c) =>
      range(c.tn).map((n) =>
        vec
          ? `    let bt${n} = B[br${n} + (k0 >> 2u)];`
          : `    let bt${n} = vec4<f32>(${range(4).map((kk) => `B[br${n} + kc${kk}]`).join(", ")});`
      ).concat(
        range(4).flatMap((kk) =>
          range(c.tn / 4).map((j) =>
            `    let b${kk}_${j} = vec4<f32>(${
              range(4).map((q) => `bt${4 * j + q}.${XYZW[kk]}`).join(", ")
            });`
          )
        ),
      ).join("\n"),
    rbValue: (kk, j) => `b${kk}_${j}`,
  };
}
