/**
 * Pooling over NHWC tensors: maxPool2d, avgPool2d (count excludes padding by default, like Keras and
 * TF; `countIncludePad: true` gives PyTorch's default), globalAvgPool2d ([N, H, W, C] -> [N, C]).
 * All differentiable in x.
 * @module
 */
import { record } from "../autograd.ts";
import { engine } from "../engine.ts";
import { globalAvgPoolBackwardLaunch, globalAvgPoolLaunch } from "../kernels/pool_global.ts";
import {
  poolBackwardLaunch,
  poolForwardLaunch,
  type PoolGeom,
  type PoolMode,
} from "../kernels/pool_window.ts";
import { empty, type Tensor } from "../tensor.ts";

/** A size given once for both spatial axes, or as [height, width]. */
export type Size2 = number | [number, number];

/** Options of {@link maxPool2d} and {@link avgPool2d}. */
export interface PoolOptions {
  /** Window size. */
  size: Size2;
  /** Stride (default: the window size). */
  stride?: Size2;
  /** Zero padding on each side (default 0; at most half the window). */
  padding?: Size2;
}

/** Options of {@link avgPool2d}. */
export interface AvgPoolOptions extends PoolOptions {
  /** Divide by the full window size, padding included (PyTorch's default). Default false. */
  countIncludePad?: boolean;
}

function pair(v: Size2, what: string, op: string, min: number): [number, number] {
  const p: [number, number] = typeof v === "number" ? [v, v] : [v[0], v[1]];
  if (p.length !== 2 || !p.every((d) => Number.isInteger(d) && d >= min)) {
    throw new Error(`collapse: ${op}: invalid ${what} ${JSON.stringify(v)}`);
  }
  return p;
}

function checkNhwc(x: Tensor, op: string): void {
  if (x.rank !== 4 || x.dtype !== "f32") {
    throw new Error(`collapse: ${op}: x must be f32 NHWC of rank 4, got ${x.describe()}`);
  }
}

function geometry(x: Tensor, opts: PoolOptions, op: string): PoolGeom {
  checkNhwc(x, op);
  const [kh, kw] = pair(opts.size, "size", op, 1);
  const [sh, sw] = pair(opts.stride ?? opts.size, "stride", op, 1);
  const [ph, pw] = pair(opts.padding ?? 0, "padding", op, 0);
  if (2 * ph > kh || 2 * pw > kw) {
    throw new Error(
      `collapse: ${op}: padding [${ph}, ${pw}] must be at most half the window [${kh}, ${kw}]`,
    );
  }
  const [n, h, w, c] = x.shape;
  const oh = Math.floor((h + 2 * ph - kh) / sh) + 1;
  const ow = Math.floor((w + 2 * pw - kw) / sw) + 1;
  if (oh < 1 || ow < 1) {
    throw new Error(
      `collapse: ${op}: window [${kh}, ${kw}] with padding [${ph}, ${pw}] does not fit x ${x.describe()}`,
    );
  }
  return { n, h, w, c, oh, ow, kh, kw, sh, sw, ph, pw };
}

function pool(x: Tensor, g: PoolGeom, mode: PoolMode, op: string): Tensor {
  const e = engine();
  const y = empty([g.n, g.oh, g.ow, g.c]);
  const arg = mode === "max" ? empty(y.shape, "i32") : null;
  if (y.size) e.dispatch(poolForwardLaunch(mode, x, y, arg, g));
  record(y, op, [x], (dy) => {
    const dx = empty(x.shape);
    if (dx.size) e.dispatch(poolBackwardLaunch(mode, dy, arg, dx, g));
    return [dx];
  });
  if (!y.node) arg?.dispose();
  return y;
}

/**
 * Max pooling over NHWC windows; padding never wins (it is excluded, as in PyTorch).
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { initDevice, maxPool2d, tensor } from "@collapse/collapse/gpu";
 *
 * await initDevice();
 * const x = tensor(Array.from({ length: 16 }, (_, i) => i), [1, 4, 4, 1]); // 0..15, row-major
 * assertEquals(await maxPool2d(x, { size: 2 }).array(), [5, 7, 13, 15]);
 * const stem = maxPool2d(x, { size: 3, stride: 2, padding: 1 }); // the ResNet-50 stem's pooling
 * assertEquals(stem.shape, [1, 2, 2, 1]);
 * ```
 */
export function maxPool2d(x: Tensor, opts: PoolOptions): Tensor {
  return pool(x, geometry(x, opts, "maxPool2d"), "max", "maxPool2d");
}

/** Average pooling over NHWC windows (count excludes padding unless `countIncludePad`). */
export function avgPool2d(x: Tensor, opts: AvgPoolOptions): Tensor {
  const g = geometry(x, opts, "avgPool2d");
  return pool(x, g, opts.countIncludePad ? "avg_pad" : "avg", "avgPool2d");
}

/** Mean over H and W: NHWC [N, H, W, C] -> [N, C]. */
export function globalAvgPool2d(x: Tensor): Tensor {
  checkNhwc(x, "globalAvgPool2d");
  const [n, h, w, c] = x.shape;
  if (h * w === 0) {
    throw new Error(`collapse: globalAvgPool2d: empty spatial extent in ${x.describe()}`);
  }
  const e = engine();
  const y = empty([n, c]);
  if (y.size) e.dispatch(globalAvgPoolLaunch(x, y, h * w, c));
  return record(y, "globalAvgPool2d", [x], (dy) => {
    const dx = empty(x.shape);
    if (dx.size) e.dispatch(globalAvgPoolBackwardLaunch(dy, dx, h * w, c));
    return [dx];
  });
}
