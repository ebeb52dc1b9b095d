/**
 * Helpers shared by kernel files: 1-D grids that respect the 65535-workgroups-per-dimension limit,
 * the matching WGSL index expression, and uniform block packing.
 * @module
 */

/** Workgroup counts covering `n` invocations of a `wgSize`-wide 1-D kernel, split over x and y. */
export function grid1d(n: number, wgSize: number): [number, number, number] {
  const groups = Math.ceil(n / wgSize);
  if (groups <= 65535) return [groups, 1, 1];
  const y = Math.ceil(groups / 65535);
  return [Math.ceil(groups / y), y, 1];
}

/**
 * WGSL: declares `let i: u32` = the linear invocation index of a {@link grid1d} launch. Requires the
 * entry point to take `@builtin(global_invocation_id) gid: vec3<u32>` and
 * `@builtin(num_workgroups) nwg: vec3<u32>`.
 */
export function linearIndex(wgSize: number): string {
  return `let i = gid.x + gid.y * nwg.x * ${wgSize}u;`;
}

/** A uniform field: `["u32", 3]`, `["i32", -1]` or `["f32", 0.5]`. */
export type UniformField = ["u32" | "i32" | "f32", number];

/** Packs uniform fields (each 4 bytes, in order) into a buffer; pads to 16 bytes. */
export function packUniforms(fields: UniformField[]): Uint32Array {
  const n = Math.max(4, Math.ceil(fields.length / 4) * 4);
  const buf = new ArrayBuffer(n * 4);
  const dv = new DataView(buf);
  fields.forEach(([t, v], i) => {
    if (t === "f32") dv.setFloat32(i * 4, v, true);
    else if (t === "i32") dv.setInt32(i * 4, v, true);
    else dv.setUint32(i * 4, v, true);
  });
  return new Uint32Array(buf);
}

/** The WGSL scalar type for a dtype. */
export function wgslType(dtype: "f32" | "i32" | "u32"): string {
  return dtype;
}
