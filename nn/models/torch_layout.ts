/**
 * PyTorch <-> collapse weight layouts, for loading converted torchvision checkpoints by name.
 * collapse stores conv kernels HWIO [KH, KW, Cin, Cout] and linear weights [in, out]; PyTorch
 * stores OIHW [Cout, Cin, KH, KW] and [out, in]. Rank-4 tensors are permuted, rank-2 transposed,
 * everything else (biases, BN parameters and running statistics) is copied as is.
 * `num_batches_tracked` entries are ignored.
 * @module
 */
import { fmtShape, sizeOf, writeTensor } from "../../gpu/tensor.ts";
import type { Layer } from "../layers/layer.ts";

/** A host tensor: shape and row-major values. */
export interface HostTensor {
  shape: readonly number[];
  data: Float32Array;
}

/** Converts a PyTorch-layout tensor (OIHW / [out, in]) to collapse's (HWIO / [in, out]). */
export function torchToCollapse(t: HostTensor): HostTensor {
  const s = t.shape;
  if (t.data.length !== sizeOf(s)) {
    throw new Error(`collapse: torchToCollapse: ${t.data.length} values for ${fmtShape(s)}`);
  }
  if (s.length === 4) {
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
  if (s.length === 2) return { shape: [s[1], s[0]], data: transpose2d(t.data, s[0], s[1]) };
  return { shape: [...s], data: Float32Array.from(t.data) };
}

/** Converts a collapse-layout tensor (HWIO / [in, out]) to PyTorch's (OIHW / [out, in]). */
export function collapseToTorch(t: HostTensor): HostTensor {
  const s = t.shape;
  if (s.length === 4) {
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
  if (s.length === 2) return { shape: [s[1], s[0]], data: transpose2d(t.data, s[0], s[1]) };
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

/**
 * Copies a PyTorch-layout state dict (e.g. torchvision's resnet50 converted to safetensors) into a
 * built model's weights by name, converting layouts. Shape mismatches always throw; with
 * `strict` (default false) missing or unexpected names throw too (a new head is usually missing).
 */
export function loadTorchState(
  model: Layer,
  state: ReadonlyMap<string, HostTensor> | Record<string, HostTensor>,
  options: { strict?: boolean } = {},
): LoadReport {
  if (!model.built) {
    throw new Error(`collapse: loadTorchState: build ${model.describe()} first`);
  }
  const entries = state instanceof Map ? state : new Map(Object.entries(state));
  const report: LoadReport = { loaded: [], missing: [], unexpected: [] };
  const names = new Set<string>();
  for (const w of model.weights()) {
    names.add(w.name);
    const t = entries.get(w.name);
    if (!t) {
      report.missing.push(w.name);
      continue;
    }
    const c = torchToCollapse(t);
    const same = c.shape.length === w.value.shape.length &&
      c.shape.every((d, i) => d === w.value.shape[i]);
    if (!same) {
      throw new Error(
        `collapse: loadTorchState: '${w.name}' is ${fmtShape(w.value.shape)} in the model but ${
          fmtShape(t.shape)
        } (torch layout) -> ${fmtShape(c.shape)} in the state dict`,
      );
    }
    writeTensor(w.value, c.data);
    report.loaded.push(w.name);
  }
  for (const k of entries.keys()) {
    if (!names.has(k) && !k.endsWith("num_batches_tracked")) report.unexpected.push(k);
  }
  if (options.strict && (report.missing.length || report.unexpected.length)) {
    throw new Error(
      `collapse: loadTorchState: missing [${report.missing.join(", ")}], unexpected [${
        report.unexpected.join(", ")
      }]`,
    );
  }
  return report;
}
