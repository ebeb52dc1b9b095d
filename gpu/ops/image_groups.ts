/**
 * Splitting a batch of NHWC images into groups whose tensors each fit one binding
 * (`maxStorageBufferBindingSize`: 128 MiB on lavapipe, less than DenseNet-BC-150's first dense
 * block at batch 128): the groups, per-group views of a tensor (no copy; the group starts give
 * aligned binding offsets), and per-group copies for tensors whose rows do not align (pooled
 * outputs). Used by the dense-concatenation ops (./dense_concat.ts, ./preact_conv.ts).
 * @module
 */
import { gpu } from "../device.ts";
import { engine } from "../engine.ts";
import { empty, reshapeView, type Tensor, viewOf } from "../tensor.ts";

/**
 * The largest binding the dense-concatenation ops make, in bytes (null: the device's
 * `maxStorageBufferBindingSize`). Tests lower it to run the split-batch path at small sizes.
 */
export const denseConcatLimits: { maxBindingBytes: number | null } = { maxBindingBytes: null };

/** The batch split into groups of images whose tensors each fit one binding. */
export interface Geometry {
  /** Images in the batch. */
  n: number;
  /** Image height. */
  h: number;
  /** Image width. */
  w: number;
  /** First image and image count of each group. */
  groups: { start: number; count: number }[];
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** The image groups of an [n, h, w, *] batch whose widest tensor has `widest` channels. */
export function geometry(op: string, n: number, h: number, w: number, widest: number): Geometry {
  const limit = denseConcatLimits.maxBindingBytes ??
    gpu().device.limits.maxStorageBufferBindingSize;
  const perImage = h * w * widest * 4;
  // Group starts must give binding offsets aligned to the device's storage offset alignment.
  const unit = Math.max(1, gpu().storageAlign / 4);
  const align = unit / gcd(h * w, unit);
  let per = Math.min(n, Math.floor(limit / perImage));
  if (per < n) per = Math.floor(per / align) * align;
  if (per < 1) {
    throw new Error(
      `collapse: ${op}: ${align} image(s) of ${h}x${w}x${widest} floats exceed the ` +
        `${limit}-byte binding limit; use smaller images`,
    );
  }
  const groups = [];
  for (let s = 0; s < n; s += per) groups.push({ start: s, count: Math.min(per, n - s) });
  return { n, h, w, groups };
}

/** Per group, a view [count, H, W, C] of t [N, H, W, C] (views own nothing; dispose them). */
export function views(t: Tensor, geo: Geometry): Tensor[] {
  const c = t.shape[3], hw = geo.h * geo.w;
  return geo.groups.map((g) => viewOf(t.storage, g.start * hw * c, [g.count, geo.h, geo.w, c]));
}

/** Rows (pixels) of group k. */
export function rowsOf(geo: Geometry, k: number): number {
  return geo.groups[k].count * geo.h * geo.w;
}

/** Disposes every tensor. */
export function disposeAll(ts: Iterable<Tensor>): void {
  for (const t of ts) t.dispose();
}

/** One tensor [N, ...] from per-group parts [count, ...] (copies, no binding of the whole). */
export function assemble(parts: Tensor[], geo: Geometry, shape: number[]): Tensor {
  if (parts.length === 1) return parts[0];
  const out = empty(shape, "f32", "preact_out");
  const perImage = out.size / geo.n;
  parts.forEach((t, k) =>
    engine().copy(t.storage, out.storage, t.size * 4, 0, geo.groups[k].start * perImage * 4)
  );
  disposeAll(parts);
  return out;
}

/** Per-group copies [count, ...] of t [N, ...] (a view when there is one group). */
export function split(t: Tensor, geo: Geometry): Tensor[] {
  if (geo.groups.length === 1) return [reshapeView(t, t.shape)];
  const perImage = t.size / geo.n;
  return geo.groups.map((g) => {
    const part = empty([g.count, ...t.shape.slice(1)], "f32", "preact_part");
    engine().copy(t.storage, part.storage, part.size * 4, g.start * perImage * 4, 0);
    return part;
  });
}
