/**
 * The run report (`report.md`): best and last top-1 with head/medium/tail and ECE, the paper's
 * published number beside ours (with the difference only when the run follows the paper's protocol;
 * otherwise "not comparable" and what differs), neural-collapse metrics, per-class accuracy table,
 * throughput, adapter, configuration, and the run's SVG plots linked as images.
 *
 * Values come in the project's data convention (0-based epoch indices, accuracies and ECE as
 * fractions in [0, 1], as in `metrics.jsonl` and `History`); the report shows them as people read
 * them: epochs counted from 1 and percentages.
 *
 * @module
 */

import { differingFlags } from "./paper_results.ts";

/** Accuracies (fractions in [0, 1]) at one epoch. */
export interface SplitAccuracy {
  /** 0-based epoch index (shown as epoch + 1). */
  epoch: number;
  top1: number;
  head: number;
  medium: number;
  tail: number;
  /** Expected calibration error (15 bins), a fraction; NaN or absent when not measured. */
  ece?: number;
  /** Head/medium/tail under further groupings (e.g. ImageNet-LT by training count). */
  extraGroups?: readonly { name: string; head: number; medium: number; tail: number }[];
}

/** One class's test accuracy (a fraction) and its training-image count. */
export interface ClassAccuracy {
  className: string;
  trainCount: number;
  acc: number;
}

/** A plot to link from the report; `file` is relative to the report. */
export interface ReportPlot {
  title: string;
  file: string;
}

/** The published number a run is set beside. */
export interface PaperNumber {
  /** Top-1 in percent, as published. */
  top1: number;
  /** Where it comes from, and for which setting (backbone, method). */
  source: string;
}

/** Everything {@linkcode renderReport} shows. Accuracies are fractions, epochs 0-based. */
export interface ReportInput {
  recipe: string;
  dataset: string;
  config: Record<string, unknown>;
  best: SplitAccuracy;
  last: SplitAccuracy;
  perClass: readonly ClassAccuracy[];
  /** The paper's published top-1 for this setting; omitted where it has none. */
  paper?: PaperNumber;
  /**
   * How this run departs from the paper's protocol (e.g. "--epochs 2 (the paper: 200)"); any
   * entry makes the comparison "not comparable". Default: none.
   */
  protocolDifferences?: readonly string[];
  /** What the setting is, for the sentence when nothing is published (e.g. "ratio 0.02"). */
  setting?: string;
  /** Neural-collapse metrics at the last epoch, by name. */
  nc?: Record<string, number | undefined>;
  /** Training throughput. */
  imagesPerSec: number;
  /** The GPU adapter, in words. */
  adapter: string;
  /** Plots to link; default {@linkcode DEFAULT_PLOTS}. */
  plots?: readonly ReportPlot[];
  /** Extra remarks, one bullet each (e.g. "trained from scratch: no --pretrained"). */
  notes?: readonly string[];
}

/** The plots a recipe writes beside its report. */
export const DEFAULT_PLOTS: readonly ReportPlot[] = [
  { title: "Test accuracy per epoch", file: "accuracy.svg" },
  { title: "Training loss per epoch", file: "loss.svg" },
  { title: "Per-class accuracy vs training count", file: "per_class.svg" },
  { title: "Neural-collapse metrics per epoch", file: "nc.svg" },
  { title: "Calibration: ECE per epoch and reliability diagram", file: "calibration.svg" },
];

/** A fraction as a percentage with `digits` decimals ("n/a" when not finite). */
export function percent(v: number | undefined | null, digits = 2): string {
  return typeof v !== "number" || !Number.isFinite(v) ? "n/a" : (v * 100).toFixed(digits);
}

function num(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return "n/a";
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : String(Number(v.toPrecision(4)));
}

/** Escape text for a markdown table cell. */
function cell(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
}

function signed(v: number): string {
  return `${v >= 0 ? "+" : "−"}${Math.abs(v).toFixed(2)}`;
}

function paperSection(r: ReportInput, lines: string[]): void {
  const diffs = r.protocolDifferences ?? [];
  lines.push("## Paper", "");
  if (!r.paper || !Number.isFinite(r.paper.top1)) {
    lines.push(
      `The paper publishes no top-1 for this setting${r.setting ? ` (${r.setting})` : ""}, so ` +
        "there is nothing to compare.",
      "",
    );
    if (diffs.length) {
      lines.push(`This run also departs from the paper's protocol: ${diffs.join("; ")}.`, "");
    }
    return;
  }
  lines.push("| | top-1 |", "|---|---:|");
  lines.push(`| paper (${cell(r.paper.source)}) | ${r.paper.top1.toFixed(1)} |`);
  lines.push(`| ours, best (epoch ${r.best.epoch + 1}) | ${percent(r.best.top1)} |`);
  lines.push(`| ours, last (epoch ${r.last.epoch + 1}) | ${percent(r.last.top1)} |`);
  lines.push("");
  if (diffs.length) {
    lines.push(
      `Not comparable (${differingFlags(diffs)} differ from the paper): ${diffs.join("; ")}. ` +
        "The difference to the published number is not reported.",
      "",
    );
  } else if (Number.isFinite(r.best.top1)) {
    const best = r.best.top1 * 100 - r.paper.top1;
    const last = Number.isFinite(r.last.top1) ? signed(r.last.top1 * 100 - r.paper.top1) : "n/a";
    lines.push(
      `Same protocol as the paper. Best top-1 minus the paper's: ${signed(best)} points; ` +
        `last minus the paper's: ${last} points.`,
      "",
    );
  }
}

