/**
 * The paper table of a sweep (`recipes/paper_table.ts`): reads every run folder of the grid, takes
 * each run's best and last evaluated epoch exactly as its own report.md does (`bestRecord`,
 * `lastEvaluated`), and writes under the sweep root `table.json` (every run's values and the mean
 * and sample standard deviation over seeds, as fractions), `table.md` (percentages, the paper's
 * published number beside ours where one is held, the ETF + DR minus learnable + CE gap) and
 * `table.svg` (best top-1 per setting, error bars = std over seeds, published numbers marked).
 * Runs not finished are shown as missing, never as zero.
 *
 * @module
 */

// deno-lint-ignore no-import-prefix -- library code uses full specifiers (importable by URL)
import { join } from "jsr:@std/path@^1/join";
import { writeFileAtomic } from "../../nn/io/atomic_file.ts";
import {
  type Grid,
  type GridRun,
  recipeOf,
  runName,
  runState,
  type SweepSettings,
} from "./paper_grid.ts";
import { type PaperMethod, paperTop1, protocolDifferences } from "./paper_results.ts";
import type { RecipeFlags } from "./flags.ts";
import { bestRecord, type EpochRecord, lastEvaluated } from "./run_outputs.ts";
import { type BarChartOptions, panelGrid } from "./svg_plot.ts";

/** The metrics of one evaluated epoch of one run (fractions; `epoch` 0-based). */
export interface EpochValues {
  epoch: number;
  top1: number | null;
  head: number | null;
  medium: number | null;
  tail: number | null;
  ece: number | null;
}

/** Mean and sample standard deviation (n - 1) over the finished seeds; null when none. */
export interface MeanStd {
  mean: number | null;
  /** null with fewer than two values. */
  std: number | null;
  n: number;
}

/** One metric set (best or last epoch) aggregated over seeds. */
export interface AggregateValues {
  top1: MeanStd;
  head: MeanStd;
  medium: MeanStd;
  tail: MeanStd;
  ece: MeanStd;
}

/** One run's entry in table.json. */
export interface RunEntry {
  seed: number;
  name: string;
  status: "missing" | "started" | "finished";
  epochsDone: number;
  best: EpochValues | null;
  last: EpochValues | null;
}

/** One row of the table: a dataset, ratio, backbone and method over its seeds. */
export interface TableRow {
  dataset: string;
  ratio: number;
  backbone: string;
  method: PaperMethod;
  seedsFinished: number;
  seeds: number;
  best: AggregateValues;
  last: AggregateValues;
  /** The published top-1 (percent) for this setting, or null where none is held. */
  paper: number | null;
  /** Best top-1 mean minus the published number, in points; null when not comparable. */
  paperGap: number | null;
  /** Why the runs are not comparable with the published number (empty when they are). */
  differences: string[];
  runs: RunEntry[];
}

/** ETF + DR minus learnable + CE (difference of seed means, in points) for one setting. */
export interface GapRow {
  dataset: string;
  ratio: number;
  backbone: string;
  bestTop1: number | null;
  lastTop1: number | null;
  bestTail: number | null;
}

/** The whole table (table.json). */
export interface PaperTable {
  generatedAt: string;
  convention: string;
  grid: Grid;
  settings: SweepSettings;
  runsFinished: number;
  runsTotal: number;
  rows: TableRow[];
  gaps: GapRow[];
}

const KEYS = ["top1", "head", "medium", "tail", "ece"] as const;

function values(r: EpochRecord | undefined): EpochValues | null {
  if (!r) return null;
  const v = (x: number | undefined) => (typeof x === "number" && Number.isFinite(x) ? x : null);
  return {
    epoch: r.epoch,
    top1: v(r.top1),
    head: v(r.head),
    medium: v(r.medium),
    tail: v(r.tail),
    ece: v(r.ece),
  };
}

/** Mean and sample standard deviation of the finite values. */
export function meanStd(xs: readonly (number | null | undefined)[]): MeanStd {
  const v = xs.filter((x): x is number => typeof x === "number" && Number.isFinite(x));
  if (!v.length) return { mean: null, std: null, n: 0 };
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const std = v.length > 1
    ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1))
    : null;
  return { mean, std, n: v.length };
}

function aggregate(entries: RunEntry[], which: "best" | "last"): AggregateValues {
  const done = entries.filter((e) => e.status === "finished");
  const out = {} as AggregateValues;
  for (const k of KEYS) out[k] = meanStd(done.map((e) => e[which]?.[k]));
  return out;
}

