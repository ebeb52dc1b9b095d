/**
 * Training checkpoints as safetensors files, written atomically: every model weight by its dotted
 * name (trainable and not: BN running statistics and the fixed ETF M included), the optimizer state
 * per parameter (`optimizer/<state>.<param>`, plus scalars such as `optimizer/step`), and in
 * `__metadata__`: format, epochs completed, seed, RNG state, the run config, the model's input
 * shape, the optimizer config and caller extras (JSON). Loading validates names, shapes and dtypes
 * against the model and reports every mismatch (missing, unexpected, shape, dtype) at once.
 * The file carries the CRC-32 of its tensor data (safetensors `__metadata__`), verified on every
 * read: a damaged checkpoint is refused with an error naming the file.
 * @module
 */
import type { DType } from "../gpu/dtype.ts";
import { readAll, type Tensor, writeTensor } from "../gpu/tensor.ts";
import {
  type DecodedData,
  decodeSafetensors,
  parseSafetensorsHeader,
  type SafetensorsDtype,
  type SafetensorsInput,
  verifySafetensorsChecksum,
  writeSafetensorsFile,
} from "./io/safetensors.ts";
import type { Optimizer, OptimizerStateEntry } from "./optimizers/optimizer.ts";
import { checkOptions, type OptionKeys, optionKeys } from "./options.ts";
import type { Trainable, Weight } from "./types.ts";

/** Tensor-name prefix of optimizer state entries. */
export const OPTIMIZER_PREFIX = "optimizer/";
const FORMAT = "collapse-checkpoint";

/** What {@link saveCheckpoint} stores besides the weights. */
export interface SaveCheckpointOptions {
  /** Its state is saved (per parameter) when given. */
  optimizer?: Optimizer | null;
  /** Epochs completed (resume with `initialEpoch: epoch`). Default 0. */
  epoch?: number;
  /** The run's seed. */
  seed?: number;
  /** An RNG state (`Rng.getState()`), if the run keeps one across epochs. */
  rngState?: number[];
  /** The run configuration (any JSON). */
  config?: unknown;
  /** Input shape to rebuild the model with on load (default: the model's `inputShape`). */
  inputShape?: readonly number[];
  /** Anything else (JSON), e.g. the best metric value. */
  extra?: Record<string, unknown>;
}

/** The metadata of a checkpoint. */
export interface CheckpointInfo {
  /** Epochs completed when it was written. */
  epoch: number;
  seed?: number;
  rngState?: number[];
  config?: unknown;
  inputShape?: number[];
  /** The optimizer's `getConfig()` at save time, if its state was saved. */
  optimizer?: Record<string, unknown>;
  extra: Record<string, unknown>;
  /** The raw `__metadata__` strings. */
  metadata: Record<string, string>;
}

/** Options of {@link loadCheckpoint}. */
export interface LoadCheckpointOptions {
  /** Restore this optimizer's state too (the file must hold state of the same kind). */
  optimizer?: Optimizer | null;
  /**
   * Require the file's weights and the model's to match exactly (default true). With false,
   * missing and unexpected names are ignored (shapes and dtypes of common names must still match).
   */
  strict?: boolean;
}

const SAVE_KEYS: OptionKeys = optionKeys<SaveCheckpointOptions>({
  optimizer: true,
  epoch: true,
  seed: true,
  rngState: true,
  config: true,
  inputShape: true,
  extra: true,
});
const LOAD_KEYS: OptionKeys = optionKeys<LoadCheckpointOptions>({ optimizer: true, strict: true });

const DTYPE_OF: Record<DType, SafetensorsDtype> = { f32: "F32", i32: "I32", u32: "I64" };

function hostData(dtype: DType, data: DecodedData): Float32Array | Int32Array | Uint32Array {
  if (dtype === "f32") {
    return data instanceof Float32Array ? data : Float32Array.from(data as Float64Array);
  }
  if (dtype === "i32") {
    return data instanceof Int32Array ? data : Int32Array.from(data as Float64Array);
  }
  if (data instanceof BigInt64Array) return Uint32Array.from(data, (v) => Number(v));
  return Uint32Array.from(data as Int32Array);
}