/**
 * Render the markdown report of a run.
 *
 * @example
 * ```ts
 * import { renderReport } from "./report_md.ts";
 * const md = renderReport({
 *   recipe: "cifar10_lt",
 *   dataset: "CIFAR-10-LT",
 *   config: { ratio: 0.01, epochs: 200 },
 *   best: { epoch: 189, top1: 0.781, head: 0.923, medium: 0.760, tail: 0.667, ece: 0.051 },
 *   last: { epoch: 199, top1: 0.779, head: 0.920, medium: 0.758, tail: 0.665, ece: 0.049 },
 *   perClass: [{ className: "airplane", trainCount: 5000, acc: 0.951 }],
 *   paper: { top1: 78.5, source: "Yang et al., NeurIPS 2022" },
 *   imagesPerSec: 5400,
 *   adapter: "NVIDIA H100",
 * });
 * await Deno.writeTextFile(`${await Deno.makeTempDir()}/report.md`, md);
 * ```
 */
export function renderReport(r: ReportInput): string {
  const lines: string[] = [];
  lines.push(`# ${r.recipe}: ${r.dataset}`, "");

  lines.push("## Accuracy (top-1, %) and calibration (ECE, %)", "");
  lines.push("| | epoch | top-1 | head | medium | tail | ECE |");
  lines.push("|---|---:|---:|---:|---:|---:|---:|");
  for (const [name, a] of [["best", r.best], ["last", r.last]] as const) {
    lines.push(
      `| ${name} | ${a.epoch + 1} | ${percent(a.top1)} | ${percent(a.head)} | ` +
        `${percent(a.medium)} | ${percent(a.tail)} | ${percent(a.ece)} |`,
    );
  }
  for (const [name, a] of [["best", r.best], ["last", r.last]] as const) {
    for (const g of a.extraGroups ?? []) {
      lines.push(
        `| ${name}, by ${cell(g.name)} | ${a.epoch + 1} | | ${percent(g.head)} | ` +
          `${percent(g.medium)} | ${percent(g.tail)} | |`,
      );
    }
  }
  lines.push("");
  lines.push(
    "Epochs are counted from 1 (`metrics.jsonl` stores the 0-based index: epoch 1 is index 0); " +
      "best = the evaluated epoch with the highest top-1. ECE: 15 confidence bins, confidence = " +
      "the largest softmax probability of the logits (the official code's definition).",
    "",
  );

  paperSection(r, lines);

  if (r.nc && Object.keys(r.nc).length > 0) {
    lines.push(`## Neural-collapse metrics (epoch ${r.last.epoch + 1})`, "");
    lines.push("| metric | value |", "|---|---:|");
    for (const [k, v] of Object.entries(r.nc)) lines.push(`| ${cell(k)} | ${num(v)} |`);
    lines.push("");
  }

  lines.push("## Run", "");
  lines.push(`- adapter: ${r.adapter.replace(/\r?\n/g, " ")}`);
  lines.push(
    `- training throughput: ${
      Number.isFinite(r.imagesPerSec) ? Math.round(r.imagesPerSec).toLocaleString("en-US") : "n/a"
    } images/s`,
  );
  for (const n of r.notes ?? []) lines.push(`- ${n.replace(/\r?\n/g, " ")}`);
  lines.push("");

  const plots = r.plots ?? DEFAULT_PLOTS;
  if (plots.length > 0) {
    lines.push("## Plots", "");
    for (const p of plots) {
      lines.push(`![${p.title.replace(/[[\]]/g, "")}](${encodeURI(p.file)})`, "");
    }
  }

  lines.push(`## Per-class accuracy (epoch ${r.last.epoch + 1})`, "");
  if (r.perClass.length === 0) {
    lines.push("No per-class results.", "");
  } else {
    lines.push("| # | class | training images | accuracy (%) |", "|---:|---|---:|---:|");
    r.perClass.forEach((p, i) => {
      lines.push(`| ${i} | ${cell(p.className)} | ${p.trainCount} | ${percent(p.acc)} |`);
    });
    lines.push("");
  }

  lines.push("## Configuration", "", "```json", JSON.stringify(r.config, null, 2), "```", "");
  return lines.join("\n");
}
