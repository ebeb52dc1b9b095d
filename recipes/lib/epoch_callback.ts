/**
 * What a recipe run does after every epoch: the training record, the test evaluation every
 * `--eval-every` epochs (per-class accuracy, calibration and, where affordable, the
 * neural-collapse metrics), one fsynced `metrics.jsonl` line, the best and last checkpoints, the
 * summary line and the rewritten report and plots, in that order.
 *
 * @module
 */

import type { DatasetInfo } from "../../data/datasets/mod.ts";
import type { ClassifierModel } from "../../nn/model/classifier.ts";
import type { Callback, FitContext } from "../../nn/training/callbacks.ts";
import { evaluate } from "../../nn/training/evaluate.ts";
import type { Logs } from "../../nn/training/history.ts";
import type { DataSource } from "../../nn/training/state.ts";
import type { RecipeFlags } from "./flags.ts";
import { BEST_CHECKPOINT, LAST_CHECKPOINT } from "./resume.ts";
import { appendMetrics } from "./run_dir.ts";
import {
  bestRecord,
  type EpochRecord,
  evaluationFields,
  type OutputContext,
  summaryLine,
  trainingRecord,
  writeRunOutputs,
} from "./run_outputs.ts";

/**
 * Whether the neural-collapse metrics are affordable at every evaluation: their host finaliser
 * (nn/metrics/neural_collapse.ts) costs about K d^2 multiply-adds for K classes present in the test
 * split and feature dimension d, plus an O(K^3) eigendecomposition (fine for CIFAR/CUB, hours for
 * ImageNet-LT's 1000 x 4096).
 */
export function ncAffordable(testCounts: readonly number[], featureDim: number): boolean {
  const k = testCounts.filter((c) => c > 0).length;
  return featureDim > 0 && k <= 300 && k * featureDim * featureDim <= 2e9;
}

/**
 * The test-split fields of a metrics record (fractions, ECE and its bins, the evaluation's
 * images/s; see `evaluationFields`).
 */
export async function testRecord(
  model: ClassifierModel,
  test: DataSource,
  data: DatasetInfo,
  neuralCollapse: boolean,
): Promise<Partial<EpochRecord>> {
  const t = performance.now();
  const r = await evaluate(model, test, {
    neuralCollapse,
    groups: data.groups,
    extraGroups: data.groupings.slice(1),
  });
  return evaluationFields(r, (performance.now() - t) / 1000);
}

/** What {@link EpochCallback} evaluates, records and writes. */
export interface EpochCallbackOptions {
  model: ClassifierModel;
  test: DataSource;
  data: DatasetInfo;
  flags: RecipeFlags;
  /** The run's records so far (resumed runs: those kept); each epoch's is appended. */
  records: EpochRecord[];
  outputs: OutputContext;
  /** Prints the summary line. */
  print(line: string): void;
  /** Compute the neural-collapse metrics at each evaluation. */
  neuralCollapse: boolean;
}

/** Evaluates, logs, checkpoints and reports after every epoch. */
export class EpochCallback implements Callback {
  #t0 = 0;
  /** The callback for one run. */
  constructor(readonly o: EpochCallbackOptions) {}

  /** Starts the epoch's clock. */
  onEpochBegin(): void {
    this.#t0 = performance.now();
  }

  /** Records, evaluates when due, checkpoints and reports the finished epoch. */
  async onEpochEnd(epoch: number, logs: Logs, ctx: FitContext): Promise<void> {
    const { flags, records } = this.o;
    const e1 = epoch + 1; // epochs completed
    const rec = trainingRecord(epoch, logs, (performance.now() - this.#t0) / 1000);
    if (e1 % flags.evalEvery === 0 || e1 === ctx.epochs) {
      Object.assign(
        rec,
        await testRecord(this.o.model, this.o.test, this.o.data, this.o.neuralCollapse),
      );
    }
    await appendMetrics(flags.out, rec);
    records.push(rec);
    const best = bestRecord(records);
    if (rec.top1 !== undefined && best === rec) {
      await ctx.saveCheckpoint(`${flags.out}/${BEST_CHECKPOINT}`, e1, {
        top1: rec.top1,
        bestEpoch: epoch,
      });
    }
    await ctx.saveCheckpoint(`${flags.out}/${LAST_CHECKPOINT}`, e1, {
      top1: rec.top1 ?? null,
      bestEpoch: best?.epoch ?? null,
    });
    this.o.print(summaryLine(rec, ctx.epochs));
    await writeRunOutputs(flags.out, records, this.o.outputs);
  }
}
