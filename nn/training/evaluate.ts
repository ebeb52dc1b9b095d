/**
 * Evaluation over a whole split on the GPU: per batch, logits in inference mode, the compiled
 * loss (x batch size), per-class correct and total counts (argmax vs label, via one-hot and a
 * matmul), the calibration bins (count, summed confidence and summed correct predictions per
 * confidence bin, the confidence being the largest softmax probability; see
 * ../metrics/calibration.ts), and optionally the neural-collapse sufficient statistics of the
 * head's features h (class sums [K, d] = onehot^T h, Gram [d, d] = h^T h) are added into GPU
 * accumulators, read back once at the end and finalised on the host (`accuracyReport`,
 * `calibrationFromBins`, `neuralCollapseMetrics`). Full
 * batches replay a captured step over persistent inputs; a last partial batch runs eagerly on its
 * own shape, so every example counts exactly once.
 * @module
 */
import { noGrad } from "../../gpu/autograd.ts";
import { type CapturedStep, engine } from "../../gpu/engine.ts";
import { accumulate_ } from "../../gpu/ops/accumulate.ts";
import { fill_ } from "../../gpu/ops/creation.ts";
import { equal, greater, mulScalar } from "../../gpu/ops/elementwise.ts";
import { argmax, oneHot } from "../../gpu/ops/indexing.ts";
import { matmul } from "../../gpu/ops/matmul.ts";
import { max, sum } from "../../gpu/ops/reduce.ts";
import { reshape } from "../../gpu/ops/shape.ts";
import { softmax } from "../../gpu/ops/softmax.ts";
import { keep, tidy } from "../../gpu/scope.ts";
import { empty, fmtShape, readAll, type Tensor, tensor, writeTensor } from "../../gpu/tensor.ts";
import type { Batch } from "../../data/types.ts";
import {
  type Calibration,
  calibrationEdges,
  calibrationFromBins,
  DEFAULT_CALIBRATION_BINS,
} from "../metrics/calibration.ts";
import { type AccuracyReport, accuracyReport, type GroupRule } from "../metrics/classification.ts";
import { type NeuralCollapseMetrics, neuralCollapseMetrics } from "../metrics/neural_collapse.ts";
import { topKHits, topKMetrics } from "../metrics/top_k.ts";
import type { Loss } from "../losses/loss.ts";
import { checkOptions, type OptionKeys, optionKeys } from "../options.ts";
import { type DataInput, toDataSource } from "./data_source.ts";
import { forwardOutputs, maybeTrainingState, type TrainableModel } from "./state.ts";

/** Options of {@link evaluate}. */
export interface EvaluateOptions {
  /** Also compute the neural-collapse metrics of the head's features (default false). */
  neuralCollapse?: boolean;
  /** Head/medium/tail grouping (default: the paper's for K classes). */
  groups?: GroupRule;
  /** Further groupings reported beside `groups` (e.g. ImageNet-LT by training count). */
  extraGroups?: readonly { name: string; rule: GroupRule }[];
  /** Replay a captured step for full batches (default true). */
  capture?: boolean;
  /** Epoch passed to `data.batches` (default 0). */
  epoch?: number;
  /** The loss to report (default: the compiled loss; none if the model is not compiled). */
  loss?: Loss | null;
  /** Metric names (default: the compiled ones); top-k names such as "top5" add to `metrics`. */
  metrics?: string[];
}

/** The allowed keys of {@link EvaluateOptions}. */
export const EVALUATE_KEYS: OptionKeys = optionKeys<EvaluateOptions>({
  neuralCollapse: true,
  groups: true,
  extraGroups: true,
  capture: true,
  epoch: true,
  loss: true,
  metrics: true,
});

