/** Tensor element types and their typed-array views. @module */

/** Element type of a tensor. */
export type DType = "f32" | "i32" | "u32";

/** The typed array holding a tensor's data on the host. */
export type TypedArrayFor<D extends DType> = D extends "f32" ? Float32Array
  : D extends "i32" ? Int32Array
  : Uint32Array;

/** Any of the host arrays a tensor can be read into. */
export type HostArray = Float32Array | Int32Array | Uint32Array;

/** Creates the typed array for a dtype over a buffer. */
export function viewFor(
  dtype: DType,
  buffer: ArrayBufferLike,
  offset = 0,
  length?: number,
): HostArray {
  switch (dtype) {
    case "f32":
      return new Float32Array(buffer, offset, length);
    case "i32":
      return new Int32Array(buffer, offset, length);
    case "u32":
      return new Uint32Array(buffer, offset, length);
  }
}

/** The dtype of a host array. */
export function dtypeOf(a: HostArray): DType {
  if (a instanceof Float32Array) return "f32";
  if (a instanceof Int32Array) return "i32";
  return "u32";
}
