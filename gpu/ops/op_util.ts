/**
 * Shared helpers for the op files: contiguous strides, numpy broadcasting, axis normalisation,
 * dtype checks, the generic strided map op ({@link mapOp}) and the wrapper that runs a backward
 * function without recording and frees its temporaries ({@link gradFn}).
 * @module
 */
import { noGrad } from "../autograd.ts";
import type { DType } from "../dtype.ts";
import { engine } from "../engine.ts";
import { type MapKernel, stridedMapLaunch } from "../kernels/strided_map.ts";
import { tidy } from "../scope.ts";
import { empty, fmtShape, type Tensor } from "../tensor.ts";

/** Row-major element strides of a shape. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

/** The numpy broadcast of several shapes; throws naming `op` when they do not broadcast. */
export function broadcastShapes(op: string, ...shapes: (readonly number[])[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    let d = 1;
    for (const s of shapes) {
      const k = s.length - rank + i;
      const v = k >= 0 ? s[k] : 1;
      if (v === 1) continue;
      if (d !== 1 && d !== v) {
        throw new Error(
          `collapse: ${op}: shapes ${shapes.map(fmtShape).join(" and ")} do not broadcast`,
        );
      }
      d = v;
    }
    out.push(d);
  }
  return out;
}

/** Strides that read `inShape` broadcast to `outShape` (0 on broadcast dimensions). */
export function broadcastStrides(inShape: readonly number[], outShape: readonly number[]) {
  const cs = contiguousStrides(inShape);
  const off = outShape.length - inShape.length;
  return outShape.map((_d, i) => {
    const k = i - off;
    if (k < 0 || inShape[k] === 1) return 0;
    return cs[k];
  });
}

/** Normalises possibly negative axes for a rank, checking range and duplicates. */
export function normAxes(op: string, axes: number | number[] | undefined, rank: number): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === "number" ? [axes] : axes;
  const out = list.map((a) => {
    if (!Number.isInteger(a) || a < -rank || a >= Math.max(rank, 1)) {
      throw new Error(`collapse: ${op}: axis ${a} out of range for rank ${rank}`);
    }
    return a < 0 ? a + rank : a;
  });
  if (new Set(out).size !== out.length) {
    throw new Error(`collapse: ${op}: repeated axis in [${list.join(", ")}]`);
  }
  return out.sort((a, b) => a - b);
}

/** Throws unless every tensor has one of the allowed dtypes. */
export function checkDtype(op: string, ts: Tensor[], allowed: DType[] = ["f32"]): void {
  for (const t of ts) {
    if (!allowed.includes(t.dtype)) {
      throw new Error(
        `collapse: ${op}: ${t.describe()} has dtype ${t.dtype}; expected ${allowed.join(" or ")}`,
      );
    }
  }
}

/**
 * Elementwise `out = expr(a, b, ...)` with numpy broadcasting of the inputs to `outShape`
 * (default: their broadcast shape). No gradient is recorded: the building block of the ops.
 */
export function mapOp(
  k: MapKernel,
  inputs: Tensor[],
  outDtype: DType = "f32",
  scalars: number[] = [],
  outShape?: readonly number[],
): Tensor {
  const shape = outShape ? [...outShape] : broadcastShapes(k.name, ...inputs.map((t) => t.shape));
  if (outShape) {
    const b = broadcastShapes(k.name, shape, ...inputs.map((t) => t.shape));
    if (b.join(",") !== shape.join(",")) {
      throw new Error(
        `collapse: ${k.name}: cannot broadcast ${
          inputs.map((t) => fmtShape(t.shape)).join(", ")
        } to ${fmtShape(shape)}`,
      );
    }
  }
  const out = empty(shape, outDtype);
  if (out.size === 0) return out;
  engine().dispatch(stridedMapLaunch(
    k,
    { t: out, offset: 0, strides: contiguousStrides(shape) },
    inputs.map((t) => ({ t, offset: 0, strides: broadcastStrides(t.shape, shape) })),
    shape,
    scalars,
  ));
  return out;
}

/**
 * Wraps a backward function: runs it without recording gradients, inside a scope that frees its
 * temporaries (the returned gradients survive).
 */
export function gradFn(
  fn: (dy: Tensor) => (Tensor | null)[],
): (dy: Tensor) => (Tensor | null)[] {
  return (dy) => noGrad(() => tidy(() => fn(dy)));
}