/** What {@link evaluate} returns. */
export interface EvaluationResult {
  /** Mean loss per example (NaN without a loss). */
  loss: number;
  /** Top-1 accuracy, a fraction in [0, 1]. */
  accuracy: number;
  /**
   * Expected calibration error over 15 confidence bins (the official code's definition), a
   * fraction in [0, 1]; the bins are in {@link EvaluationResult.calibration}.
   */
  ece: number;
  /** ECE, MCE and the reliability diagram's bins. */
  calibration: Calibration;
  /** Overall, per-class and head/medium/tail accuracy. */
  report: AccuracyReport;
  /** Per-class correct and total counts. */
  correct: number[];
  total: number[];
  /** Examples seen. */
  count: number;
  /** With `neuralCollapse: true`. */
  neuralCollapse?: NeuralCollapseMetrics;
  /** Head/medium/tail accuracy under each of the options' `extraGroups`, in order. */
  extraGroups?: { name: string; head: number; medium: number; tail: number }[];
  /** The top-k accuracies of the requested metrics, by name ("top5_accuracy": 0.93). */
  metrics: Record<string, number>;
}

interface Accumulators {
  K: number;
  d: number;
  /**
   * f32[1 + 2K + 3B]: loss sum, correct per class, total per class, then per confidence bin the
   * examples, summed confidence and summed correct predictions.
   */
  acc: Tensor;
  /** f32[K d + d d]: class sums, Gram; or null. */
  nc: Tensor | null;
  /** The classifier [d, K] (a model-owned weight). */
  classifier: Tensor | null;
  /** f32[m]: examples correct at each requested k, or null. */
  topK: Tensor | null;
}

/** The evaluation step of one model for one batch size (kept across calls). */
export class EvalStep {
  readonly x: Tensor;
  readonly labels: Tensor;
  accs: Accumulators | null = null;
  /** Calibration thresholds [1, B + 1] (see `calibrationEdges`). */
  readonly edges: Tensor;
  /** [B + 1, B]: bin membership = (c > t_{b-1}) - (c > t_b) as one matmul. */
  readonly binDiff: Tensor;
  #captured: CapturedStep | null = null;
  #runs = 0;

  constructor(
    readonly model: TrainableModel,
    readonly shape: readonly number[],
    readonly withNc: boolean,
    readonly loss: Loss | null,
    readonly useCapture: boolean,
    readonly ks: readonly number[] = [],
  ) {
    this.x = keep(empty(shape, "f32", "eval.x"));
    this.labels = keep(empty([shape[0]], "i32", "eval.labels"));
    const B = DEFAULT_CALIBRATION_BINS;
    this.edges = keep(tensor(calibrationEdges(B), [1, B + 1]));
    const diff = new Float32Array((B + 1) * B);
    for (let b = 0; b < B; b++) {
      diff[b * B + b] = 1;
      diff[(b + 1) * B + b] = -1;
    }
    this.binDiff = keep(tensor(diff, [B + 1, B]));
  }

  /** Zeroes the accumulators (if they exist yet). */
  reset(): void {
    if (!this.accs) return;
    fill_(this.accs.acc, 0);
    if (this.accs.nc) fill_(this.accs.nc, 0);
    if (this.accs.topK) fill_(this.accs.topK, 0);
  }