function modelInputShape(model: Trainable): number[] | undefined {
  const s = (model as { inputShape?: unknown }).inputShape;
  return Array.isArray(s) && s.every((d) => typeof d === "number") ? [...s] : undefined;
}

function json(v: unknown): string {
  return JSON.stringify(v, (_k, x) => typeof x === "number" && !Number.isFinite(x) ? String(x) : x);
}

/**
 * Writes a checkpoint of `model` (and optionally its optimizer) to `path`, atomically (a crash
 * mid-write leaves the previous file intact). One GPU round trip reads every tensor.
 *
 * @example
 * ```ts ignore
 * await saveCheckpoint("runs/a/last.safetensors", model, { optimizer, epoch: 10, seed: 1 });
 * ```
 */
export async function saveCheckpoint(
  path: string,
  model: Trainable,
  options: SaveCheckpointOptions = {},
): Promise<void> {
  checkOptions("saveCheckpoint()", options, SAVE_KEYS);
  const weights = model.weights();
  const tensors: Record<string, SafetensorsInput> = {};
  const seen = new Set<string>();
  for (const w of weights) {
    if (seen.has(w.name)) {
      throw new Error(`collapse: saveCheckpoint: duplicate weight name '${w.name}'`);
    }
    if (w.name.startsWith(OPTIMIZER_PREFIX)) {
      throw new Error(`collapse: saveCheckpoint: weight name '${w.name}' uses a reserved prefix`);
    }
    seen.add(w.name);
  }
  const host = await readAll(weights.map((w) => w.value));
  weights.forEach((w, i) => {
    tensors[w.name] = { dtype: DTYPE_OF[w.value.dtype], shape: w.value.shape, data: host[i] };
  });
  const opt = options.optimizer;
  if (opt) {
    const state = await opt.saveState();
    for (const [k, e] of Object.entries(state)) {
      tensors[OPTIMIZER_PREFIX + k] = {
        dtype: e.data instanceof Float32Array ? "F32" : "I32",
        shape: e.shape,
        data: e.data,
      };
    }
  }
  const metadata: Record<string, string> = {
    format: FORMAT,
    epoch: String(options.epoch ?? 0),
  };
  if (options.seed !== undefined) metadata.seed = String(options.seed);
  if (options.rngState) metadata.rng = json(options.rngState);
  if (options.config !== undefined) metadata.config = json(options.config);
  const shape = options.inputShape ?? modelInputShape(model);
  if (shape) metadata.input_shape = json(shape);
  if (opt) metadata.optimizer = json(opt.getConfig());
  metadata.extra = json(options.extra ?? {});
  await writeSafetensorsFile(path, tensors, metadata);
}

function parseInfo(metadata: Record<string, string>, path: string): CheckpointInfo {
  const parse = (k: string) => {
    if (metadata[k] === undefined) return undefined;
    try {
      return JSON.parse(metadata[k]);
    } catch {
      throw new Error(`collapse: checkpoint ${path}: metadata '${k}' is not valid JSON`);
    }
  };
  return {
    epoch: metadata.epoch !== undefined ? Number(metadata.epoch) : 0,
    seed: metadata.seed !== undefined ? Number(metadata.seed) : undefined,
    rngState: (parse("rng") as (number | string)[] | undefined)?.map(Number),
    config: parse("config"),
    inputShape: parse("input_shape"),
    optimizer: parse("optimizer"),
    extra: parse("extra") ?? {},
    metadata,
  };
}

/** Options of {@link readCheckpointInfo}. */
export interface ReadCheckpointInfoOptions {
  /** Verify the tensor data against its checksum (default true; the whole file is read anyway). */
  verify?: boolean;
}

const READ_INFO_KEYS: OptionKeys = optionKeys<ReadCheckpointInfoOptions>({ verify: true });

/**
 * Reads only a checkpoint's metadata (epoch, seed, config, ...), without touching a model; by
 * default also verifies the tensor data's checksum, so a damaged file is refused here already.
 */
export async function readCheckpointInfo(
  path: string,
  options: ReadCheckpointInfoOptions = {},
): Promise<CheckpointInfo> {
  checkOptions("readCheckpointInfo()", options, READ_INFO_KEYS);
  const bytes = await Deno.readFile(path);
  let meta: Record<string, string>;
  try {
    const header = parseSafetensorsHeader(bytes);
    if (options.verify ?? true) verifySafetensorsChecksum(bytes, header);
    meta = header.metadata;
  } catch (e) {
    throw new Error(`collapse: checkpoint ${path}: ${(e as Error).message}`, { cause: e });
  }
  return parseInfo(meta, path);
}

