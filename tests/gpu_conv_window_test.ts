// The sliding-window forms of the stride-1 conv operands (RbWindow in gpu/kernels/matmul_gemm.ts,
// convBackwardFilterWindowA): forward, backward-data and weight gradient against f64 host
// references for every way a thread's rows can sit in image rows or row groups (several threads
// per row, one row, several rows, rows past M), with and without padding, and a check that the
// window is what ran.
import { assert } from "@std/assert";
import { initDevice } from "../gpu/device.ts";
import { engine, type Launch } from "../gpu/engine.ts";
import { setKernelMode, TUNING } from "../gpu/kernels/tuning.ts";
import { conv2d, conv2dBackwardFilter, conv2dBackwardInput } from "../gpu/ops/conv2d.ts";
import { readAll, tensor } from "../gpu/tensor.ts";
import { assertClose, rand, rng } from "./gpu_op_helpers.ts";

await initDevice();

const r = rng(977);
/** n uniform values in [-1, 1), exactly the f32 values the GPU gets. */
const rnd = (n: number) => Float64Array.from(rand(r, n));

interface Geom {
  N: number;
  H: number;
  W: number;
  C: number;
  pad: number;
}

/** y[n, oh, ow, co] = sum x[n, oh + kh - pad, ow + kw - pad, ci] w[kh, kw, ci, co] (3x3, stride 1). */
function hostForward(x: Float64Array, w: Float64Array, g: Geom): Float64Array {
  const { N, H, W, C, pad } = g;
  const OH = H + 2 * pad - 2, OW = W + 2 * pad - 2;
  const y = new Float64Array(N * OH * OW * C);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        for (let co = 0; co < C; co++) {
          let s = 0;
          for (let kh = 0; kh < 3; kh++) {
            for (let kw = 0; kw < 3; kw++) {
              const ih = oh + kh - pad, iw = ow + kw - pad;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              for (let ci = 0; ci < C; ci++) {
                s += x[((n * H + ih) * W + iw) * C + ci] * w[((kh * 3 + kw) * C + ci) * C + co];
              }
            }
          }
          y[((n * OH + oh) * OW + ow) * C + co] = s;
        }
      }
    }
  }
  return y;
}

/** dx[n, ih, iw, ci] = sum dy[n, ih - kh + pad, iw - kw + pad, co] w[kh, kw, ci, co]. */
function hostBackwardInput(dy: Float64Array, w: Float64Array, g: Geom): Float64Array {
  const { N, H, W, C, pad } = g;
  const OH = H + 2 * pad - 2, OW = W + 2 * pad - 2;
  const dx = new Float64Array(N * H * W * C);
  for (let n = 0; n < N; n++) {
    for (let ih = 0; ih < H; ih++) {
      for (let iw = 0; iw < W; iw++) {
        for (let ci = 0; ci < C; ci++) {
          let s = 0;
          for (let kh = 0; kh < 3; kh++) {
            for (let kw = 0; kw < 3; kw++) {
              const oh = ih - kh + pad, ow = iw - kw + pad;
              if (oh < 0 || oh >= OH || ow < 0 || ow >= OW) continue;
              for (let co = 0; co < C; co++) {
                s += dy[((n * OH + oh) * OW + ow) * C + co] * w[((kh * 3 + kw) * C + ci) * C + co];
              }
            }
          }
          dx[((n * H + ih) * W + iw) * C + ci] = s;
        }
      }
    }
  }
  return dx;
}

