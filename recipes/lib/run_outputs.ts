/**
 * The outputs of a recipe run besides its checkpoints: the per-epoch record of `metrics.jsonl`
 * (built from fit's logs and the evaluation), its one-line summary, and the human-facing files
 * rebuilt from the records after every epoch (so a killed or resumed run always has them): the SVG
 * plots `accuracy.svg` (test top-1 and head/medium/tail per epoch), `loss.svg` (train and test
 * loss), `per_class.svg` (per-class test accuracy against training count), `nc.svg` (one panel per
 * neural-collapse metric with its ETF target), `calibration.svg` (ECE per epoch and the last
 * reliability diagram), and `report.md`. Every file is written atomically.
 *
 * Convention (as Keras' History and CSVLogger): in records `epoch` is the 0-based epoch index and
 * accuracies and ECE are fractions in [0, 1]; text for people (summary lines, plots, report) counts
 * epochs from 1 and shows percentages.
 *
 * @module
 */

// deno-lint-ignore no-import-prefix -- library code uses full specifiers (importable by URL)
import { join } from "jsr:@std/path@^1/join";
import { writeFileAtomic } from "../../nn/io/atomic_file.ts";
import type { NeuralCollapseMetrics } from "../../nn/metrics/neural_collapse.ts";
import type { EvaluationResult } from "../../nn/training/evaluate.ts";
import type { Logs } from "../../nn/training/history.ts";
import type { MetricsRecord } from "./run_dir.ts";
import { paperResult } from "./paper_results.ts";
import { type ClassAccuracy, renderReport, type SplitAccuracy } from "./report_md.ts";
import { lineChart, type LineSeries, panelGrid, scatterChart } from "./svg_plot.ts";

/** Neural-collapse metrics stored per evaluated epoch (the scalars of one split's metrics). */
export type NcRecord = Omit<NeuralCollapseMetrics, "diagCosHW">;

/** The reliability diagram of one evaluation: per confidence bin (15), in order. */
export interface CalibrationRecord {
  /** Examples per bin. */
  count: number[];
  /** Mean confidence per bin (0 when empty). */
  confidence: number[];
  /** Accuracy per bin (0 when empty). */
  accuracy: number[];
}

/**
 * One line of `metrics.jsonl`: `epoch` is the 0-based epoch index, accuracies and ECE are
 * fractions in [0, 1].
 */
export interface EpochRecord extends MetricsRecord {
  /** 0-based epoch index (people read it as epoch `epoch + 1`). */
  epoch: number;
  lr: number;
  train_loss: number;
  /** Mixup-weighted training accuracy, a fraction. */
  train_accuracy: number;
  images_per_sec: number;
  epoch_seconds: number;
  /** Present on evaluated epochs. */
  test_loss?: number;
  top1?: number;
  head?: number;
  medium?: number;
  tail?: number;
  /** Expected calibration error, 15 bins, a fraction. */
  ece?: number;
  /** Test images evaluated per second (the evaluation's wall time). */
  eval_images_per_sec?: number;
  per_class?: number[];
  calibration?: CalibrationRecord;
  nc?: NcRecord;
  /** Head/medium/tail under the dataset's further groupings (ImageNet-LT: by training count). */
  extra_groups?: { name: string; head: number; medium: number; tail: number }[];
}

/** What the report needs besides the metrics. */
export interface OutputContext {
  recipe: string;
  /** Report title, e.g. "CIFAR-10-LT". */
  title: string;
  /** Imbalance ratio, for the paper's number. */
  ratio: number;
  classNames: string[];
  trainCounts: number[];
  adapter: string;
  config: Record<string, unknown>;
  notes: string[];
  /** The backbone, for the paper's number (default: any). */
  backbone?: string;
  /** How the run departs from the paper's protocol (see `protocolDifferences`). */
  protocolDifferences?: string[];
}

/** File names of the plots. */
export const PLOT_FILES = [
  "accuracy.svg",
  "loss.svg",
  "per_class.svg",
  "nc.svg",
  "calibration.svg",
] as const;

