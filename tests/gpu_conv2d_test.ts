// conv2d forward, backward-data, backward-weight and bias gradients against f64 host references
// (forward) and host central finite differences (gradients), for both GEMM variants.
import { assert, assertThrows } from "@std/assert";
import { initDevice } from "../gpu/device.ts";
import { assertCloseToScale, fdGradOfSum } from "./gpu_op_helpers.ts";
import {
  conv2d,
  conv2dBackwardFilter,
  conv2dBackwardInput,
  type Conv2dOptions,
} from "../gpu/ops/conv2d.ts";
import { readAll, type Tensor, tensor } from "../gpu/tensor.ts";
import type { GemmVariant } from "../gpu/kernels/tuning.ts";
import { kernelMode, setKernelMode, TUNING } from "../gpu/kernels/tuning.ts";

await initDevice();

let seed = 12345;
function rand(n: number): Float64Array {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    a[i] = (seed / 2 ** 32) * 2 - 1;
  }
  return a;
}

interface Case {
  name: string;
  x: [number, number, number, number];
  w: [number, number, number, number];
  stride: number | [number, number];
  padding: number | [number, number] | "same";
  bias?: boolean;
  relu?: boolean;
  bake?: boolean;
}

/** Host reference: returns out and its shape. */
function hostConv(
  x: Float64Array,
  xs: number[],
  w: Float64Array,
  ws: number[],
  b: Float64Array | null,
  c: Case,
): { out: Float64Array; shape: number[] } {
  const [N, H, W, Ci] = xs;
  const [KH, KW, , Co] = ws;
  const [sh, sw] = typeof c.stride === "number" ? [c.stride, c.stride] : c.stride;
  let pt: number, pl: number, OH: number, OW: number;
  if (c.padding === "same") {
    OH = Math.ceil(H / sh);
    OW = Math.ceil(W / sw);
    pt = Math.floor(Math.max((OH - 1) * sh + KH - H, 0) / 2);
    pl = Math.floor(Math.max((OW - 1) * sw + KW - W, 0) / 2);
  } else {
    [pt, pl] = typeof c.padding === "number" ? [c.padding, c.padding] : c.padding;
    OH = Math.floor((H + 2 * pt - KH) / sh) + 1;
    OW = Math.floor((W + 2 * pl - KW) / sw) + 1;
  }
  const out = new Float64Array(N * OH * OW * Co);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        for (let co = 0; co < Co; co++) {
          let s = b ? b[co] : 0;
          for (let kh = 0; kh < KH; kh++) {
            const ih = oh * sh - pt + kh;
            if (ih < 0 || ih >= H) continue;
            for (let kw = 0; kw < KW; kw++) {
              const iw = ow * sw - pl + kw;
              if (iw < 0 || iw >= W) continue;
              for (let ci = 0; ci < Ci; ci++) {
                s += x[((n * H + ih) * W + iw) * Ci + ci] * w[((kh * KW + kw) * Ci + ci) * Co + co];
              }
            }
          }
          out[((n * OH + oh) * OW + ow) * Co + co] = c.relu ? Math.max(s, 0) : s;
        }
      }
    }
  }
  return { out, shape: [N, OH, OW, Co] };
}

