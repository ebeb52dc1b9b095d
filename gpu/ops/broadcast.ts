/**
 * broadcastTo: a tensor repeated to a larger shape (numpy rules) as one strided-copy dispatch; its
 * gradient sums back with ./reduce.ts `sumTo`.
 * @module
 */
import { record } from "../autograd.ts";
import type { MapKernel } from "../kernels/strided_map.ts";
import type { Tensor } from "../tensor.ts";
import { gradFn, mapOp } from "./op_util.ts";
import { sumTo } from "./reduce.ts";

const COPY: MapKernel = { name: "copy", expr: "a" };

/** Broadcasts `x` to `shape` (numpy rules) as a new tensor; the gradient sums back. */
export function broadcastTo(x: Tensor, shape: readonly number[]): Tensor {
  const out = mapOp(COPY, [x], x.dtype, [], shape);
  return record(out, "broadcastTo", [x], gradFn((dy) => [sumTo(dy, x.shape)]));
}
