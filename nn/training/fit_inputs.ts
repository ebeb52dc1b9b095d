/**
 * The argument layer in front of the epoch loop: resolves `fit(data, options)` and Keras'
 * `fit(x, y, options)`, checks the option keys, defaults `epochs` to 1 (Keras), turns arrays into
 * batches (`batchSize`, `shuffle`, `validationSplit`, `validationData: [x, y]`), applies
 * `classWeight` by wrapping the compiled loss for the run (validation losses stay unweighted, as
 * Keras'), calls the loss's `onEpochBegin` before every epoch, and turns the NaN guard's error into
 * a clean stop when a `TerminateOnNaN` callback is given.
 * @module
 */
import {
  type ClassWeight,
  ClassWeightedLoss,
  resolveClassWeight,
} from "../losses/class_weighted.ts";
import type { Loss } from "../losses/loss.ts";
import { checkOptions, isOptionsObject, type OptionKeys } from "../options.ts";
import type { Callback } from "./callbacks.ts";
import {
  type ArrayInput,
  type DataInput,
  hostArrays,
  hostArraySource,
  isDataInput,
  type LabelInput,
  splitArrays,
  toDataSource,
} from "./data_source.ts";
import type { EvaluateOptions } from "./evaluate.ts";
import type { History } from "./history.ts";
import { TerminateOnNaN } from "./keras_callbacks.ts";
import { type DataSource, type TrainableModel, trainingState } from "./state.ts";

/** The fit options this layer reads (the loop's own options pass through). */
export interface FitInputOptions {
  epochs?: number;
  validationData?: DataInput | [ArrayInput, LabelInput];
  validationOptions?: EvaluateOptions;
  callbacks?: Callback[];
  seed?: number;
  classWeight?: ClassWeight;
  batchSize?: number;
  validationSplit?: number;
  shuffle?: boolean;
}

/** The keys only `fit(x, y, ...)` takes. */
export const ARRAY_FIT_KEYS: OptionKeys = ["batchSize", "validationSplit", "shuffle"];

/** A resolved fit call: the loop's data and options, and how to run it. */
export interface PreparedFit<O> {
  data: DataSource;
  /** The options for the loop (epochs set; arrays, classWeight and validationSplit resolved). */
  options: O & { epochs: number; validationData?: DataSource };
  /** Runs the loop with the run's loss in place, restoring the compiled loss afterwards. */
  run(
    loop: (
      data: DataSource,
      options: O & { epochs: number; validationData?: DataSource },
    ) => Promise<History>,
  ): Promise<History>;
}

function modelInputShape(model: TrainableModel): readonly number[] | undefined {
  const s = (model as { inputShape?: unknown }).inputShape;
  return Array.isArray(s) && s.length > 1 && s.slice(1).every((d) => d > 0) ? s : undefined;
}

function modelClasses(model: TrainableModel): number | undefined {
  const s = (model as { outputShape?: unknown }).outputShape;
  return Array.isArray(s) && s.length === 2 && s[1] > 0 ? s[1] : undefined;
}

async function validationSource(
  v: DataInput | [ArrayInput, LabelInput],
  batchSize: number | undefined,
  inputShape: readonly number[] | undefined,
): Promise<DataSource> {
  if (isDataInput(v)) return toDataSource(v, "fit(): validationData");
  if (Array.isArray(v) && v.length === 2) {
    const a = await hostArrays(v[0], v[1], "fit(): validationData", inputShape?.slice(1));
    return hostArraySource(a, { batchSize });
  }
  throw new Error(
    "collapse: fit(): validationData must be a DataSource, an array of batches or [x, y]",
  );
}

/**
 * Resolves the arguments of `fit(model, data, options)` or `fit(model, x, y, options)` (`args` are
 * the arguments after the model) against the loop's option keys `loopKeys`.
 */