/** Reads every run of the grid under `root` and builds the table. */
export async function buildPaperTable(
  root: string,
  grid: Grid,
  settings: SweepSettings,
): Promise<PaperTable> {
  const rows: TableRow[] = [];
  let finished = 0, total = 0;
  for (const backbone of grid.backbones) {
    for (const dataset of grid.datasets) {
      for (const ratio of grid.ratios) {
        for (const method of grid.methods) {
          const runs: RunEntry[] = [];
          let differences: string[] = [];
          for (const seed of grid.seeds) {
            const run: GridRun = { dataset, ratio, method, backbone, seed };
            const name = runName(run);
            const st = await runState(join(root, name));
            total++;
            if (st.status === "finished") {
              finished++;
              const flags = st.config?.flags as RecipeFlags | undefined;
              if (flags && !differences.length) {
                differences = protocolDifferences(recipeOf(dataset), flags);
              }
            }
            runs.push({
              seed,
              name,
              status: st.status,
              epochsDone: st.epochsDone,
              best: st.status === "finished" ? values(bestRecord(st.records)) : null,
              last: st.status === "finished" ? values(lastEvaluated(st.records)) : null,
            });
          }
          const best = aggregate(runs, "best");
          const paper = method === "etf+dr"
            ? paperTop1(`${dataset}_lt`, ratio, { backbone, method }) ?? null
            : null;
          const done = runs.filter((r) => r.status === "finished").length;
          rows.push({
            dataset,
            ratio,
            backbone,
            method,
            seedsFinished: done,
            seeds: runs.length,
            best,
            last: aggregate(runs, "last"),
            paper,
            paperGap: paper !== null && best.top1.mean !== null && done > 0 &&
                !differences.length
              ? best.top1.mean * 100 - paper
              : null,
            differences,
            runs,
          });
        }
      }
    }
  }
  const gaps: GapRow[] = [];
  for (const backbone of grid.backbones) {
    for (const dataset of grid.datasets) {
      for (const ratio of grid.ratios) {
        const find = (m: PaperMethod) =>
          rows.find((r) =>
            r.dataset === dataset && r.ratio === ratio && r.backbone === backbone && r.method === m
          );
        const etf = find("etf+dr"), ce = find("learnable+ce");
        if (!etf || !ce) continue;
        const d = (a: MeanStd, b: MeanStd) =>
          a.mean !== null && b.mean !== null ? (a.mean - b.mean) * 100 : null;
        gaps.push({
          dataset,
          ratio,
          backbone,
          bestTop1: d(etf.best.top1, ce.best.top1),
          lastTop1: d(etf.last.top1, ce.last.top1),
          bestTail: d(etf.best.tail, ce.best.tail),
        });
      }
    }
  }
  return {
    generatedAt: new Date().toISOString(),
    convention: "accuracies and ECE are fractions in [0, 1]; epoch is the 0-based epoch index; " +
      "std is the sample standard deviation over the finished seeds (n - 1); null: missing",
    grid,
    settings,
    runsFinished: finished,
    runsTotal: total,
    rows,
    gaps,
  };
}

const TITLES: Record<string, string> = {
  cifar10: "CIFAR-10-LT",
  cifar100: "CIFAR-100-LT",
  svhn: "SVHN-LT",
  stl10: "STL-10-LT",
};

function pm(m: MeanStd, scale = 100, digits = 2): string {
  if (m.mean === null) return "missing";
  const mean = (m.mean * scale).toFixed(digits);
  return m.std === null ? mean : `${mean} ± ${(m.std * scale).toFixed(digits)}`;
}

function signed(v: number | null): string {
  if (v === null) return "n/a";
  return `${v >= 0 ? "+" : "−"}${Math.abs(v).toFixed(2)}`;
}

function seedsCell(r: TableRow): string {
  return r.seedsFinished === r.seeds ? String(r.seeds) : `${r.seedsFinished}/${r.seeds}`;
}

