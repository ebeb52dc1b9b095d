// matmul forward (transposes, broadcast batches, split-K) and gradients against f64 host references
// and host central finite differences, for both GEMM variants.
import { assert, assertThrows } from "@std/assert";
import { initDevice } from "../gpu/device.ts";
import { assertCloseToScale, fdGradOfSum } from "./gpu_op_helpers.ts";
import { matmul } from "../gpu/ops/matmul.ts";
import { readAll, type Tensor, tensor } from "../gpu/tensor.ts";
import { gemmPlan, type GemmVariant, setKernelMode, TUNING } from "../gpu/kernels/tuning.ts";

await initDevice();

let seed = 777;
function rand(n: number): Float64Array {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    a[i] = (seed / 2 ** 32) * 2 - 1;
  }
  return a;
}

const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** Host batched matmul with numpy broadcasting of batch dims. */
function hostMatmul(
  a: Float64Array,
  as: number[],
  b: Float64Array,
  bs: number[],
  tA: boolean,
  tB: boolean,
): { out: Float64Array; shape: number[] } {
  const M = tA ? as[as.length - 1] : as[as.length - 2];
  const K = tA ? as[as.length - 2] : as[as.length - 1];
  const N = tB ? bs[bs.length - 2] : bs[bs.length - 1];
  const ba = as.slice(0, -2), bb = bs.slice(0, -2);
  const r = Math.max(ba.length, bb.length);
  const pa = [...Array(r - ba.length).fill(1), ...ba];
  const pb = [...Array(r - bb.length).fill(1), ...bb];
  const bo = pa.map((d, i) => Math.max(d, pb[i]));
  const out = new Float64Array(prod(bo) * M * N);
  for (let z = 0; z < prod(bo); z++) {
    let q = z, za = 0, zb = 0, sa = 1, sb = 1;
    for (let d = r - 1; d >= 0; d--) {
      const i = q % bo[d];
      q = Math.floor(q / bo[d]);
      if (pa[d] > 1) za += i * sa;
      if (pb[d] > 1) zb += i * sb;
      sa *= pa[d];
      sb *= pb[d];
    }
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const av = a[za * M * K + (tA ? k * M + m : m * K + k)];
          const bv = b[zb * K * N + (tB ? n * K + k : k * N + n)];
          s += av * bv;
        }
        out[(z * M + m) * N + n] = s;
      }
    }
  }
  return { out, shape: [...bo, M, N] };
}

const CASES: [string, number[], number[], boolean, boolean][] = [
  ["odd 5x7x9", [5, 7], [7, 9], false, false],
  ["vec 8x12x16", [8, 12], [12, 16], false, false],
  ["transposeA vec", [20, 36], [20, 8], true, false],
  ["transposeA scalar", [6, 9], [6, 5], true, false],
  ["transposeB vec", [17, 16], [10, 16], false, true],
  ["transposeB scalar", [3, 5], [7, 5], false, true],
  ["both transposed", [16, 16], [12, 16], true, true],
  ["batched 3-D", [3, 5, 8], [3, 8, 4], false, false],
  ["batch x 2-D (folded)", [2, 3, 6], [6, 7], false, false],
  ["2-D x batch", [3, 6], [4, 6, 5], false, false],
  ["broadcast [2,1] x [3]", [2, 1, 4, 5], [3, 5, 6], false, false],
  ["batched transposeA", [2, 6, 4], [6, 3], true, false],
  ["batched transposeB", [2, 4, 8], [2, 5, 8], false, true],
  ["split-K", [4, 1100], [1100, 3], false, false],
  ["lane split-K, K % 4 != 0", [3, 2054], [2054, 2], false, false],
  ["K = 1", [3, 1], [1, 5], false, false],
];

for (const variant of ["regblock", "tiled"] as GemmVariant[]) {
  for (const [name, as, bs, tA, tB] of CASES) {
    Deno.test(`matmul ${variant}: ${name}: forward and gradients`, async () => {
      const ah = rand(prod(as)), bh = rand(prod(bs));
      const ref = hostMatmul(ah, as, bh, bs, tA, tB);
      const R = rand(ref.out.length);
      const a = tensor(Float32Array.from(ah), as);
      const b = tensor(Float32Array.from(bh), bs);
      a.requiresGrad = b.requiresGrad = true;
      const y = matmul(a, b, { transposeA: tA, transposeB: tB, variant });
      assert(y.shape.join() === ref.shape.join(), `shape ${y.shape} vs ${ref.shape}`);
      const r = tensor(Float32Array.from(R), ref.shape);
      const [da, db] = y.node!.backward(r) as Tensor[];
      assert(da.shape.join() === as.join() && db.shape.join() === bs.join());
      const [yo, dao, dbo] = await readAll([y, da, db]);
      assertCloseToScale(yo, ref.out, "forward");
      const f = () => hostMatmul(ah, as, bh, bs, tA, tB).out;
      assertCloseToScale(dao, fdGradOfSum(ah, R, f), "da");
      assertCloseToScale(dbo, fdGradOfSum(bh, R, f), "db");
      for (const t of [a, b, y, r, da, db]) t.dispose();
    });
  }
}

Deno.test("matmul: 64x64 agrees across variants", async () => {
  const n = 64;
  const ah = rand(n * n), bh = rand(n * n);
  const a = tensor(Float32Array.from(ah), [n, n]);
  const b = tensor(Float32Array.from(bh), [n, n]);
  const ref = hostMatmul(ah, [n, n], bh, [n, n], false, false);
  const outs = await readAll([
    matmul(a, b, { variant: "regblock" }),
    matmul(a, b, { variant: "tiled" }),
  ]);
  assertCloseToScale(outs[0], ref.out, "regblock");
  assertCloseToScale(outs[1], ref.out, "tiled");
});