  /** Accumulates the statistics of `x`, `labels` (n examples). */
  body(x: Tensor, labels: Tensor): void {
    tidy(() =>
      noGrad(() => {
        const out = forwardOutputs(this.model, x, false);
        const logits = out.logits;
        if (logits.rank !== 2) {
          throw new Error(`collapse: evaluate: logits must be [N, K], got ${logits.describe()}`);
        }
        const n = logits.shape[0], K = logits.shape[1];
        if (!this.accs) {
          if (engine().capturing) throw new Error("collapse: evaluate: accumulators not sized");
          const h = out.features;
          if (this.withNc && (!h || !out.classifier)) {
            throw new Error(
              "collapse: evaluate: neuralCollapse needs a model with a head " +
                "(outputs with features and classifier)",
            );
          }
          const d = this.withNc ? h!.shape[1] : 0;
          this.accs = {
            K,
            d,
            acc: keep(empty([1 + 2 * K + 3 * DEFAULT_CALIBRATION_BINS], "f32", "eval.acc")),
            nc: this.withNc ? keep(empty([K * d + d * d], "f32", "eval.nc")) : null,
            classifier: this.withNc ? out.classifier! : null,
            topK: this.ks.length ? keep(empty([this.ks.length], "f32", "eval.topk")) : null,
          };
          this.reset();
        }
        const a = this.accs;
        if (K !== a.K) throw new Error(`collapse: evaluate: ${K} classes, then ${a.K}`);
        const oh = oneHot(labels, K);
        const hit = reshape(equal(argmax(logits, -1), labels), [1, n]);
        accumulate_(a.acc, reshape(matmul(hit, oh), [K]), 1);
        accumulate_(a.acc, sum(oh, 0), 1 + K);
        // Calibration: confidence = max softmax probability, binned as the official code bins.
        const B = DEFAULT_CALIBRATION_BINS;
        const conf = max(softmax(logits, -1), -1, true); // [n, 1]
        const inBin = matmul(greater(conf, this.edges), this.binDiff); // [n, B], one-hot or 0
        accumulate_(a.acc, sum(inBin, 0), 1 + 2 * K);
        accumulate_(a.acc, reshape(matmul(conf, inBin, { transposeA: true }), [B]), 1 + 2 * K + B);
        accumulate_(a.acc, reshape(matmul(hit, inBin), [B]), 1 + 2 * K + 2 * B);
        if (this.loss) {
          const l = this.loss.compute(out, labels);
          accumulate_(a.acc, reshape(mulScalar(l, n), [1]), 0);
        }
        this.ks.forEach((k, i) => {
          accumulate_(a.topK!, reshape(sum(topKHits(logits, labels, k)), [1]), i);
        });
        if (a.nc) {
          const h = out.features!;
          accumulate_(a.nc, reshape(matmul(oh, h, { transposeA: true }), [K * a.d]), 0);
          accumulate_(a.nc, reshape(matmul(h, h, { transposeA: true }), [a.d * a.d]), K * a.d);
        }
      })
    );
  }

