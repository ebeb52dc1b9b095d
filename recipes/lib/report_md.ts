/**
 * The run report (`report.md`): best and last top-1 with head/medium/tail, the paper's published
 * number beside ours, neural-collapse metrics, per-class accuracy table, throughput, adapter,
 * configuration, and the run's SVG plots linked as images.
 *
 * @module
 */

/** Accuracies (percent, 0-100) at one epoch. */
export interface SplitAccuracy {
  epoch: number;
  top1: number;
  head: number;
  medium: number;
  tail: number;
  /** Head/medium/tail under further groupings (e.g. ImageNet-LT by training count). */
  extraGroups?: readonly { name: string; head: number; medium: number; tail: number }[];
}

/** One class's test accuracy (percent) and its training-image count. */
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

/** Everything {@linkcode renderReport} shows. Accuracies are percentages. */
export interface ReportInput {
  recipe: string;
  dataset: string;
  config: Record<string, unknown>;
  best: SplitAccuracy;
  last: SplitAccuracy;
  perClass: readonly ClassAccuracy[];
  /** The paper's published top-1 for this setting; omitted where it has none. */
  paper?: { top1: number; source: string };
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
];

function pct(v: number | undefined, digits = 2): string {
  return v === undefined || !Number.isFinite(v) ? "n/a" : v.toFixed(digits);
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
 *   best: { epoch: 190, top1: 78.1, head: 92.3, medium: 76.0, tail: 66.7 },
 *   last: { epoch: 200, top1: 77.9, head: 92.0, medium: 75.8, tail: 66.5 },
 *   perClass: [{ className: "airplane", trainCount: 5000, acc: 95.1 }],
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

  lines.push("## Accuracy (top-1, %)", "");
  lines.push("| | epoch | top-1 | head | medium | tail |");
  lines.push("|---|---:|---:|---:|---:|---:|");
  for (const [name, a] of [["best", r.best], ["last", r.last]] as const) {
    lines.push(
      `| ${name} | ${a.epoch} | ${pct(a.top1)} | ${pct(a.head)} | ${pct(a.medium)} | ` +
        `${pct(a.tail)} |`,
    );
  }
  for (const [name, a] of [["best", r.best], ["last", r.last]] as const) {
    for (const g of a.extraGroups ?? []) {
      lines.push(
        `| ${name}, by ${cell(g.name)} | ${a.epoch} | | ${pct(g.head)} | ${pct(g.medium)} | ` +
          `${pct(g.tail)} |`,
      );
    }
  }
  lines.push("");

  lines.push("## Paper", "");
  if (r.paper && Number.isFinite(r.paper.top1)) {
    lines.push("| | top-1 |", "|---|---:|");
    lines.push(`| paper (${cell(r.paper.source)}) | ${pct(r.paper.top1, 1)} |`);
    lines.push(`| ours, best (epoch ${r.best.epoch}) | ${pct(r.best.top1)} |`);
    lines.push(`| ours, last (epoch ${r.last.epoch}) | ${pct(r.last.top1)} |`);
    lines.push("");
    if (Number.isFinite(r.best.top1)) {
      lines.push(
        `Best top-1 minus the paper's: ${signed(r.best.top1 - r.paper.top1)} points; ` +
          `last minus the paper's: ${
            Number.isFinite(r.last.top1) ? signed(r.last.top1 - r.paper.top1) : "n/a"
          } points.`,
        "",
      );
    }
    const cls = r.config.classifier;
    const loss = r.config.loss;
    if ((typeof cls === "string" && cls !== "etf") || (typeof loss === "string" && loss !== "dr")) {
      lines.push(
        `Note: the published number is for the ETF classifier with the DR loss; this run used ` +
          `classifier ${String(cls ?? "?")} with loss ${String(loss ?? "?")}.`,
        "",
      );
    }
  } else {
    lines.push(
      "The paper publishes no top-1 for this setting, so there is nothing to compare.",
      "",
    );
  }

  if (r.nc && Object.keys(r.nc).length > 0) {
    lines.push(`## Neural-collapse metrics (epoch ${r.last.epoch})`, "");
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

  lines.push(`## Per-class accuracy (epoch ${r.last.epoch})`, "");
  if (r.perClass.length === 0) {
    lines.push("No per-class results.", "");
  } else {
    lines.push("| # | class | training images | accuracy (%) |", "|---:|---|---:|---:|");
    r.perClass.forEach((p, i) => {
      lines.push(`| ${i} | ${cell(p.className)} | ${p.trainCount} | ${pct(p.acc)} |`);
    });
    lines.push("");
  }

  lines.push("## Configuration", "", "```json", JSON.stringify(r.config, null, 2), "```", "");
  return lines.join("\n");
}
