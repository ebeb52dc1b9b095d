/**
 * What a fit's GEMM autotuning measured, in the form `history.params.autotune` keeps it and the
 * line it prints with `verbose: 1`.
 * @module
 */
import type { TuneReport } from "../../gpu/ops/gemm_tune.ts";

/** One autotuning of a fit (one per batch shape: a last partial batch is tuned on its own). */
export interface TuneSummary {
  /** The training step's batch size. */
  batchSize: number;
  /** False where the device has no `timestamp-query` (nothing measured). */
  available: boolean;
  /** Distinct GEMMs with more than one candidate plan. */
  gemms: number;
  /** Of those, how many now run a plan other than the cost model's. */
  changed: number;
  /** Measured time of those GEMMs (each once) with the cost model's plans, ms. */
  modelMs: number;
  /** The same with the kept plans, ms. */
  keptMs: number;
  /** Wall-clock seconds the measurement took, compiles included. */
  seconds: number;
}

/** The summary of a report, for `history.params.autotune`. */
export function tuneSummary(r: TuneReport, batchSize: number): TuneSummary {
  return {
    batchSize,
    available: r.available,
    gemms: r.gemms.length,
    changed: r.changed,
    modelMs: r.modelMs,
    keptMs: r.keptMs,
    seconds: r.seconds,
  };
}

/** A one-line account of a report. */
export function tuneLine(r: TuneReport, batchSize: number): string {
  if (!r.available) {
    return `batch ${batchSize}: the device has no timestamp-query, nothing measured ` +
      "(the cost model's plans stay)";
  }
  const ratio = r.keptMs > 0 ? ` (${(r.modelMs / r.keptMs).toFixed(2)}x)` : "";
  return `batch ${batchSize}: ${r.gemms.length} distinct GEMMs measured in ${
    r.seconds.toFixed(1)
  } s, ${r.changed} now run another plan than the cost model's; their time ${
    r.modelMs.toFixed(1)
  } -> ${r.keptMs.toFixed(1)} ms${ratio}`;
}
