/**
 * Batched inference over a data source: logits of every example, in order, computed on the GPU
 * batch by batch in inference mode and read back once at the end.
 * @module
 */
import { noGrad } from "../../gpu/autograd.ts";
import { engine } from "../../gpu/engine.ts";
import { keep, tidy } from "../../gpu/scope.ts";
import { readAll, type Tensor, tensor } from "../../gpu/tensor.ts";
import { checkOptions, type OptionKeys, optionKeys } from "../options.ts";
import { type DataInput, toDataSource } from "./data_source.ts";
import { forwardOutputs, type TrainableModel } from "./state.ts";

/** Options of {@link predict}. */
export interface PredictOptions {
  /** Epoch passed to `data.batches` (default 0). */
  epoch?: number;
}

/** What {@link predict} returns: row-major logits [N, K]. */
export interface Predictions {
  /** N x K values, row-major. */
  logits: Float32Array;
  /** [N, K]. */
  shape: [number, number];
}

/** The allowed keys of {@link PredictOptions}. */
export const PREDICT_KEYS: OptionKeys = optionKeys<PredictOptions>({ epoch: true });

/** Logits [N, K] of all examples of `data` (epoch `epoch` of its batches), row-major. */
export async function predict(
  model: TrainableModel,
  data: DataInput,
  options: PredictOptions = {},
): Promise<Predictions> {
  checkOptions("predict()", options, PREDICT_KEYS);
  const source = toDataSource(data, "predict()");
  const outs: Tensor[] = [];
  try {
    for await (const b of source.batches(options?.epoch ?? 0)) {
      outs.push(tidy(() =>
        noGrad(() => {
          const x = tensor(b.images, b.shape);
          return keep(forwardOutputs(model, x, false).logits);
        })
      ));
      engine().flush();
    }
    if (!outs.length) return { logits: new Float32Array(0), shape: [0, 0] };
    const host = await readAll(outs);
    const K = outs[0].shape[1];
    const N = outs.reduce((a, t) => a + t.shape[0], 0);
    const logits = new Float32Array(N * K);
    let off = 0;
    for (const h of host) {
      logits.set(h as Float32Array, off);
      off += h.length;
    }
    return { logits, shape: [N, K] };
  } finally {
    for (const t of outs) t.dispose();
  }
}
