/**
 * Reductions over axes (sum, mean, max, min) and their gradients, plus {@link sumTo} (the
 * broadcast-gradient reduction). Axes are merged so a reduction runs as [A, R, B] -> [A, B] over R:
 * rows use the workgroup-tree kernel, columns the serial kernel, long R in several passes
 * (../kernels/reduce.ts); other axis patterns are transposed first.
 * @module
 */
import { record } from "../autograd.ts";
import { engine } from "../engine.ts";
import { type ReduceOp, reduceRowLaunch, reduceSerialLaunch } from "../kernels/reduce.ts";
import { stridedMapLaunch } from "../kernels/strided_map.ts";
import { empty, fmtShape, reshapeView, sizeOf, type Tensor } from "../tensor.ts";
import { full } from "./creation.ts";
import { reshape } from "./shape.ts";
import { checkDtype, contiguousStrides, gradFn, mapOp, normAxes } from "./op_util.ts";

/** x (contiguous, viewed as [A, R, B]) reduced over R -> a new [A * B] tensor. */
function reduceABR(
  x: Tensor,
  op: ReduceOp,
  A: number,
  R: number,
  B: number,
  finalScale: number,
): Tensor {
  const e = engine();
  let cur = x;
  let r = R;
  for (;;) {
    let chunk: number;
    let out: Tensor;
    if (B === 1 && r > 64) {
      chunk = A >= 1024 || r <= 8192 ? r : 8192;
      const C = Math.ceil(r / chunk);
      out = empty([A * C], x.dtype);
      e.dispatch(reduceRowLaunch(op, cur, out, { A, R: r, chunk }, C === 1 ? finalScale : 1));
    } else {
      chunk = r <= 256 || A * B >= 65536 ? r : 256;
      const C = Math.ceil(r / chunk);
      out = empty([A * C * B], x.dtype);
      e.dispatch(reduceSerialLaunch(op, cur, out, { A, R: r, B, chunk }, C === 1 ? finalScale : 1));
    }
    if (cur !== x) cur.dispose();
    cur = out;
    r = Math.ceil(r / chunk);
    if (r === 1) return cur;
  }
}

interface Reduced {
  out: Tensor;
  /** The output shape with reduced axes kept as 1. */
  keepShape: number[];
  /** Number of elements reduced into each output. */
  count: number;
}

function reduceCore(
  opName: string,
  op: ReduceOp,
  x: Tensor,
  axesArg: number | number[] | undefined,
  keepDims: boolean,
  mean: boolean,
): Reduced {
  const axes = normAxes(opName, axesArg, x.rank);
  const red = new Set(axes);
  const keepShape = x.shape.map((d, i) => (red.has(i) ? 1 : d));
  const outShape = keepDims ? keepShape : x.shape.filter((_, i) => !red.has(i));
  const count = sizeOf(axes.map((a) => x.shape[a]));
  const outSize = sizeOf(outShape);
  if (count === 0 || x.size === 0) {
    if (op !== "sum" && outSize > 0) {
      throw new Error(`collapse: ${opName}: empty reduction over ${x.describe()}`);
    }
    return { out: full(outShape, mean ? NaN : 0, x.dtype), keepShape, count };
  }
  // Merge dims into groups of (reduced?, size), skipping size-1 dims.
  const groups: { red: boolean; size: number }[] = [];
  x.shape.forEach((d, i) => {
    if (d === 1) return;
    const r = red.has(i);
    const last = groups[groups.length - 1];
    if (last && last.red === r) last.size *= d;
    else groups.push({ red: r, size: d });
  });
  const scale = mean ? 1 / count : 1;
  const redGroups = groups.filter((g) => g.red).length;
  let flat: Tensor;
  if (redGroups <= 1) {
    const ri = groups.findIndex((g) => g.red);
    const A = ri < 0 ? outSize : sizeOf(groups.slice(0, ri).map((g) => g.size));
    const B = ri < 0 ? 1 : sizeOf(groups.slice(ri + 1).map((g) => g.size));
    const R = ri < 0 ? 1 : groups[ri].size;
    flat = reduceABR(x, op, A, R, B, scale);
  } else {
    // Transpose to [kept..., reduced...] with one strided copy, then reduce rows.
    const kept = x.shape.map((_, i) => i).filter((i) => !red.has(i));
    const perm = [...kept, ...axes];
    const src = contiguousStrides(x.shape);
    const pshape = perm.map((p) => x.shape[p]);
    const t = empty(pshape, x.dtype);
    engine().dispatch(stridedMapLaunch(
      { name: "reduce_transpose", expr: "a" },
      { t, offset: 0, strides: contiguousStrides(pshape) },
      [{ t: x, offset: 0, strides: perm.map((p) => src[p]) }],
      pshape,
    ));
    flat = reduceABR(t, op, outSize, count, 1, scale);
    t.dispose();
  }
  const out = reshapeView(flat, outShape);
  flat.dispose();
  return { out, keepShape, count };
}

