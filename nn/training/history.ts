/**
 * The record `fit` returns, with Keras semantics: `history[metric]` lists one value per epoch run
 * (in order), `epoch` the 0-based epoch indices, `params` the run's settings.
 * @module
 */

/** Per-epoch logs: metric name -> value (loss, accuracy, lr, val_loss, val_accuracy, ...). */
export type Logs = Record<string, number>;

/** What `fit` returns: one value per epoch for every logged metric. */
export class History {
  /** Metric name -> per-epoch values, aligned with {@link History.epoch}. */
  readonly history: Record<string, number[]> = {};
  /** The 0-based epoch index of each entry. */
  readonly epoch: number[] = [];
  /** Run settings (epochs, initialEpoch, steps, batch size, ...). */
  params: Record<string, unknown> = {};

  /** Appends one epoch's logs; metrics first seen now get NaN for earlier epochs. */
  record(epoch: number, logs: Logs): void {
    const n = this.epoch.length;
    this.epoch.push(epoch);
    for (const [k, v] of Object.entries(logs)) {
      const list = this.history[k] ??= new Array(n).fill(NaN);
      list.push(v);
    }
    for (const list of Object.values(this.history)) if (list.length === n) list.push(NaN);
  }

  /** The logs of the last recorded epoch (empty before any). */
  last(): Logs {
    const i = this.epoch.length - 1;
    const out: Logs = {};
    if (i < 0) return out;
    for (const [k, v] of Object.entries(this.history)) out[k] = v[i];
    return out;
  }

  /** A JSON-serialisable copy. */
  toJSON(): {
    epoch: number[];
    history: Record<string, number[]>;
    params: Record<string, unknown>;
  } {
    return { epoch: [...this.epoch], history: structuredClone(this.history), params: this.params };
  }
}