Deno.test("matmul: clear errors", () => {
  const a = tensor(new Float32Array(6), [2, 3]);
  const b = tensor(new Float32Array(8), [4, 2]);
  const v = tensor(new Float32Array(3), [3]);
  const ai = tensor(new Int32Array(6), [2, 3], "i32");
  const b1 = tensor(new Float32Array(2 * 3 * 2), [2, 3, 2]);
  const b2 = tensor(new Float32Array(3 * 2 * 3), [3, 2, 3]);
  assertThrows(() => matmul(a, b), Error, "collapse: matmul: inner dimensions differ (3 vs 4)");
  assertThrows(() => matmul(a, v), Error, "collapse: matmul: operands need rank >= 2");
  assertThrows(() => matmul(ai, b1), Error, "collapse: matmul: needs f32 operands");
  assertThrows(() => matmul(b1, b2), Error, "collapse: matmul: batch dimensions do not broadcast");
  const c1 = tensor(new Float32Array(2 * 3 * 4), [2, 3, 4]);
  assertThrows(() => matmul(c1, b1), Error, "collapse: matmul: inner dimensions differ (4 vs 3)");
  for (const t of [a, b, v, ai, b1, b2, c1]) t.dispose();
});

// GPU-mode GEMMs on this adapter: every tiled tile shape (odd sizes, K % 4 != 0 and
// split-K), the GPU register-blocked plan and the tiled kernel without tile fields.
const TILES: [number, number, number, number][] = [
  [16, 16, 8, 8],
  [16, 16, 8, 4],
  [32, 8, 8, 4],
  [64, 4, 4, 4],
  [16, 4, 8, 4],
  [8, 8, 4, 4],
];
Deno.test("matmul tiled: forced tile shapes agree with host", async () => {
  const cases: [number[], number[], boolean, boolean][] = [
    [[37, 601], [601, 29], false, false],
    [[2, 40, 36], [2, 28, 36], false, true],
    [[24, 45], [24, 13], true, false],
  ];
  try {
    for (const [wgm, wgn, tm, tn] of TILES) {
      TUNING.gpuTiledForce = { variant: "tiled", bk: 16, wgm, wgn, tm, tn };
      for (const [as, bs, tA, tB] of cases) {
        const ah = rand(prod(as)), bh = rand(prod(bs));
        const ref = hostMatmul(ah, as, bh, bs, tA, tB);
        const a = tensor(Float32Array.from(ah), as);
        const b = tensor(Float32Array.from(bh), bs);
        const [y] = await readAll([
          matmul(a, b, { transposeA: tA, transposeB: tB, variant: "tiled" }),
        ]);
        assertCloseToScale(y, ref.out, `tile ${wgm}x${wgn}x${tm}x${tn} ${as} x ${bs}`);
        a.dispose();
        b.dispose();
      }
    }
  } finally {
    TUNING.gpuTiledForce = null;
  }
});

Deno.test("matmul: GPU-mode regblock plan, tiled without tile fields, default GPU variant", async () => {
  const as = [37, 601], bs = [601, 29];
  const ah = rand(prod(as)), bh = rand(prod(bs));
  const ref = hostMatmul(ah, as, bh, bs, false, false);
  const a = tensor(Float32Array.from(ah), as);
  const b = tensor(Float32Array.from(bh), bs);
  setKernelMode("gpu");
  try {
    const rb = matmul(a, b, { variant: "regblock" });
    const def = matmul(a, b);
    TUNING.gpuTiledLegacy = true;
    const legacy = matmul(a, b, { variant: "tiled" });
    const outs = await readAll([rb, def, legacy]);
    assertCloseToScale(outs[0], ref.out, "gpu regblock");
    assertCloseToScale(outs[1], ref.out, "gpu default");
    assertCloseToScale(outs[2], ref.out, "tiled legacy");
  } finally {
    TUNING.gpuTiledLegacy = false;
    setKernelMode(null);
  }
});

Deno.test("fast-compile plans: small GEMMs at most rbFastAcc accumulators, grouped rows kept whole", () => {
  const accumulators = (p: ReturnType<typeof gemmPlan>) =>
    p.config.variant === "regblock" ? p.config.tm * p.config.tn : NaN;
  const saved = TUNING.fastCompile;
  setKernelMode("cpu");
  try {
    TUNING.fastCompile = false;
    // ResNet-32 at batch 16 on 8x8 (stage 1): below rbBigWork, so up to rbSmallAcc by default.
    const small = [16 * 8 * 8, 16, 144] as const;
    assert(accumulators(gemmPlan(...small, 1)) > TUNING.rbFastAcc);
    TUNING.fastCompile = true;
    assert(accumulators(gemmPlan(...small, 1)) <= TUNING.rbFastAcc);
    // Above rbFastWork: rbSmallAcc, as without fast-compile's cap.
    const large = [128 * 32 * 32, 16, 144] as const;
    assert(large[0] * large[1] * large[2] >= TUNING.rbFastWork);
    const l = accumulators(gemmPlan(...large, 1));
    assert(l > TUNING.rbFastAcc && l <= TUNING.rbSmallAcc, `${l}`);
    // Rows grouped by 12 (a 3x3 windowed weight gradient): a whole group of rows per thread.
    const grouped = gemmPlan(144, 16, 16 * 8 * 8, 1, { tmMultiple: 12 });
    assert(grouped.config.variant === "regblock" && grouped.config.tm % 12 === 0);
  } finally {
    TUNING.fastCompile = saved;
    setKernelMode(null);
  }
});
