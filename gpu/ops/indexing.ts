/**
 * Indexing ops: gather along an axis (differentiable: the gradient scatter-adds back), one-hot
 * encoding and argmax.
 * @module
 */
import { record } from "../autograd.ts";
import { engine } from "../engine.ts";
import { argmaxLaunch } from "../kernels/argmax.ts";
import { gatherGradLaunch, gatherLaunch } from "../kernels/gather.ts";
import { oneHotLaunch } from "../kernels/one_hot.ts";
import { empty, sizeOf, type Tensor } from "../tensor.ts";
import { checkDtype } from "./op_util.ts";
import { transpose } from "./shape.ts";

function normAxis(op: string, x: Tensor, axis: number): number {
  const ax = axis < 0 ? axis + x.rank : axis;
  if (!Number.isInteger(ax) || ax < 0 || ax >= x.rank) {
    throw new Error(`collapse: ${op}: axis ${axis} out of range for ${x.describe()}`);
  }
  return ax;
}

/**
 * Picks slices of `x` along `axis` at `indices` (i32, any shape): the result has shape
 * x.shape[:axis] + indices.shape + x.shape[axis+1:]. Indices are checked on the GPU: one outside
 * [0, D) reads 0 and makes the next readback (or `engine().sync()`) throw an error naming it.
 * Works for any dtype; f32 inputs get a gradient (summed over repeated indices).
 */
export function gather(x: Tensor, indices: Tensor, axis = 0): Tensor {
  checkDtype("gather", [indices], ["i32"]);
  const ax = normAxis("gather", x, axis);
  const D = x.shape[ax];
  const I = sizeOf(x.shape.slice(ax + 1));
  const J = indices.size;
  const shape = [...x.shape.slice(0, ax), ...indices.shape, ...x.shape.slice(ax + 1)];
  const out = empty(shape, x.dtype);
  const dims = { D, J, I, axis: ax };
  if (out.size) engine().dispatch(gatherLaunch(x, indices, out, dims));
  return record(out, "gather", [x, null], (dy) => {
    const dx = empty(x.shape, "f32");
    if (dx.size) engine().dispatch(gatherGradLaunch(dy, indices, dx, dims));
    return [dx, null];
  });
}

/**
 * One-hot rows: f32 [N, depth] with 1 at labels[n] (labels: i32 [N]). A label outside [0, depth)
 * gives a row of zeros and makes the next readback throw an error naming it.
 */
export function oneHot(labels: Tensor, depth: number): Tensor {
  checkDtype("oneHot", [labels], ["i32"]);
  if (labels.rank !== 1) {
    throw new Error(`collapse: oneHot: labels ${labels.describe()} must be [N]`);
  }
  if (!Number.isInteger(depth) || depth < 1) {
    throw new Error(`collapse: oneHot: depth ${depth} must be a positive integer`);
  }
  const out = empty([labels.shape[0], depth]);
  if (out.size) engine().dispatch(oneHotLaunch(labels, out, depth));
  return out;
}

/** Index (i32) of the largest element along `axis` (first on ties); the axis is removed. */
export function argmax(x: Tensor, axis = -1): Tensor {
  checkDtype("argmax", [x], ["f32", "i32", "u32"]);
  const ax = normAxis("argmax", x, axis);
  const K = x.shape[ax];
  if (K === 0) throw new Error(`collapse: argmax: empty axis in ${x.describe()}`);
  const shape = x.shape.filter((_, i) => i !== ax);
  let src = x;
  if (ax !== x.rank - 1) {
    const perm = [...x.shape.keys()].filter((i) => i !== ax);
    src = transpose(x, [...perm, ax]);
  }
  const out = empty(shape, "i32");
  if (out.size) engine().dispatch(argmaxLaunch(src, out, out.size, K));
  if (src !== x) src.dispose();
  return out;
}