const CASES: Case[] = [
  { name: "cin3 pad1", x: [2, 5, 6, 3], w: [3, 3, 3, 5], stride: 1, padding: 1 },
  { name: "vec stride2 pad0", x: [1, 7, 5, 4], w: [3, 3, 4, 8], stride: 2, padding: 0 },
  {
    name: "same stride2 bias relu",
    x: [2, 6, 6, 8],
    w: [3, 3, 8, 4],
    stride: 2,
    padding: "same",
    bias: true,
    relu: true,
  },
  { name: "1x1 bias", x: [3, 3, 2, 4], w: [1, 1, 4, 6], stride: 1, padding: 0, bias: true },
  { name: "2x3 kernel asym", x: [1, 6, 7, 5], w: [2, 3, 5, 3], stride: [1, 2], padding: [1, 2] },
  { name: "split-K filter", x: [2, 16, 16, 4], w: [3, 3, 4, 4], stride: 1, padding: 1 },
  // Parity-class backward-data: a 1x1 stride-2 conv leaves three classes without taps.
  {
    name: "1x1 stride2 (tapless parity classes)",
    x: [2, 6, 6, 4],
    w: [1, 1, 4, 8],
    stride: 2,
    padding: 0,
  },
  // Geometry baked into the kernel source as constants (the default for large convs).
  { name: "cin3 pad1 baked", x: [2, 5, 6, 3], w: [3, 3, 3, 5], stride: 1, padding: 1, bake: true },
  {
    name: "cin3 stride2 bias",
    x: [2, 7, 6, 3],
    w: [3, 3, 3, 6],
    stride: 2,
    padding: 1,
    bias: true,
  },
  {
    name: "vec stride2 pad0 baked",
    x: [1, 7, 5, 4],
    w: [3, 3, 4, 8],
    stride: 2,
    padding: 0,
    bake: true,
  },
  {
    name: "same stride2 bias relu baked",
    x: [2, 6, 6, 8],
    w: [3, 3, 8, 4],
    stride: 2,
    padding: "same",
    bias: true,
    relu: true,
    bake: true,
  },
];

for (const variant of ["regblock", "tiled"] as GemmVariant[]) {
  for (const c of CASES) {
    Deno.test(`conv2d ${variant}: ${c.name}: forward and gradients`, async () => {
      const xs = c.x, ws = c.w;
      const xh = rand(xs.reduce((a, b) => a * b));
      const wh = rand(ws.reduce((a, b) => a * b));
      const bh = c.bias ? rand(ws[3]) : null;
      const ref = hostConv(xh, xs, wh, ws, bh, c);
      const R = rand(ref.out.length);
      const x = tensor(Float32Array.from(xh), xs);
      const w = tensor(Float32Array.from(wh), ws);
      const b = bh ? tensor(Float32Array.from(bh), [ws[3]]) : undefined;
      x.requiresGrad = w.requiresGrad = true;
      if (b) b.requiresGrad = true;
      const opts: Conv2dOptions = {
        stride: c.stride,
        padding: c.padding,
        bias: b,
        activation: c.relu ? "relu" : undefined,
        variant,
        bake: c.bake,
      };
      const y = conv2d(x, w, opts);
      assert(y.shape.join() === ref.shape.join(), `shape ${y.shape} vs ${ref.shape}`);
      const r = tensor(Float32Array.from(R), ref.shape);
      const [dx, dw, db] = y.node!.backward(r) as Tensor[];
      const got = await readAll(b ? [y, dx, dw, db] : [y, dx, dw]);
      assertCloseToScale(got[0], ref.out, "forward");
      // Host FD: skip relu kinks (none expected at |s| > h).
      const fx = fdGradOfSum(xh, R, () => hostConv(xh, xs, wh, ws, bh, c).out, 1e-6);
      const fw = fdGradOfSum(wh, R, () => hostConv(xh, xs, wh, ws, bh, c).out, 1e-6);
      assertCloseToScale(got[1], fx, "dx");
      assertCloseToScale(got[2], fw, "dw");
      if (bh) {
        assertCloseToScale(
          got[3],
          fdGradOfSum(bh, R, () => hostConv(xh, xs, wh, ws, bh, c).out, 1e-6),
          "db",
        );
      }
      for (const t of [x, w, y, r, dx, dw, ...(b ? [b, db] : [])]) t.dispose();
    });
  }
}