  /** Runs a full batch through the persistent inputs (eager first, then captured replays). */
  runFull(batch: Batch): void {
    writeTensor(this.x, batch.images);
    writeTensor(this.labels, batch.labels);
    const e = engine();
    if (this.#captured) this.#captured.run();
    else if (this.#runs >= 1 && this.useCapture) {
      const { step } = e.capture(() => this.body(this.x, this.labels));
      this.#captured = step;
      step.run();
    } else {
      this.body(this.x, this.labels);
      e.flush();
    }
    this.#runs++;
  }

  /** Runs a batch of another size eagerly (the split's last partial batch). */
  runPartial(batch: Batch): void {
    tidy(() => {
      const x = tensor(batch.images, batch.shape);
      const y = tensor(batch.labels, [batch.labels.length]);
      this.body(x, y);
    });
    engine().flush();
  }

  dispose(): void {
    this.#captured?.dispose();
    this.x.dispose();
    this.labels.dispose();
    this.edges.dispose();
    this.binDiff.dispose();
    this.accs?.acc.dispose();
    this.accs?.nc?.dispose();
    this.accs?.topK?.dispose();
  }
}

const own = new WeakMap<object, Map<string, EvalStep>>();

function stepFor(
  model: TrainableModel,
  shape: readonly number[],
  nc: boolean,
  loss: Loss | null,
  capture: boolean,
  ks: readonly number[],
): EvalStep {
  const key = `eval|${shape.join("x")}|${nc}|${capture}|${loss?.name ?? ""}|${ks.join(",")}`;
  const state = maybeTrainingState(model);
  let map: Map<string, unknown> | undefined = state?.steps;
  if (!map) {
    map = own.get(model);
    if (!map) own.set(model, map = new Map());
  }
  let s = map.get(key) as EvalStep | undefined;
  if (!s || s.loss !== loss) {
    s?.dispose();
    s = new EvalStep(model, shape, nc, loss, capture, ks);
    map.set(key, s);
  }
  return s;
}

function checkBatch(batch: Batch): void {
  const n = batch.shape[0];
  if (batch.labels.length !== n || batch.images.length !== batch.shape.reduce((a, b) => a * b, 1)) {
    throw new Error(
      `collapse: evaluate: batch ${
        fmtShape(batch.shape)
      } has ${batch.images.length} values and ${batch.labels.length} labels`,
    );
  }
}

/**
 * Evaluates `model` over every batch of `data` (all examples count, a last smaller batch too):
 * loss, top-1, per-class and head/medium/tail accuracy, ECE (15 bins), and optionally the
 * neural-collapse metrics
 * (classifier W = M^T for the ETF head, the Dense kernel^T for a learnable head). One readback.
 *
 * @example
 * ```ts ignore
 * const r = await evaluate(model, testLoader, { neuralCollapse: true });
 * console.log(r.accuracy, r.report.tail, r.neuralCollapse?.nc1);
 * ```
 */
export async function evaluate(
  model: TrainableModel,
  data: DataInput,
  options: EvaluateOptions = {},
): Promise<EvaluationResult> {
  checkOptions("evaluate()", options, EVALUATE_KEYS);
  options ??= {};
  const source = toDataSource(data, "evaluate()");
  const topK = topKMetrics(options.metrics ?? maybeTrainingState(model)?.metrics ?? []);
  const loss = options.loss !== undefined
    ? options.loss
    : (maybeTrainingState(model)?.loss ?? null);
  const nc = options.neuralCollapse ?? false;
  const capture = options.capture ?? true;
  let main: EvalStep | null = null;
  let count = 0;
  const partials: Batch[] = [];
  for await (const batch of source.batches(options.epoch ?? 0)) {
    checkBatch(batch);
    if (!main) {
      main = stepFor(model, batch.shape, nc, loss, capture, topK.map((t) => t.k));
      main.reset();
    }
    const s = main.shape;
    const same = batch.shape.length === s.length && batch.shape.every((d, i) => d === s[i]);
    if (same) main.runFull(batch);
    else {
      if (batch.shape.length !== s.length || batch.shape.some((d, i) => i > 0 && d !== s[i])) {
        throw new Error(
          `collapse: evaluate: batch ${fmtShape(batch.shape)} does not match the split's ${
            fmtShape(s)
          }`,
        );
      }
      partials.push(batch);
    }
    count += batch.shape[0];
  }
  if (!main) throw new Error("collapse: evaluate: the data yielded no batch");
  for (const b of partials) main.runPartial(b);
  const a = main.accs!;
  if (a.classifier?.disposed) {
    throw new Error("collapse: evaluate: the head's classifier tensor was freed (re-run evaluate)");
  }
  const tensors = [a.acc, ...(a.nc ? [a.nc, a.classifier!] : []), ...(a.topK ? [a.topK] : [])];
  const host = await readAll(tensors);
  const metrics: Record<string, number> = {};
  if (a.topK) {
    const hits = host[host.length - 1] as Float32Array;
    topK.forEach((t, i) => (metrics[t.name] = hits[i] / count));
  }
  const acc = host[0] as Float32Array;
  const K = a.K;
  const correct = Array.from(acc.subarray(1, 1 + K));
  const total = Array.from(acc.subarray(1 + K, 1 + 2 * K));
  const report = accuracyReport(correct, total, options.groups);
  const B = DEFAULT_CALIBRATION_BINS;
  const bins = acc.subarray(1 + 2 * K);
  const calibration = calibrationFromBins(
    bins.subarray(0, B),
    bins.subarray(B, 2 * B),
    bins.subarray(2 * B, 3 * B),
  );
  const result: EvaluationResult = {
    loss: loss ? acc[0] / count : NaN,
    accuracy: report.top1,
    ece: calibration.ece,
    calibration,
    report,
    correct,
    total,
    count,
    metrics,
  };
  if (options.extraGroups?.length) {
    result.extraGroups = options.extraGroups.map((g) => {
      const r = accuracyReport(correct, total, g.rule);
      return { name: g.name, head: r.head, medium: r.medium, tail: r.tail };
    });
  }
  if (a.nc) {
    const d = a.d;
    const ncHost = host[1] as Float32Array;
    const m = host[2] as Float32Array; // [d, K]
    const w = new Float64Array(K * d);
    for (let k = 0; k < K; k++) for (let j = 0; j < d; j++) w[k * d + j] = m[j * K + k];
    result.neuralCollapse = neuralCollapseMetrics(
      {
        classSums: ncHost.subarray(0, K * d),
        counts: Float64Array.from(total),
        gram: ncHost.subarray(K * d),
        numClasses: K,
        dim: d,
      },
      w,
    );
  }
  return result;
}
