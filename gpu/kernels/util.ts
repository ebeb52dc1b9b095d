/**
 * Helpers shared by kernel files: 1-D grids that respect the 65535-workgroups-per-dimension limit,
 * the matching WGSL entry point and index expression, workgroup-memory tree reductions, uniform
 * block packing and source caching.
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

/**
 * WGSL: `@compute` attribute and `fn main(gid, nwg) {` header of a {@link grid1d} launch of
 * `wgSize`-wide workgroups, followed by the {@link linearIndex} `let i`. The caller writes the body
 * and the closing brace.
 */
export function main1d(wgSize: number): string {
  return `@compute @workgroup_size(${wgSize})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  ${linearIndex(wgSize)}`;
}

/**
 * WGSL: `@compute` attribute and `fn main(wid, nwg, lid) {` header of a one-workgroup-per-row launch
 * (grid {@link grid1d}(rows, 1)), then `let row` and the return of workgroups past `rows` (a WGSL
 * expression). The caller writes the body and the closing brace.
 */
export function mainPerRow(wgSize: number, rows: string): string {
  return `@compute @workgroup_size(${wgSize})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= ${rows}) { return; }`;
}

/** Options of {@link wgReduce}. */
export interface WgReduceOptions {
  /** WGSL of this thread's lane along the reduced axis (default `lid`). */
  lane?: string;
  /** WGSL of this thread's slot in the arrays (default `lid`). */
  at?: string;
  /** Distance in the arrays between neighbouring lanes (default 1). */
  step?: number;
  /** Combines two WGSL values (default `a + b`). */
  combine?: (a: string, b: string) => string;
}

/**
 * WGSL: tree-reduces workgroup arrays in place over `lanes` lanes (a power of 2): a barrier, then
 * halving steps each followed by a barrier; lane 0 ends holding the totals. The loop variable is
 * `stride`.
 */
export function wgReduce(arrays: string[], lanes: number, o: WgReduceOptions = {}): string {
  const lane = o.lane ?? "lid", at = o.at ?? "lid";
  const other = `${at} + stride${o.step && o.step !== 1 ? ` * ${o.step}u` : ""}`;
  const comb = o.combine ?? ((a: string, b: string) => `${a} + ${b}`);
  const lines = arrays.map((a) => `${a}[${at}] = ${comb(`${a}[${at}]`, `${a}[${other}]`)};`);
  const body = lines.length === 1 ? ` ${lines[0]} ` : `\n      ${lines.join("\n      ")}\n    `;
  return `workgroupBarrier();
  for (var stride = ${lanes / 2}u; stride > 0u; stride >>= 1u) {
    if (${lane} < stride) {${body}}
    workgroupBarrier();
  }`;
}

/** Returns `cache.get(key)`, building and storing it first when absent. */
export function cached<K, V>(cache: Map<K, V>, key: K, build: () => V): V {
  let v = cache.get(key);
  if (v === undefined) cache.set(key, v = build());
  return v;
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