Deno.test("conv2d: ResNet-like 16-channel 3x3 pad 1, both variants agree with host", async () => {
  const c: Case = { name: "rn", x: [2, 8, 8, 16], w: [3, 3, 16, 16], stride: 1, padding: 1 };
  const xh = rand(2 * 8 * 8 * 16), wh = rand(3 * 3 * 16 * 16);
  const ref = hostConv(xh, c.x, wh, c.w, null, c);
  const x = tensor(Float32Array.from(xh), c.x);
  const w = tensor(Float32Array.from(wh), c.w);
  const dy = tensor(Float32Array.from(rand(ref.out.length)), ref.shape);
  for (const variant of ["regblock", "tiled"] as GemmVariant[]) {
    const y = conv2d(x, w, { padding: 1, variant });
    const dx = conv2dBackwardInput(dy, w, c.x, { padding: 1, variant });
    const dw = conv2dBackwardFilter(x, dy, c.w, { padding: 1, variant });
    const [yo, dxo, dwo] = await readAll([y, dx, dw]);
    assertCloseToScale(yo, ref.out, `${variant} forward`);
    assert(dxo.every(Number.isFinite) && dwo.every(Number.isFinite));
    const other = variant === "regblock" ? "tiled" : "regblock";
    const [dx2, dw2] = await readAll([
      conv2dBackwardInput(dy, w, c.x, { padding: 1, variant: other }),
      conv2dBackwardFilter(x, dy, c.w, { padding: 1, variant: other }),
    ]);
    assertCloseToScale(dxo, Float64Array.from(dx2), `${variant} vs ${other} dx`);
    assertCloseToScale(dwo, Float64Array.from(dw2), `${variant} vs ${other} dw`);
  }
  // Register tiles other than the small-problem default (24 x 8 per thread), baked geometry.
  const big = { padding: 1, variant: "regblock" as GemmVariant, tm: 24, tn: 8, bake: true };
  const [yb, dxb, dwb, dxr, dwr] = await readAll([
    conv2d(x, w, big),
    conv2dBackwardInput(dy, w, c.x, big),
    conv2dBackwardFilter(x, dy, c.w, big),
    conv2dBackwardInput(dy, w, c.x, { padding: 1, variant: "tiled" }),
    conv2dBackwardFilter(x, dy, c.w, { padding: 1, variant: "tiled" }),
  ]);
  assertCloseToScale(yb, ref.out, "big-tile forward");
  assertCloseToScale(dxb, Float64Array.from(dxr), "big-tile dx");
  assertCloseToScale(dwb, Float64Array.from(dwr), "big-tile dw");
});

Deno.test("conv2d: long-K weight gradient (lane split-K) agrees across variants", async () => {
  const xs: [number, number, number, number] = [8, 16, 16, 4], ws = [3, 3, 4, 8];
  const x = tensor(Float32Array.from(rand(prod4(xs))), xs);
  const dy = tensor(Float32Array.from(rand(8 * 16 * 16 * 8)), [8, 16, 16, 8]);
  const [a, b] = await readAll([
    conv2dBackwardFilter(x, dy, ws, { padding: 1, variant: "regblock" }),
    conv2dBackwardFilter(x, dy, ws, { padding: 1, variant: "tiled" }),
  ]);
  assertCloseToScale(a, Float64Array.from(b), "regblock vs tiled dw");
});

function prod4(s: number[]): number {
  return s.reduce((p, d) => p * d, 1);
}

Deno.test("conv2d: kernel mode can be forced", () => {
  setKernelMode("gpu");
  assert(kernelMode() === "gpu");
  setKernelMode("cpu");
  assert(kernelMode() === "cpu");
  setKernelMode(null);
});

