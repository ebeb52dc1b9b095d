/**
 * PyTorch <-> collapse weight layouts, for loading converted torchvision checkpoints by name.
 * collapse stores conv kernels HWIO [KH, KW, Cin, Cout] and linear weights [in, out]; PyTorch
 * stores OIHW [Cout, Cin, KH, KW] and [out, in]. Each weight says which it is (`Weight.layout`):
 * conv kernels are permuted, linear kernels transposed, everything else (biases, BN parameters and
 * running statistics, the fixed ETF matrix) is copied as is. `num_batches_tracked` entries are
 * ignored on load.
 * @module
 */
import { fmtShape, sizeOf, writeTensor } from "../../gpu/tensor.ts";
import type { Layer } from "../layers/layer.ts";
import { checkOptions, type OptionKeys, optionKeys } from "../options.ts";
import type { Weight, WeightLayout } from "../types.ts";

/** A host tensor: shape and row-major values. */
export interface HostTensor {
  shape: readonly number[];
  data: Float32Array;
}

/**
 * Converts a PyTorch-layout tensor to collapse's: with `layout` "conv_hwio" OIHW -> HWIO, with
 * "dense_in_out" [out, in] -> [in, out], with none a copy. Without the argument the rank decides
 * (rank 4: a conv kernel, rank 2: a linear kernel), for state dicts of plain conv/linear stacks.
 */
export function torchToCollapse(t: HostTensor, layout?: WeightLayout | null): HostTensor {
  const s = t.shape;
  if (t.data.length !== sizeOf(s)) {
    throw new Error(`collapse: torchToCollapse: ${t.data.length} values for ${fmtShape(s)}`);
  }
  const kind = layout === undefined ? rankLayout(s) : layout;
  if (kind === "conv_hwio" && s.length !== 4) {
    throw new Error(`collapse: torchToCollapse: a conv kernel must be OIHW, got ${fmtShape(s)}`);
  }
  if (kind === "dense_in_out" && s.length !== 2) {
    throw new Error(`collapse: torchToCollapse: a linear kernel must be 2-D, got ${fmtShape(s)}`);
  }
  if (kind === "conv_hwio") {
    const [o, i, kh, kw] = s;
    const out = new Float32Array(t.data.length);
    for (let a = 0; a < o; a++) {
      for (let b = 0; b < i; b++) {
        for (let y = 0; y < kh; y++) {
          for (let x = 0; x < kw; x++) {
            out[((y * kw + x) * i + b) * o + a] = t.data[((a * i + b) * kh + y) * kw + x];
          }
        }
      }
    }
    return { shape: [kh, kw, i, o], data: out };
  }
  if (kind === "dense_in_out") {
    return { shape: [s[1], s[0]], data: transpose2d(t.data, s[0], s[1]) };
  }
  return { shape: [...s], data: Float32Array.from(t.data) };
}

function rankLayout(s: readonly number[]): WeightLayout | null {
  return s.length === 4 ? "conv_hwio" : s.length === 2 ? "dense_in_out" : null;
}

/**
 * Converts a collapse-layout tensor to PyTorch's: "conv_hwio" HWIO -> OIHW, "dense_in_out"
 * [in, out] -> [out, in], none: a copy (without the argument, the rank decides, as
 * {@link torchToCollapse}).
 */
export function collapseToTorch(t: HostTensor, layout?: WeightLayout | null): HostTensor {
  const s = t.shape;
  const kind = layout === undefined ? rankLayout(s) : layout;
  if (kind === "conv_hwio" && s.length === 4) {
    const [kh, kw, i, o] = s;
    const out = new Float32Array(t.data.length);
    for (let y = 0; y < kh; y++) {
      for (let x = 0; x < kw; x++) {
        for (let b = 0; b < i; b++) {
          for (let a = 0; a < o; a++) {
            out[((a * i + b) * kh + y) * kw + x] = t.data[((y * kw + x) * i + b) * o + a];
          }
        }
      }
    }
    return { shape: [o, i, kh, kw], data: out };
  }
  if (kind === "dense_in_out" && s.length === 2) {
    return { shape: [s[1], s[0]], data: transpose2d(t.data, s[0], s[1]) };
  }
  return { shape: [...s], data: Float32Array.from(t.data) };
}

function transpose2d(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

/** What {@link loadTorchState} did. */
export interface LoadReport {
  loaded: string[];
  /** Model weights with no entry in the state dict. */
  missing: string[];
  /** State-dict entries that match no model weight (num_batches_tracked excluded). */
  unexpected: string[];
}

/** Options of {@link loadTorchState}. */
export interface LoadTorchStateOptions {
  /** Missing or unexpected names throw too (default false: a new head is usually missing). */
  strict?: boolean;
}

const LOAD_KEYS: OptionKeys = optionKeys<LoadTorchStateOptions>({ strict: true });

/**
 * Copies a PyTorch-layout state dict (e.g. torchvision's resnet50 converted to safetensors) into a
 * built model's weights by name, converting each weight's layout. Shape mismatches always throw;
 * with `strict` (default false) missing or unexpected names throw too.
 */
export function loadTorchState(
  model: Layer,
  state: ReadonlyMap<string, HostTensor> | Record<string, HostTensor>,
  options: LoadTorchStateOptions = {},
): LoadReport {
  checkOptions("loadTorchState()", options, LOAD_KEYS);
  options ??= {};
  if (!model.built) {
    throw new Error(`collapse: loadTorchState: build ${model.describe()} first`);
  }
  const entries = state instanceof Map ? state : new Map(Object.entries(state));
  const report: LoadReport = { loaded: [], missing: [], unexpected: [] };
  const names = new Set<string>();
  const writes: { w: Weight; data: Float32Array }[] = [];
  const bad: string[] = [];
  for (const w of model.weights()) {
    names.add(w.name);
    const t = entries.get(w.name);
    if (!t) {
      report.missing.push(w.name);
      continue;
    }
    const c = torchToCollapse(t, w.layout ?? null);
    const same = c.shape.length === w.value.shape.length &&
      c.shape.every((d, i) => d === w.value.shape[i]);
    if (!same) {
      bad.push(
        `'${w.name}' is ${fmtShape(w.value.shape)} in the model but ${
          fmtShape(t.shape)
        } (torch layout) -> ${fmtShape(c.shape)} in the state dict`,
      );
      continue;
    }
    writes.push({ w, data: c.data });
    report.loaded.push(w.name);
  }
  for (const k of entries.keys()) {
    if (!names.has(k) && !k.endsWith("num_batches_tracked")) report.unexpected.push(k);
  }
  const problems = [...bad];
  if (options.strict && report.missing.length) {
    problems.push(`missing [${report.missing.join(", ")}]`);
  }
  if (options.strict && report.unexpected.length) {
    problems.push(`unexpected [${report.unexpected.join(", ")}]`);
  }
  if (problems.length) {
    throw new Error(`collapse: loadTorchState: ${problems.join("; ")} (nothing was loaded)`);
  }
  for (const { w, data } of writes) writeTensor(w.value, data);
  return report;
}