function list(xs: string[], max = 12): string {
  return xs.length > max
    ? `${xs.slice(0, max).join(", ")}, ... (${xs.length} in all)`
    : xs.join(", ");
}

/**
 * Loads a checkpoint into `model` (built first from the stored input shape if needed) and, when
 * given, the optimizer. Validates before writing anything: throws one error listing every missing,
 * unexpected, mis-shaped or mis-typed tensor.
 *
 * @example
 * ```ts ignore
 * const info = await loadCheckpoint("runs/a/last.safetensors", model, { optimizer });
 * await fit(model, data, { epochs: 200, initialEpoch: info.epoch, seed: info.seed });
 * ```
 */
export async function loadCheckpoint(
  path: string,
  model: Trainable,
  options: LoadCheckpointOptions = {},
): Promise<CheckpointInfo> {
  checkOptions("loadCheckpoint()", options, LOAD_KEYS);
  const bytes = await Deno.readFile(path);
  let decoded;
  try {
    decoded = decodeSafetensors(bytes, { int64: "bigint" });
  } catch (e) {
    throw new Error(`collapse: checkpoint ${path}: ${(e as Error).message}`, { cause: e });
  }
  const info = parseInfo(decoded.metadata, path);
  if (info.inputShape) model.build(info.inputShape);
  const strict = options.strict ?? true;
  const weights: Weight[] = model.weights();
  const fileNames = Object.keys(decoded.tensors).filter((n) => !n.startsWith(OPTIMIZER_PREFIX));
  const byName = new Map(weights.map((w) => [w.name, w]));
  const missing = weights.filter((w) => !(w.name in decoded.tensors)).map((w) => w.name);
  const unexpected = fileNames.filter((n) => !byName.has(n));
  const bad: string[] = [];
  for (const w of weights) {
    const t = decoded.tensors[w.name];
    if (!t) continue;
    const shape = w.value.shape;
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      bad.push(
        `'${w.name}' has shape [${t.shape.join(", ")}] in the file, [${
          shape.join(", ")
        }] in the model`,
      );
    } else if (t.dtype !== DTYPE_OF[w.value.dtype]) {
      bad.push(`'${w.name}' is ${t.dtype} in the file, ${w.value.dtype} in the model`);
    }
  }
  const problems: string[] = [];
  if (strict && missing.length) problems.push(`missing in the file: ${list(missing)}`);
  if (strict && unexpected.length) problems.push(`unexpected in the file: ${list(unexpected)}`);
  if (bad.length) problems.push(`mismatched: ${list(bad, 8)}`);
  const opt = options.optimizer;
  let optState: Record<string, OptimizerStateEntry> | null = null;
  if (opt) {
    if (!info.optimizer) problems.push("the file holds no optimizer state");
    else if (info.optimizer.kind !== opt.kind) {
      problems.push(
        `the file holds ${String(info.optimizer.kind)} optimizer state, not ${opt.kind}`,
      );
    } else {
      optState = {};
      for (const [n, t] of Object.entries(decoded.tensors)) {
        if (!n.startsWith(OPTIMIZER_PREFIX)) continue;
        const data = t.data instanceof BigInt64Array ? Int32Array.from(t.data, Number) : t.data;
        optState[n.slice(OPTIMIZER_PREFIX.length)] = {
          shape: t.shape,
          data: data instanceof Int32Array ? data : Float32Array.from(data as Float32Array),
        };
      }
    }
  }
  if (problems.length) {
    throw new Error(
      `collapse: checkpoint ${path} does not match the model: ${problems.join("; ")}`,
    );
  }
  if (opt && optState) {
    try {
      opt.loadState(optState);
    } catch (e) {
      throw new Error(`collapse: checkpoint ${path}: ${(e as Error).message}`, { cause: e });
    }
  }
  for (const w of weights) {
    const t = decoded.tensors[w.name];
    if (t) writeTensor(w.value as Tensor, hostData(w.value.dtype, t.data));
  }
  return info;
}