/** The record of a trained epoch from fit's logs (0-based `epoch`, fractions). */
export function trainingRecord(epoch: number, logs: Logs, seconds: number): EpochRecord {
  return {
    epoch,
    lr: logs.lr,
    train_loss: logs.loss,
    train_accuracy: logs.accuracy,
    images_per_sec: logs.images_per_sec,
    epoch_seconds: seconds,
  };
}

function ncRecord(nc: NcRecord | undefined): NcRecord | undefined {
  if (!nc) return undefined;
  return {
    nc1: nc.nc1,
    normalizedDistance: nc.normalizedDistance,
    meanCosH: nc.meanCosH,
    stdCosH: nc.stdCosH,
    meanCosW: nc.meanCosW,
    stdCosW: nc.stdCosW,
    meanCosHW: nc.meanCosHW,
    stdCosHW: nc.stdCosHW,
    meanDiagCosHW: nc.meanDiagCosHW,
  };
}

/**
 * An evaluation's fields of a record (test loss, accuracies, ECE and its bins, NC metrics); with
 * `seconds`, the evaluation's wall time, also its images/s.
 */
export function evaluationFields(r: EvaluationResult, seconds?: number): Partial<EpochRecord> {
  const f: Partial<EpochRecord> = { test_loss: r.loss };
  if (seconds !== undefined && seconds > 0) f.eval_images_per_sec = r.count / seconds;
  f.top1 = r.report.top1;
  f.head = r.report.head;
  f.medium = r.report.medium;
  f.tail = r.report.tail;
  f.ece = r.ece;
  f.per_class = r.report.perClass;
  f.calibration = {
    count: r.calibration.bins.map((b) => b.count),
    confidence: r.calibration.bins.map((b) => b.confidence),
    accuracy: r.calibration.bins.map((b) => b.accuracy),
  };
  f.nc = ncRecord(r.neuralCollapse);
  if (r.extraGroups?.length) f.extra_groups = r.extraGroups;
  return f;
}

/** Adds {@linkcode evaluationFields} to `rec`. */
export function addEvaluation(
  rec: EpochRecord,
  r: EvaluationResult,
  seconds?: number,
): EpochRecord {
  return Object.assign(rec, evaluationFields(r, seconds));
}

const pct = (v: number | undefined | null) =>
  typeof v !== "number" || !Number.isFinite(v) ? "n/a" : (v * 100).toFixed(2);

/** The one-line summary printed after each epoch (epochs counted from 1, percentages). */
export function summaryLine(r: EpochRecord, epochs: number): string {
  const parts = [
    `epoch ${r.epoch + 1}/${epochs}`,
    `loss ${r.train_loss?.toFixed(4) ?? "n/a"}`,
    `train accuracy ${pct(r.train_accuracy)}%`,
  ];
  if (r.top1 !== undefined) {
    parts.push(
      `test top-1 ${pct(r.top1)}% (head ${pct(r.head)} / medium ${pct(r.medium)} / tail ${
        pct(r.tail)
      })`,
      `ECE ${pct(r.ece)}%`,
    );
  }
  parts.push(
    `${Math.round(r.images_per_sec ?? 0)} img/s`,
    `lr ${Number(r.lr?.toPrecision(4))}`,
    `${(r.epoch_seconds ?? 0).toFixed(1)} s`,
  );
  return parts.join(" | ");
}

function evaluated(records: readonly EpochRecord[]): EpochRecord[] {
  return records.filter((r) => typeof r.top1 === "number");
}

/** A per-epoch series for people: x = epoch counted from 1, y scaled by `scale`. */
function series(
  records: readonly EpochRecord[],
  name: string,
  get: (r: EpochRecord) => number | undefined | null,
  scale = 1,
): LineSeries {
  return {
    name,
    points: records.map((r) => {
      const v = get(r);
      return [r.epoch + 1, typeof v === "number" ? v * scale : NaN] as [number, number];
    }),
  };
}