/** The markdown table (percentages; epochs counted from 1 where shown). */
export function renderTableMd(t: PaperTable): string {
  const lines: string[] = [];
  lines.push("# Paper table: ETF + DR against learnable + CE (and the two ablations)", "");
  lines.push(
    `Runs finished: ${t.runsFinished} of ${t.runsTotal}. Values: mean ± sample std over the ` +
      'finished seeds, in percent (one seed: no std). "missing": no finished run (never 0). ' +
      "Each run's own numbers are in its report.md; table.json has every run's values.",
    "",
  );
  const s = t.settings;
  lines.push(
    `Settings: epochs ${s.epochs ?? "recipe default (200)"}, images per split ${
      s.limit ?? "all"
    }, batch ${s.batchSize ?? "recipe default (128)"}.`,
    "",
  );
  lines.push("## Top-1 (%)", "");
  lines.push(
    "| dataset | ratio | backbone | method | seeds | best top-1 | last top-1 | paper | best − paper |",
    "|---|---:|---|---|---:|---:|---:|---:|---:|",
  );
  for (const r of t.rows) {
    const paper = r.paper === null ? "—" : r.paper.toFixed(1);
    const gap = r.paper === null
      ? "—"
      : r.differences.length
      ? "not comparable"
      : signed(r.paperGap);
    lines.push(
      `| ${TITLES[r.dataset] ?? r.dataset} | ${r.ratio} | ${r.backbone} | ${r.method} | ` +
        `${seedsCell(r)} | ${pm(r.best.top1)} | ${pm(r.last.top1)} | ${paper} | ${gap} |`,
    );
  }
  lines.push("");
  const notComparable = t.rows.find((r) => r.paper !== null && r.differences.length);
  if (notComparable) {
    lines.push(
      `"not comparable": these runs depart from the paper's protocol (${
        notComparable.differences.join("; ")
      }).`,
      "",
    );
  }
  lines.push(
    '"paper": the published top-1 held in recipes/lib/paper_results.ts ("—": none held for ' +
      "this setting).",
    "",
  );
  if (t.gaps.length) {
    lines.push("## ETF + DR minus learnable + CE (points)", "");
    lines.push(
      "| dataset | ratio | backbone | best top-1 | last top-1 | best-epoch tail |",
      "|---|---:|---|---:|---:|---:|",
    );
    for (const g of t.gaps) {
      lines.push(
        `| ${TITLES[g.dataset] ?? g.dataset} | ${g.ratio} | ${g.backbone} | ` +
          `${g.bestTop1 === null ? "missing" : signed(g.bestTop1)} | ` +
          `${g.lastTop1 === null ? "missing" : signed(g.lastTop1)} | ` +
          `${g.bestTail === null ? "missing" : signed(g.bestTail)} |`,
      );
    }
    lines.push("");
  }
  for (const which of ["best", "last"] as const) {
    lines.push(
      `## ${which === "best" ? "Best" : "Last"} epoch: head / medium / tail and ECE (%)`,
      "",
    );
    lines.push(
      "| dataset | ratio | backbone | method | top-1 | head | medium | tail | ECE |",
      "|---|---:|---|---|---:|---:|---:|---:|---:|",
    );
    for (const r of t.rows) {
      const a = r[which];
      lines.push(
        `| ${TITLES[r.dataset] ?? r.dataset} | ${r.ratio} | ${r.backbone} | ${r.method} | ` +
          `${pm(a.top1)} | ${pm(a.head)} | ${pm(a.medium)} | ${pm(a.tail)} | ${pm(a.ece)} |`,
      );
    }
    lines.push("");
  }
  lines.push("## Runs", "");
  lines.push("| run | status | epochs done | best epoch | best top-1 | last top-1 |");
  lines.push("|---|---|---:|---:|---:|---:|");
  for (const r of t.rows) {
    for (const e of r.runs) {
      const pct = (v: number | null | undefined) =>
        typeof v === "number" ? (v * 100).toFixed(2) : "—";
      lines.push(
        `| ${e.name} | ${e.status} | ${e.epochsDone} | ${e.best ? e.best.epoch + 1 : "—"} | ` +
          `${pct(e.best?.top1)} | ${pct(e.last?.top1)} |`,
      );
    }
  }
  lines.push("");
  return lines.join("\n");
}

/** The SVG: one panel per backbone and dataset, best top-1 per ratio and method. */
export function renderTableSvg(t: PaperTable): string {
  const panels: BarChartOptions[] = [];
  for (const backbone of t.grid.backbones) {
    for (const dataset of t.grid.datasets) {
      const rows = t.rows.filter((r) => r.backbone === backbone && r.dataset === dataset);
      const marks = t.grid.ratios.flatMap((ratio, g) => {
        const r = rows.find((x) => x.ratio === ratio && x.method === "etf+dr");
        const si = t.grid.methods.indexOf("etf+dr");
        return r?.paper != null && si >= 0 ? [{ group: g, series: si, value: r.paper }] : [];
      });
      panels.push({
        kind: "bar",
        title: `${TITLES[dataset] ?? dataset}, ${backbone}: best top-1`,
        xLabel: "imbalance ratio",
        yLabel: "top-1 (%)",
        groups: t.grid.ratios.map(String),
        series: t.grid.methods.map((m) => {
          const of = (ratio: number) => rows.find((x) => x.ratio === ratio && x.method === m);
          return {
            name: m,
            values: t.grid.ratios.map((ratio) => {
              const v = of(ratio)?.best.top1.mean;
              return v === null || v === undefined ? null : v * 100;
            }),
            errors: t.grid.ratios.map((ratio) => {
              const v = of(ratio)?.best.top1.std;
              return v === null || v === undefined ? null : v * 100;
            }),
          };
        }),
        marks,
        markLabel: "published",
        yRange: [0, 100],
      });
    }
  }
  return panelGrid({
    title: `Paper table: best top-1 (mean ± std over seeds; ${t.runsFinished}/${t.runsTotal} ` +
      "runs finished)",
    columns: Math.min(2, panels.length || 1),
    panelWidth: 520,
    panelHeight: 300,
    panels,
  });
}

/** Writes table.json, table.md and table.svg under `root` (atomically); returns the table. */
export async function writePaperTable(
  root: string,
  grid: Grid,
  settings: SweepSettings,
): Promise<PaperTable> {
  const t = await buildPaperTable(root, grid, settings);
  await Deno.mkdir(root, { recursive: true });
  await writeFileAtomic(join(root, "table.json"), JSON.stringify(t, null, 2) + "\n");
  await writeFileAtomic(join(root, "table.md"), renderTableMd(t));
  await writeFileAtomic(join(root, "table.svg"), renderTableSvg(t));
  return t;
}