Deno.test("conv2d: clear errors", () => {
  const x = tensor(new Float32Array(2 * 5 * 5 * 3), [2, 5, 5, 3]);
  const w = tensor(new Float32Array(3 * 3 * 4 * 2), [3, 3, 4, 2]);
  const w3 = tensor(new Float32Array(3 * 3 * 3 * 2), [3, 3, 3, 2]);
  const xi = tensor(new Int32Array(2 * 5 * 5 * 3), [2, 5, 5, 3], "i32");
  const x3 = tensor(new Float32Array(75), [5, 5, 3]);
  assertThrows(() => conv2d(x, w), Error, "collapse: conv2d: x [2, 5, 5, 3] has 3 channels");
  assertThrows(() => conv2d(xi, w3), Error, "collapse: conv2d: needs f32");
  assertThrows(() => conv2d(x3, w3), Error, "collapse: conv2d: needs x [N, H, W, Cin]");
  assertThrows(() => conv2d(x, w3, { stride: 0 }), Error, "stride must be integers >= 1");
  assertThrows(() => conv2d(x, w3, { padding: -1 }), Error, "padding must be integers >= 0");
  const big = tensor(new Float32Array(6 * 6 * 3), [6, 6, 3, 1]);
  assertThrows(() => conv2d(x, big), Error, "does not fit input 5x5");
  const b = tensor(new Float32Array(3), [3]);
  assertThrows(() => conv2d(x, w3, { bias: b }), Error, "bias f32[3] should be [2]");
  const dy = tensor(new Float32Array(2 * 4 * 4 * 2), [2, 4, 4, 2]);
  assertThrows(
    () => conv2dBackwardInput(dy, w3, [2, 5, 5, 3], { padding: 1 }),
    Error,
    "conv2dBackwardInput: dy f32[2, 4, 4, 2] should be [2, 5, 5, 2]",
  );
  assertThrows(
    () => conv2dBackwardFilter(x, dy, [3, 3, 3, 2], {}),
    Error,
    "conv2dBackwardFilter: dy f32[2, 4, 4, 2] should be [2, 3, 3, 2]",
  );
  for (const t of [x, w, w3, xi, x3, big, b, dy]) t.dispose();
});

// The GPU tiled kernel at forced tile shapes and the GPU-mode plans (regblock and
// default), against the CPU-mode register-blocked results: stride 2 with Cin 3, and Cin 8.
Deno.test("conv2d: GPU tiled tile shapes and GPU-mode plans agree with regblock", async () => {
  const shapes: [[number, number, number, number], number[], number][] = [
    [[2, 9, 9, 3], [3, 3, 3, 8], 2],
    [[2, 6, 6, 8], [3, 3, 8, 12], 1],
  ];
  const tiles: [number, number, number, number][] = [[16, 16, 8, 8], [16, 4, 8, 4]];
  for (const [xs, ws, stride] of shapes) {
    const x = tensor(Float32Array.from(rand(prod4(xs))), xs);
    const w = tensor(Float32Array.from(rand(prod4(ws))), ws);
    const bias = tensor(Float32Array.from(rand(ws[3])), [ws[3]]);
    const o = { padding: 1, stride, bias, activation: "relu" as const };
    const y0 = conv2d(x, w, { ...o, variant: "regblock" });
    const dy = tensor(Float32Array.from(rand(y0.size)), y0.shape);
    const run = (opts: Conv2dOptions) => [
      conv2d(x, w, { ...o, ...opts }),
      conv2dBackwardInput(dy, w, xs, { padding: 1, stride, ...opts }),
      conv2dBackwardFilter(x, dy, ws, { padding: 1, stride, ...opts }),
    ];
    const want = (await readAll(run({ variant: "regblock" }))).map((a) => Float64Array.from(a));
    const check = async (what: string, opts: Conv2dOptions) => {
      const got = await readAll(run(opts));
      ["y", "dx", "dw"].forEach((n, i) => assertCloseToScale(got[i], want[i], `${what} ${n}`));
    };
    try {
      for (const [wgm, wgn, tm, tn] of tiles) {
        TUNING.gpuTiledForce = { variant: "tiled", bk: 16, wgm, wgn, tm, tn };
        await check(`tile ${wgm}x${wgn}x${tm}x${tn} ${xs}`, { variant: "tiled" });
      }
      TUNING.gpuTiledForce = null;
      setKernelMode("gpu");
      if (stride === 2) await check(`gpu regblock ${xs}`, { variant: "regblock" });
      else await check(`gpu default ${xs}`, {});
    } finally {
      TUNING.gpuTiledForce = null;
      setKernelMode(null);
    }
  }
});
