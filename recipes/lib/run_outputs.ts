/**
 * The human-facing outputs of a recipe run, rebuilt from `metrics.jsonl` after every epoch (so a
 * killed or resumed run always has them): the SVG plots `accuracy.svg` (test top-1 and
 * head/medium/tail per epoch), `loss.svg` (train and test loss), `per_class.svg` (per-class test
 * accuracy against training count) and `nc.svg` (neural-collapse metrics per epoch), and
 * `report.md`. Every file is written atomically. Also the per-epoch record format and its summary
 * line.
 *
 * @module
 */

// deno-lint-ignore no-import-prefix -- library code uses full specifiers (importable by URL)
import { join } from "jsr:@std/path@^1/join";
import { writeFileAtomic } from "../../nn/io/atomic_file.ts";
import type { NeuralCollapseMetrics } from "../../nn/metrics/neural_collapse.ts";
import type { MetricsRecord } from "./run_dir.ts";
import { paperResult } from "./paper_results.ts";
import { type ClassAccuracy, renderReport, type SplitAccuracy } from "./report_md.ts";
import { lineChart, type LineSeries, scatterChart } from "./svg_plot.ts";

/** Neural-collapse metrics stored per evaluated epoch (the scalars of one split's metrics). */
export type NcRecord = Omit<NeuralCollapseMetrics, "diagCosHW">;

/** One line of `metrics.jsonl`. Accuracies are percentages. */
export interface EpochRecord extends MetricsRecord {
  /** 1-based epoch number. */
  epoch: number;
  lr: number;
  train_loss: number;
  train_accuracy: number;
  images_per_sec: number;
  epoch_seconds: number;
  /** Present on evaluated epochs. */
  test_loss?: number;
  top1?: number;
  head?: number;
  medium?: number;
  tail?: number;
  per_class?: number[];
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
}

/** File names of the plots. */
export const PLOT_FILES = ["accuracy.svg", "loss.svg", "per_class.svg", "nc.svg"] as const;

const pct = (v: number | undefined) => v === undefined || v === null ? "n/a" : v.toFixed(2);

/** The one-line summary printed after each epoch. */
export function summaryLine(r: EpochRecord, epochs: number): string {
  const parts = [
    `epoch ${r.epoch}/${epochs}`,
    `loss ${r.train_loss?.toFixed(4) ?? "n/a"}`,
    `train acc ${pct(r.train_accuracy)}%`,
  ];
  if (r.top1 !== undefined) {
    parts.push(
      `test top-1 ${pct(r.top1)}% (head ${pct(r.head)} / medium ${pct(r.medium)} / tail ${
        pct(r.tail)
      })`,
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

function series(
  records: readonly EpochRecord[],
  name: string,
  get: (r: EpochRecord) => number | undefined | null,
): LineSeries {
  return {
    name,
    points: records.map((r) => [r.epoch, get(r) ?? NaN] as [number, number]),
  };
}

/** The four SVG plots, by file name. */
export function renderPlots(
  records: readonly EpochRecord[],
  ctx: Pick<OutputContext, "title" | "classNames" | "trainCounts">,
): Record<(typeof PLOT_FILES)[number], string> {
  const ev = evaluated(records);
  const last = ev[ev.length - 1];
  return {
    "accuracy.svg": lineChart({
      title: `${ctx.title}: test accuracy`,
      xLabel: "epoch",
      yLabel: "accuracy (%)",
      yRange: [0, 100],
      series: [
        series(ev, "test top-1", (r) => r.top1),
        series(ev, "head", (r) => r.head),
        series(ev, "medium", (r) => r.medium),
        series(ev, "tail", (r) => r.tail),
        series(records, "train (mixup-weighted)", (r) => r.train_accuracy),
      ],
    }),
    "loss.svg": lineChart({
      title: `${ctx.title}: loss`,
      xLabel: "epoch",
      yLabel: "loss",
      series: [
        series(records, "train loss", (r) => r.train_loss),
        series(ev, "test loss", (r) => r.test_loss),
      ],
    }),
    "per_class.svg": scatterChart({
      title: `${ctx.title}: per-class test accuracy (epoch ${last?.epoch ?? "-"})`,
      xLabel: "training images of the class",
      yLabel: "test accuracy (%)",
      xLog: true,
      yRange: [0, 100],
      points: (last?.per_class ?? []).map((acc, k) => ({
        x: ctx.trainCounts[k],
        y: acc ?? NaN,
        label: ctx.classNames[k] ?? String(k),
      })),
    }),
    "nc.svg": lineChart({
      title: `${ctx.title}: neural-collapse metrics (test set)`,
      xLabel: "epoch",
      yLabel: "value",
      series: [
        series(ev, "NC1 = Tr(Sw Sb+)/K", (r) => r.nc?.nc1),
        series(ev, "||H/|H| - W/|W|||^2", (r) => r.nc?.normalizedDistance),
        series(ev, "mean cos(h_k, h_k')", (r) => r.nc?.meanCosH),
        series(ev, "mean cos(h_k, w_k)", (r) => r.nc?.meanDiagCosHW),
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
    ...(r?.extra_groups?.length ? { extraGroups: r.extra_groups } : {}),
  };
}

/** The best evaluated epoch (highest top-1; the earliest on ties), or undefined. */
export function bestRecord(records: readonly EpochRecord[]): EpochRecord | undefined {
  let best: EpochRecord | undefined;
  for (const r of evaluated(records)) if (!best || r.top1! > best.top1!) best = r;
  return best;
}

/** The markdown report. */
export function renderRunReport(records: readonly EpochRecord[], ctx: OutputContext): string {
  const ev = evaluated(records);
  const last = ev[ev.length - 1];
  const perClass: ClassAccuracy[] = (last?.per_class ?? []).map((acc, k) => ({
    className: ctx.classNames[k] ?? String(k),
    trainCount: ctx.trainCounts[k] ?? 0,
    acc: acc ?? NaN,
  }));
  const speeds = records.map((r) => r.images_per_sec).filter((v) => Number.isFinite(v));
  return renderReport({
    recipe: ctx.recipe,
    dataset: ctx.title,
    config: ctx.config,
    best: split(bestRecord(records)),
    last: split(last),
    perClass,
    paper: paperResult(ctx.recipe, ctx.ratio),
    nc: last?.nc ? { ...last.nc } : undefined,
    imagesPerSec: speeds.length ? speeds.reduce((a, b) => a + b, 0) / speeds.length : NaN,
    adapter: ctx.adapter,
    notes: [
      `epochs run: ${records.length ? records[records.length - 1].epoch : 0}` +
      `; evaluated: ${ev.length}`,
      ...ctx.notes,
    ],
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