/** The plots, by file name. */
export function renderPlots(
  records: readonly EpochRecord[],
  ctx: Pick<OutputContext, "title" | "classNames" | "trainCounts">,
): Record<(typeof PLOT_FILES)[number], string> {
  const ev = evaluated(records);
  const last = ev[ev.length - 1];
  const K = Math.max(ctx.classNames.length, last?.per_class?.length ?? 0);
  const etfCos = K > 1 ? -1 / (K - 1) : NaN;
  const epochPanel = (
    title: string,
    get: (r: EpochRecord) => number | undefined,
    target: number | undefined,
    targetLabel: string,
    yLog = false,
  ) => ({
    title,
    xLabel: "epoch",
    yLabel: "",
    xInteger: true,
    yLog,
    series: [series(ev, title, get)],
    references: target === undefined ? [] : [{ value: target, label: targetLabel }],
  });
  const cal = last?.calibration;
  const reliability: [number, number][] = cal
    ? cal.count.flatMap((n, b) =>
      n > 0 ? [[cal.confidence[b] * 100, cal.accuracy[b] * 100] as [number, number]] : []
    )
    : [];
  return {
    "accuracy.svg": lineChart({
      title: `${ctx.title}: test accuracy`,
      xLabel: "epoch",
      yLabel: "accuracy (%)",
      yRange: [0, 100],
      xInteger: true,
      series: [
        series(ev, "test top-1", (r) => r.top1, 100),
        series(ev, "head", (r) => r.head, 100),
        series(ev, "medium", (r) => r.medium, 100),
        series(ev, "tail", (r) => r.tail, 100),
        series(records, "train (mixup-weighted)", (r) => r.train_accuracy, 100),
      ],
    }),
    "loss.svg": lineChart({
      title: `${ctx.title}: loss`,
      xLabel: "epoch",
      yLabel: "loss",
      xInteger: true,
      series: [
        series(records, "train loss", (r) => r.train_loss),
        series(ev, "test loss", (r) => r.test_loss),
      ],
    }),
    "per_class.svg": scatterChart({
      title: `${ctx.title}: per-class test accuracy (epoch ${last ? last.epoch + 1 : "-"})`,
      xLabel: "training images of the class",
      yLabel: "test accuracy (%)",
      xLog: true,
      yRange: [0, 100],
      points: (last?.per_class ?? []).map((acc, k) => ({
        x: ctx.trainCounts[k],
        y: typeof acc === "number" ? acc * 100 : NaN,
        label: ctx.classNames[k] ?? String(k),
      })),
    }),
    "nc.svg": panelGrid({
      title: `${ctx.title}: neural-collapse metrics (test set; dashed: the ETF's value)`,
      columns: 3,
      panels: [
        epochPanel(
          "NC1 = Tr(Sw Sb+)/K (log; collapse: -> 0)",
          (r) => r.nc?.nc1,
          undefined,
          "",
          true,
        ),
        epochPanel("||H/|H| - W/|W|||^2", (r) => r.nc?.normalizedDistance, 0, "target 0"),
        epochPanel(
          "mean cos(h_k, w_k) (alignment)",
          (r) => r.nc?.meanDiagCosHW,
          1,
          "target 1",
        ),
        epochPanel(
          "mean cos(h_k, h_k'), k != k'",
          (r) => r.nc?.meanCosH,
          etfCos,
          `target -1/(K-1) = ${etfCos.toFixed(3)}`,
        ),
        epochPanel(
          "mean cos(w_k, w_k'), k != k'",
          (r) => r.nc?.meanCosW,
          etfCos,
          `target -1/(K-1) = ${etfCos.toFixed(3)}`,
        ),
        epochPanel(
          "mean cos(h_k, w_k'), k != k'",
          (r) => r.nc?.meanCosHW,
          etfCos,
          `target -1/(K-1) = ${etfCos.toFixed(3)}`,
        ),
      ],
    }),
    "calibration.svg": panelGrid({
      title: `${ctx.title}: calibration (15 bins, confidence = max softmax probability)`,
      columns: 2,
      panelWidth: 460,
      panelHeight: 340,
      panels: [
        {
          ...epochPanel("ECE (%) per epoch", (r) => (r.ece ?? NaN) * 100, 0, "perfect 0"),
          yLabel: "ECE (%)",
        },
        {
          title: `reliability, epoch ${last ? last.epoch + 1 : "-"}`,
          xLabel: "mean confidence of the bin (%)",
          yLabel: "accuracy of the bin (%)",
          xRange: [0, 100],
          yRange: [0, 100],
          series: [
            { name: "perfect calibration", points: [[0, 0], [100, 100]], color: "#555555" },
            { name: "bins", points: reliability, dash: "", marker: "circle" },
          ],
          legend: true,
        },
      ],
    }),
  };
}