/** dy (shaped like the reduction output) broadcast back to x's shape, times `scale`. */
function spread(dy: Tensor, keepShape: number[], shape: readonly number[], scale: number) {
  const v = reshapeView(dy, keepShape);
  return mapOp({ name: "reduce_spread", expr: "a * s0" }, [v], "f32", [scale], shape);
}

/** Sum over `axes` (default all; negative allowed); f32, i32 or u32. */
export function sum(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  checkDtype("sum", [x], ["f32", "i32", "u32"]);
  const { out, keepShape } = reduceCore("sum", "sum", x, axes, keepDims, false);
  return record(out, "sum", [x], gradFn((dy) => [spread(dy, keepShape, x.shape, 1)]));
}

/** Mean over `axes` (default all; negative allowed); f32. */
export function mean(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  checkDtype("mean", [x]);
  const { out, keepShape, count } = reduceCore("mean", "sum", x, axes, keepDims, true);
  return record(out, "mean", [x], gradFn((dy) => [spread(dy, keepShape, x.shape, 1 / count)]));
}

function extremum(op: "max" | "min", x: Tensor, axes?: number | number[], keepDims = false) {
  checkDtype(op, [x], ["f32", "i32", "u32"]);
  const { out, keepShape } = reduceCore(op, op, x, axes, keepDims, false);
  return record(
    out,
    op,
    [x],
    gradFn((dy) => {
      // The gradient is shared equally by the elements equal to the extremum.
      const y = reshapeView(out, keepShape);
      const mask = mapOp({ name: "reduce_argext_mask", expr: "select(0.0, 1.0, a == b)" }, [x, y]);
      const cnt = sum(mask, axes, true);
      const dyk = reshapeView(dy, keepShape);
      return [mapOp({ name: "reduce_ext_grad", expr: "a * b / c" }, [dyk, mask, cnt])];
    }),
  );
}

/** Max over `axes` (default all); the gradient goes to the maximal elements (split on ties). */
export function max(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  return extremum("max", x, axes, keepDims);
}

/** Min over `axes` (default all); the gradient goes to the minimal elements (split on ties). */
export function min(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  return extremum("min", x, axes, keepDims);
}

/**
 * Sums `x` down to `shape` (which must broadcast to x's shape): the gradient of a broadcast.
 * Returns a reshaped view when nothing needs summing.
 */
export function sumTo(x: Tensor, shape: readonly number[]): Tensor {
  const off = x.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < x.rank; i++) {
    const k = i - off;
    if (k < 0) axes.push(i);
    else if (shape[k] === 1 && x.shape[i] !== 1) axes.push(i);
    else if (shape[k] !== x.shape[i]) {
      throw new Error(`collapse: sumTo: ${x.describe()} does not reduce to ${fmtShape(shape)}`);
    }
  }
  if (off < 0) {
    throw new Error(`collapse: sumTo: ${x.describe()} does not reduce to ${fmtShape(shape)}`);
  }
  if (!axes.length) return reshape(x, shape);
  const s = sum(x, axes, false);
  if (s.rank === shape.length) return s;
  const out = reshape(s, shape);
  if (!s.node) s.dispose(); // (a recorded node must outlive the graph that uses it)
  return out;
}
