/**
 * PyTorch state dicts as safetensors files: {@link exportTorchStateDict} writes a model's weights
 * under their (torch-style) dotted names in PyTorch's layouts (conv kernels OIHW, linear weights
 * [out, in]; see ./torch_layout.ts), with an I64 `num_batches_tracked` scalar next to every
 * BatchNorm, so that `model.load_state_dict(safetensors.torch.load_file(path))` takes it with
 * strict checking; {@link importTorchStateDict} reads such a file (e.g. written by
 * `safetensors.torch.save_file(model.state_dict(), path)`) back, converting layouts.
 * @module
 */
import { readAll } from "../../gpu/tensor.ts";
import {
  readSafetensorsFile,
  type SafetensorsInput,
  writeSafetensorsFile,
} from "../io/safetensors.ts";
import { BatchNormalization } from "../layers/batch_normalization.ts";
import type { Layer } from "../layers/layer.ts";
import { checkOptions, type OptionKeys, optionKeys } from "../options.ts";
import {
  collapseToTorch,
  type HostTensor,
  type LoadReport,
  loadTorchState,
} from "./torch_layout.ts";

/** Options of {@link exportTorchStateDict} / {@link torchStateDict}. */
export interface ExportTorchOptions {
  /**
   * The value of every BatchNorm's `num_batches_tracked` (default 0). PyTorch reads it only for
   * BatchNorm layers built with `momentum=None` (a cumulative average); collapse does not count
   * batches, so give the number of training steps if that matters.
   */
  numBatchesTracked?: number;
}

/** Options of {@link importTorchStateDict}. */
export interface ImportTorchOptions {
  /**
   * Every model weight must be in the file and every tensor of the file (but
   * `num_batches_tracked`) in the model (default true, as `load_state_dict`).
   */
  strict?: boolean;
}

const EXPORT_KEYS: OptionKeys = optionKeys<ExportTorchOptions>({ numBatchesTracked: true });
const IMPORT_KEYS: OptionKeys = optionKeys<ImportTorchOptions>({ strict: true });

function batchNorms(root: Layer): BatchNormalization[] {
  const out: BatchNormalization[] = [];
  const seen = new Set<Layer>();
  const visit = (l: Layer) => {
    if (seen.has(l)) return;
    seen.add(l);
    if (l instanceof BatchNormalization) out.push(l);
    for (const c of l.sublayers.values()) visit(c);
  };
  visit(root);
  return out;
}

/**
 * The model's state dict in PyTorch's layout, as safetensors inputs by name (in the model's weight
 * order, each BatchNorm followed by its `num_batches_tracked`). One GPU round trip.
 */
export async function torchStateDict(
  model: Layer,
  options: ExportTorchOptions = {},
): Promise<Record<string, SafetensorsInput>> {
  checkOptions("torchStateDict()", options, EXPORT_KEYS);
  if (!model.built) {
    throw new Error(`collapse: exportTorchStateDict: build ${model.describe()} first`);
  }
  const tracked = options?.numBatchesTracked ?? 0;
  if (!(Number.isSafeInteger(tracked) && tracked >= 0)) {
    throw new Error(`collapse: exportTorchStateDict: numBatchesTracked must be an integer >= 0`);
  }
  const weights = model.weights();
  const host = await readAll(weights.map((w) => w.value));
  const afterBn = new Map<string, string>();
  for (const bn of batchNorms(model)) {
    const rv = bn.runningVar?.name;
    if (rv) afterBn.set(rv, rv.replace(/running_var$/, "num_batches_tracked"));
  }
  const out: Record<string, SafetensorsInput> = {};
  weights.forEach((w, i) => {
    if (w.value.dtype !== "f32") {
      throw new Error(`collapse: exportTorchStateDict: '${w.name}' is ${w.value.dtype}, not f32`);
    }
    const t = collapseToTorch(
      { shape: w.value.shape, data: host[i] as Float32Array },
      w.layout ?? null,
    );
    out[w.name] = { dtype: "F32", shape: t.shape, data: t.data };
    const nbt = afterBn.get(w.name);
    if (nbt) {
      out[nbt] = { dtype: "I64", shape: [], data: new BigInt64Array([BigInt(tracked)]) };
    }
  });
  return out;
}

/**
 * Writes the model's weights as a PyTorch state dict in safetensors format (atomically), loadable
 * with `model.load_state_dict(safetensors.torch.load_file(path))` into the same architecture
 * written in PyTorch (names are collapse's weight paths: torchvision's for ResNet-50).
 *
 * @example
 * ```ts ignore
 * const model = resnet50({ numClasses: 1000 });
 * model.build([-1, 224, 224, 3]);
 * await exportTorchStateDict(model, "resnet50.safetensors");
 * ```
 */
export async function exportTorchStateDict(
  model: Layer,
  path: string,
  options: ExportTorchOptions = {},
): Promise<void> {
  await writeSafetensorsFile(path, await torchStateDict(model, options), { format: "pt" });
}

/**
 * Loads a PyTorch state dict from a safetensors file into a built model by name, converting
 * layouts (OIHW -> HWIO, [out, in] -> [in, out]); `num_batches_tracked` is skipped. Validates
 * everything before writing: shape mismatches, and with `strict` (default) missing or unexpected
 * names, throw one error naming them.
 */
export async function importTorchStateDict(
  model: Layer,
  path: string,
  options: ImportTorchOptions = {},
): Promise<LoadReport> {
  checkOptions("importTorchStateDict()", options, IMPORT_KEYS);
  const file = await readSafetensorsFile(path, { int64: "bigint" });
  const state = new Map<string, HostTensor>();
  for (const [name, t] of Object.entries(file.tensors)) {
    if (name.endsWith("num_batches_tracked")) continue;
    if (t.data instanceof BigInt64Array || t.dtype === "I32" || t.dtype === "U8") {
      throw new Error(
        `collapse: importTorchStateDict: ${path}: '${name}' is ${t.dtype}, not float`,
      );
    }
    state.set(name, { shape: t.shape, data: Float32Array.from(t.data as ArrayLike<number>) });
  }
  try {
    return loadTorchState(model, state, { strict: options?.strict ?? true });
  } catch (e) {
    throw new Error(`${(e as Error).message} (${path})`, { cause: e });
  }
}