function split(r: EpochRecord | undefined): SplitAccuracy {
  return {
    epoch: r?.epoch ?? 0,
    top1: r?.top1 ?? NaN,
    head: r?.head ?? NaN,
    medium: r?.medium ?? NaN,
    tail: r?.tail ?? NaN,
    ece: r?.ece ?? NaN,
    ...(r?.extra_groups?.length ? { extraGroups: r.extra_groups } : {}),
  };
}

/** The best evaluated epoch (highest top-1; the earliest on ties), or undefined. */
export function bestRecord(records: readonly EpochRecord[]): EpochRecord | undefined {
  let best: EpochRecord | undefined;
  for (const r of evaluated(records)) if (!best || r.top1! > best.top1!) best = r;
  return best;
}

/** The last evaluated epoch, or undefined. */
export function lastEvaluated(records: readonly EpochRecord[]): EpochRecord | undefined {
  const ev = evaluated(records);
  return ev[ev.length - 1];
}

const EPOCHS_RUN_NOTE = "epochs run: ";

/**
 * The number of epochs a report.md was written for (its "epochs run: N" line), or undefined. The
 * report is rewritten after the metrics line of every epoch, so a report that states the run's
 * last epoch is the run's final report.
 */
export function epochsInReport(markdown: string): number | undefined {
  const m = markdown.match(new RegExp(`^- ${EPOCHS_RUN_NOTE}(\\d+);`, "m"));
  return m ? Number(m[1]) : undefined;
}

/** The markdown report. */
export function renderRunReport(records: readonly EpochRecord[], ctx: OutputContext): string {
  const ev = evaluated(records);
  const last = ev[ev.length - 1];
  const perClass: ClassAccuracy[] = (last?.per_class ?? []).map((acc, k) => ({
    className: ctx.classNames[k] ?? String(k),
    trainCount: ctx.trainCounts[k] ?? 0,
    acc: typeof acc === "number" ? acc : NaN,
  }));
  const speeds = records.map((r) => r.images_per_sec).filter((v) => Number.isFinite(v));
  const epochsRun = records.length ? records[records.length - 1].epoch + 1 : 0;
  return renderReport({
    recipe: ctx.recipe,
    dataset: ctx.title,
    config: ctx.config,
    best: split(bestRecord(records)),
    last: split(last),
    perClass,
    paper: paperResult(ctx.recipe, ctx.ratio, { backbone: ctx.backbone }),
    protocolDifferences: ctx.protocolDifferences,
    setting: `${ctx.title}, ratio ${ctx.ratio}${ctx.backbone ? `, ${ctx.backbone}` : ""}`,
    nc: last?.nc ? { ...last.nc } : undefined,
    imagesPerSec: speeds.length ? speeds.reduce((a, b) => a + b, 0) / speeds.length : NaN,
    adapter: ctx.adapter,
    notes: [`${EPOCHS_RUN_NOTE}${epochsRun}; evaluated: ${ev.length}`, ...ctx.notes],
  });
}

/** Writes the plots and `report.md` into `out`, atomically. */
export async function writeRunOutputs(
  out: string,
  records: readonly EpochRecord[],
  ctx: OutputContext,
): Promise<void> {
  const plots = renderPlots(records, ctx);
  for (const [file, svg] of Object.entries(plots)) await writeFileAtomic(join(out, file), svg);
  await writeFileAtomic(join(out, "report.md"), renderRunReport(records, ctx));
}