export async function prepareFit<O extends FitInputOptions>(
  model: TrainableModel,
  args: readonly unknown[],
  loopKeys: OptionKeys,
): Promise<PreparedFit<O>> {
  const state = trainingState(model, "fit");
  const arrays = !isDataInput(args[0]);
  const raw = (arrays ? args[2] : args[1]) as O | undefined;
  if (!arrays && args.length > 2 && args[2] !== undefined) {
    throw new Error(
      "collapse: fit(): takes (data, options) or (x, y, options); got a data source and " +
        `${args.length - 1} more arguments`,
    );
  }
  if (arrays && args[1] !== undefined && isOptionsObject(args[1]) && args[2] === undefined) {
    throw new Error(
      "collapse: fit(): the first argument is not a DataSource or an array of batches; " +
        "for in-memory data call fit(x, y, options)",
    );
  }
  if (!arrays && isOptionsObject(raw)) {
    const own = ARRAY_FIT_KEYS.filter((k) => k in raw);
    if (own.length) {
      throw new Error(
        `collapse: fit(): ${own.join(", ")} apply to fit(x, y, ...) with in-memory arrays; a ` +
          "DataSource (e.g. a Loader) makes its own batches and a validationData source",
      );
    }
  }
  const allowed = arrays ? [...loopKeys, ...ARRAY_FIT_KEYS] : loopKeys;
  const options = { ...(checkOptions(arrays ? "fit(x, y)" : "fit()", raw, allowed) ?? {}) } as O;
  const epochs = options.epochs ?? 1;
  let data: DataSource;
  let counts: number[] | undefined;
  const inputShape = modelInputShape(model);
  let validation = options.validationData === undefined
    ? undefined
    : await validationSource(options.validationData, options.batchSize, inputShape);
  if (arrays) {
    const all = await hostArrays(
      args[0] as ArrayInput,
      args[1] as LabelInput,
      "fit(x, y)",
      inputShape?.slice(1),
    );
    let train = all;
    if (options.validationSplit !== undefined) {
      if (validation !== undefined) {
        throw new Error("collapse: fit(x, y): give validationData or validationSplit, not both");
      }
      const split = splitArrays(all, options.validationSplit, "fit(x, y)");
      train = split.train;
      validation = hostArraySource(split.validation, { batchSize: options.batchSize });
    }
    const source = hostArraySource(train, {
      batchSize: options.batchSize,
      shuffle: options.shuffle ?? true,
      seed: options.seed,
      numClasses: modelClasses(model),
    });
    counts = source.classCounts();
    data = source;
  } else {
    data = toDataSource(args[0] as DataInput, "fit()");
    counts = data.classCounts?.();
  }

  // Class weights: the run trains on a weighted copy of the compiled loss.
  const compiled: Loss = state.loss;
  let runLoss = compiled;
  if (options.classWeight !== undefined) {
    const k = modelClasses(model) ?? counts?.length ??
      (Array.isArray(options.classWeight) ? options.classWeight.length : undefined);
    if (k === undefined) {
      throw new Error(
        "collapse: fit(): classWeight needs the number of classes: build the model first",
      );
    }
    runLoss = new ClassWeightedLoss(compiled, resolveClassWeight(options.classWeight, k, counts));
  }
  const callbacks: Callback[] = [...(options.callbacks ?? [])];
  callbacks.forEach((c, i) => {
    if (typeof c !== "object" || c === null) {
      throw new Error(`collapse: fit(): callbacks[${i}] is not a callback object`);
    }
  });
  const lossHook: Callback = {
    onEpochBegin: (epoch, ctx) => state.loss.onEpochBegin?.(epoch, ctx.epochs),
  };
  const terminate = callbacks.find((c): c is TerminateOnNaN => c instanceof TerminateOnNaN);
  const loopOptions = {
    ...options,
    epochs,
    validationData: validation,
    callbacks: [lossHook, ...callbacks],
    validationOptions: runLoss !== compiled
      ? { ...options.validationOptions, loss: options.validationOptions?.loss ?? compiled }
      : options.validationOptions,
  } as O & { epochs: number; validationData?: DataSource };
  for (const k of ["classWeight", ...ARRAY_FIT_KEYS] as const) {
    delete (loopOptions as unknown as Record<string, unknown>)[k];
  }
  return {
    data,
    options: loopOptions,
    async run(loop) {
      state.loss = runLoss;
      try {
        return await loop(data, loopOptions);
      } catch (e) {
        if (terminate && terminate.terminatedBy === e && terminate.history) {
          return terminate.history;
        }
        throw e;
      } finally {
        state.loss = compiled;
        if (runLoss instanceof ClassWeightedLoss) runLoss.dispose();
      }
    },
  };
}