/** dw[kh, kw, ci, co] = sum x[n, oh + kh - pad, ow + kw - pad, ci] dy[n, oh, ow, co]. */
function hostBackwardFilter(x: Float64Array, dy: Float64Array, g: Geom): Float64Array {
  const { N, H, W, C, pad } = g;
  const OH = H + 2 * pad - 2, OW = W + 2 * pad - 2;
  const dw = new Float64Array(9 * C * C);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        for (let kh = 0; kh < 3; kh++) {
          for (let kw = 0; kw < 3; kw++) {
            const ih = oh + kh - pad, iw = ow + kw - pad;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
            for (let ci = 0; ci < C; ci++) {
              const xv = x[((n * H + ih) * W + iw) * C + ci];
              for (let co = 0; co < C; co++) {
                dw[((kh * 3 + kw) * C + ci) * C + co] += xv *
                  dy[((n * OH + oh) * OW + ow) * C + co];
              }
            }
          }
        }
      }
    }
  }
  return dw;
}

/** Runs `f` with every GEMM of M rows planned as `tm` rows x 8 columns per thread; returns the codes. */
async function withPlan<T>(
  M: number,
  tm: number,
  f: () => T,
): Promise<{ value: T; codes: Map<string, string> }> {
  const e = engine();
  const codes = new Map<string, string>();
  const dispatch = e.dispatch;
  TUNING.planHook = (m) =>
    m === M ? { config: { variant: "regblock", wgm: 8, wgn: 1, tm, tn: 8 }, splits: 1 } : null;
  e.dispatch = (l: Launch) => {
    codes.set(l.name, l.code);
    dispatch.call(e, l);
  };
  try {
    const value = f();
    await e.sync();
    return { value, codes };
  } finally {
    e.dispatch = dispatch;
    TUNING.planHook = null;
  }
}

const WINDOW_LOOP = "for (var q = 0u;";
const DEFAULT_WORK = TUNING.rbWindowWork;

// [geometry, rows per thread forward, backward-data]: W = 16 with pad 1 (4 and 8: several threads
// per image row and interior window edges; 16: one row; 32: two rows per thread, and threads past
// M in the last tile); pad 0 (OW = 14: 28 rows, two image rows, no column test forward; 32
// backward: columns that are padding for every thread).
const CASES: [Geom, number, number][] = [
  [{ N: 2, H: 5, W: 16, C: 8, pad: 1 }, 4, 4],
  [{ N: 2, H: 5, W: 16, C: 8, pad: 1 }, 8, 8],
  [{ N: 2, H: 5, W: 16, C: 8, pad: 1 }, 16, 16],
  [{ N: 2, H: 5, W: 16, C: 8, pad: 1 }, 32, 32],
  [{ N: 2, H: 5, W: 16, C: 8, pad: 0 }, 28, 32],
];

for (const [g, tm, tmBack] of CASES) {
  Deno.test(`conv window: ${g.W} wide, pad ${g.pad}, ${tm} / ${tmBack} rows per thread: forward and backward-data match the host`, async () => {
    setKernelMode("cpu");
    TUNING.rbWindowWork = 0; // these shapes are below the default size
    try {
      const { N, H, W, C, pad } = g;
      const OH = H + 2 * pad - 2, OW = W + 2 * pad - 2;
      const xh = rnd(N * H * W * C), wh = rnd(9 * C * C), dyh = rnd(N * OH * OW * C);
      const x = tensor(Float32Array.from(xh), [N, H, W, C]);
      const w = tensor(Float32Array.from(wh), [3, 3, C, C]);
      const dy = tensor(Float32Array.from(dyh), [N, OH, OW, C]);
      const fwd = await withPlan(N * OH * OW, tm, () => conv2d(x, w, { padding: pad }));
      const bwd = await withPlan(
        N * H * W,
        tmBack,
        () => conv2dBackwardInput(dy, w, [N, H, W, C], { padding: pad }),
      );
      assert(fwd.codes.get("conv2d")?.includes(WINDOW_LOOP), "the forward ran without the window");
      const bwdCode = bwd.codes.get("conv2d_backward_input");
      assert(bwdCode?.includes(WINDOW_LOOP), "the backward-data ran without the window");
      const [y, dx] = await readAll([fwd.value, bwd.value]);
      assertClose(y, hostForward(xh, wh, g), "forward", 1e-4, 1e-4);
      assertClose(dx, hostBackwardInput(dyh, wh, g), "backward-data", 1e-4, 1e-4);
      for (const t of [x, w, dy, fwd.value, bwd.value]) t.dispose();
    } finally {
      setKernelMode(null);
      TUNING.rbWindowWork = DEFAULT_WORK;
    }
  });
}

