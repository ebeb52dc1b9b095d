/**
 * Shape ops and their gradients: reshape/flatten (views), detach, transpose, slice, pad and concat
 * (broadcastTo, whose gradient is a reduction, is in ./broadcast.ts, so this file does not depend on
 * ./reduce.ts, which depends on it). Data movement is one strided-copy dispatch per op (per input
 * for concat), see ../kernels/strided_map.ts.
 * @module
 */
import { record } from "../autograd.ts";
import { engine } from "../engine.ts";
import { stridedMapLaunch } from "../kernels/strided_map.ts";
import { empty, fmtShape, reshapeView, type Tensor } from "../tensor.ts";
import { full } from "./creation.ts";
import { contiguousStrides, gradFn } from "./op_util.ts";

/** Copies `x` into the region of `out` that starts at element `offset` (same rank). */
function copyInto(out: Tensor, offset: number, x: Tensor, name: string): void {
  if (x.size === 0) return;
  engine().dispatch(stridedMapLaunch(
    { name, expr: "a" },
    { t: out, offset, strides: contiguousStrides(out.shape) },
    [{ t: x, offset: 0, strides: contiguousStrides(x.shape) }],
    [...x.shape],
  ));
}

/** A view with another shape of the same size (one dimension may be -1); no copy. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  if (shape.filter((d) => d === -1).length > 1) {
    throw new Error(`collapse: reshape: more than one -1 in ${fmtShape(shape)}`);
  }
  const v = reshapeView(x, shape);
  return record(v, "reshape", [x], gradFn((dy) => [reshapeView(dy, x.shape)]));
}

/** [N, ...] -> [N, product of the rest]. */
export function flatten(x: Tensor): Tensor {
  if (x.rank < 1) throw new Error(`collapse: flatten: ${x.describe()} has no batch dimension`);
  return reshape(x, [x.shape[0], x.size === 0 ? 0 : x.size / Math.max(1, x.shape[0])]);
}

/** A view of `x` that gradients do not flow through. */
export function detach(x: Tensor): Tensor {
  return reshapeView(x, x.shape);
}

/** Permutes dimensions (default: reversed). */
export function transpose(x: Tensor, perm?: number[]): Tensor {
  const p = perm ?? x.shape.map((_, i) => x.rank - 1 - i);
  const sorted = [...p].sort((a, b) => a - b);
  if (p.length !== x.rank || sorted.some((v, i) => v !== i)) {
    throw new Error(
      `collapse: transpose: [${p.join(", ")}] is not a permutation for ${x.describe()}`,
    );
  }
  const shape = p.map((i) => x.shape[i]);
  const out = empty(shape, x.dtype);
  if (out.size) {
    const src = contiguousStrides(x.shape);
    engine().dispatch(stridedMapLaunch(
      { name: "transpose", expr: "a" },
      { t: out, offset: 0, strides: contiguousStrides(shape) },
      [{ t: x, offset: 0, strides: p.map((i) => src[i]) }],
      shape,
    ));
  }
  const inv = new Array(p.length);
  p.forEach((v, i) => (inv[v] = i));
  return record(out, "transpose", [x], gradFn((dy) => [transpose(dy, inv)]));
}

/** The block of `x` starting at `begin` with extent `size` per dimension (-1: to the end). */
export function slice(x: Tensor, begin: number[], size: number[]): Tensor {
  if (begin.length !== x.rank || size.length !== x.rank) {
    throw new Error(
      `collapse: slice: begin [${begin}] and size [${size}] must have rank ${x.rank} for ${x.describe()}`,
    );
  }
  const sz = size.map((s, i) => (s === -1 ? x.shape[i] - begin[i] : s));
  for (let i = 0; i < x.rank; i++) {
    if (
      !Number.isInteger(begin[i]) || !Number.isInteger(sz[i]) || begin[i] < 0 || sz[i] < 0 ||
      begin[i] + sz[i] > x.shape[i]
    ) {
      throw new Error(
        `collapse: slice: begin [${begin}] size [${size}] out of range for ${x.describe()}`,
      );
    }
  }
  const out = empty(sz, x.dtype);
  const src = contiguousStrides(x.shape);
  if (out.size) {
    engine().dispatch(stridedMapLaunch(
      { name: "slice", expr: "a" },
      { t: out, offset: 0, strides: contiguousStrides(sz) },
      [{ t: x, offset: begin.reduce((s, b, i) => s + b * src[i], 0), strides: src }],
      sz,
    ));
  }
  return record(
    out,
    "slice",
    [x],
    gradFn((dy) => [
      pad(dy, begin.map((b, i) => [b, x.shape[i] - b - sz[i]] as [number, number])),
    ]),
  );
}

/** Pads each dimension with `[before, after]` elements of `value`. */
export function pad(x: Tensor, paddings: [number, number][], value = 0): Tensor {
  if (
    paddings.length !== x.rank ||
    paddings.some((p) => p.length !== 2 || p.some((v) => !Number.isInteger(v) || v < 0))
  ) {
    throw new Error(
      `collapse: pad: paddings ${JSON.stringify(paddings)} invalid for ${x.describe()} ` +
        "(one [before, after] pair of non-negative integers per dimension)",
    );
  }
  const shape = x.shape.map((d, i) => d + paddings[i][0] + paddings[i][1]);
  const out = full(shape, value, x.dtype);
  const os = contiguousStrides(shape);
  copyInto(out, paddings.reduce((s, p, i) => s + p[0] * os[i], 0), x, "pad");
  return record(
    out,
    "pad",
    [x],
    gradFn((dy) => [slice(dy, paddings.map((p) => p[0]), [...x.shape])]),
  );
}

/** Joins tensors along `axis` (negative allowed); other dimensions must match. */
export function concat(xs: Tensor[], axis = 0): Tensor {
  if (!xs.length) throw new Error("collapse: concat: no tensors");
  const r = xs[0].rank;
  const ax = axis < 0 ? axis + r : axis;
  if (!Number.isInteger(ax) || ax < 0 || ax >= r) {
    throw new Error(`collapse: concat: axis ${axis} out of range for rank ${r}`);
  }
  for (const t of xs) {
    if (
      t.rank !== r || t.dtype !== xs[0].dtype ||
      t.shape.some((d, i) => i !== ax && d !== xs[0].shape[i])
    ) {
      throw new Error(
        `collapse: concat: ${
          xs.map((t) => t.describe()).join(", ")
        } do not match except on axis ${ax}`,
      );
    }
  }
  const shape = [...xs[0].shape];
  shape[ax] = xs.reduce((s, t) => s + t.shape[ax], 0);
  const out = empty(shape, xs[0].dtype);
  const os = contiguousStrides(shape);
  const starts: number[] = [];
  let at = 0;
  for (const t of xs) {
    starts.push(at);
    copyInto(out, at * os[ax], t, "concat");
    at += t.shape[ax];
  }
  return record(
    out,
    "concat",
    xs,
    gradFn((dy) =>
      xs.map((t, j) => {
        const b = shape.map((_, i) => (i === ax ? starts[j] : 0));
        return slice(dy, b, [...t.shape]);
      })
    ),
  );
}