// Weight gradients with rows grouped by (kh, channel quad) (convBackwardFilterWindowA), M = 72
// rows: [geometry, rows per thread]: 12 and 36 (one and three groups), 48 with W = 8 (threads past
// M; first and last pixel columns tested), pad 0 with OW = 16 (no column test at all).
const FILTER_CASES: [Geom, number][] = [
  [{ N: 2, H: 5, W: 16, C: 8, pad: 1 }, 12],
  [{ N: 2, H: 5, W: 16, C: 8, pad: 1 }, 36],
  [{ N: 3, H: 4, W: 8, C: 8, pad: 1 }, 48],
  [{ N: 2, H: 5, W: 18, C: 8, pad: 0 }, 24],
];

for (const [g, tm] of FILTER_CASES) {
  Deno.test(`conv window: weight gradient, ${g.W} wide, pad ${g.pad}, ${tm} rows per thread, matches the host`, async () => {
    setKernelMode("cpu");
    TUNING.rbWindowWork = 0; // these shapes are below the default size
    try {
      const { N, H, W, C, pad } = g;
      const OH = H + 2 * pad - 2, OW = W + 2 * pad - 2;
      const xh = rnd(N * H * W * C), dyh = rnd(N * OH * OW * C);
      const x = tensor(Float32Array.from(xh), [N, H, W, C]);
      const dy = tensor(Float32Array.from(dyh), [N, OH, OW, C]);
      const run = await withPlan(
        9 * C,
        tm,
        () => conv2dBackwardFilter(x, dy, [3, 3, C, C], { padding: pad }),
      );
      const code = run.codes.get("conv2d_backward_filter");
      assert(code?.includes("the taps share loads"), "the weight gradient ran without the window");
      const [dw] = await readAll([run.value]);
      assertClose(dw, hostBackwardFilter(xh, dyh, g), "weight gradient", 1e-4, 1e-4);
      for (const t of [x, dy, run.value]) t.dispose();
    } finally {
      setKernelMode(null);
      TUNING.rbWindowWork = DEFAULT_WORK;
    }
  });
}

Deno.test("conv window: off by TUNING.rbWindow, below TUNING.rbWindowWork, and where a thread's rows do not fit", async () => {
  setKernelMode("cpu");
  const x = tensor(Float32Array.from(rnd(2 * 5 * 12 * 8)), [2, 5, 12, 8]);
  const w = tensor(Float32Array.from(rnd(9 * 64)), [3, 3, 8, 8]);
  try {
    // 4 rows per thread fit 12-pixel rows, but the conv is small.
    const small = await withPlan(2 * 5 * 12, 4, () => conv2d(x, w, { padding: 1 }));
    assert(!small.codes.get("conv2d")!.includes(WINDOW_LOOP));
    small.value.dispose();
    TUNING.rbWindowWork = 0;
    // 8 rows per thread in 12-pixel rows: no window.
    const misfit = await withPlan(2 * 5 * 12, 8, () => conv2d(x, w, { padding: 1 }));
    assert(!misfit.codes.get("conv2d")!.includes(WINDOW_LOOP));
    TUNING.rbWindow = false;
    const off = await withPlan(2 * 5 * 12, 4, () => conv2d(x, w, { padding: 1 }));
    assert(!off.codes.get("conv2d")!.includes(WINDOW_LOOP));
    for (const t of [misfit.value, off.value]) t.dispose();
  } finally {
    TUNING.rbWindow = true;
    TUNING.rbWindowWork = DEFAULT_WORK;
    setKernelMode(null);
    x.dispose();
    w.dispose();
  }
});
