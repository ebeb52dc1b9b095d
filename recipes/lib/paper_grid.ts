/**
 * The grid of the paper's table (Yang et al., NeurIPS 2022): datasets x imbalance ratios x methods
 * (classifier + loss) x backbones x seeds, each cell one normal recipe run in its own folder under
 * a sweep root; the folder names, the command line of each run, and what state a run folder is in
 * (missing, started, finished) read from its own files.
 *
 * @module
 */

// deno-lint-ignore no-import-prefix -- library code uses full specifiers (importable by URL)
import { join } from "jsr:@std/path@^1/join";
import { pathExists } from "../../data/path_exists.ts";
import type { PaperMethod } from "./paper_results.ts";
import { CONFIG_FILE, readConfig, readMetrics } from "./run_dir.ts";
import { type EpochRecord, epochsInReport } from "./run_outputs.ts";
import { type RecipeName, RECIPES, type RecipeSpec } from "./recipe_specs.ts";

/** The datasets of the paper's CIFAR-style table. */
export const GRID_DATASETS = ["cifar10", "cifar100", "svhn", "stl10"] as const;
/** A dataset of the grid. */
export type GridDataset = (typeof GRID_DATASETS)[number];
/** The paper's imbalance ratios. */
export const GRID_RATIOS: readonly number[] = [0.005, 0.01, 0.02];
/** The methods: the paper's ETF + DR, the learnable + CE baseline, and the two ablations. */
export const GRID_METHODS: readonly PaperMethod[] = [
  "etf+dr",
  "learnable+ce",
  "etf+ce",
  "learnable+dr",
];
/** The paper's two backbones of this table. */
export const GRID_BACKBONES = ["resnet32", "densenet"] as const;
/** A backbone of the grid. */
export type GridBackbone = (typeof GRID_BACKBONES)[number];
/** Seeds run by default. */
export const DEFAULT_SEEDS: readonly number[] = [0, 1, 2];

/** One run of the grid. */
export interface GridRun {
  dataset: GridDataset;
  ratio: number;
  method: PaperMethod;
  backbone: GridBackbone;
  seed: number;
}

/** The grid after the filters. */
export interface Grid {
  datasets: GridDataset[];
  ratios: number[];
  methods: PaperMethod[];
  backbones: GridBackbone[];
  seeds: number[];
}

/** The recipe of a grid dataset. */
export function recipeOf(dataset: GridDataset): RecipeSpec {
  return RECIPES[`${dataset}_lt` as RecipeName];
}

/** Every run of the grid, in the order they are started (seed-major, so seeds fill evenly). */
export function gridRuns(g: Grid): GridRun[] {
  const out: GridRun[] = [];
  for (const seed of g.seeds) {
    for (const backbone of g.backbones) {
      for (const dataset of g.datasets) {
        for (const ratio of g.ratios) {
          for (const method of g.methods) out.push({ dataset, ratio, method, backbone, seed });
        }
      }
    }
  }
  return out;
}

/** The run's folder name under the sweep root, e.g. `cifar10-r0.01-resnet32-etf_dr-seed0`. */
export function runName(r: GridRun): string {
  return `${r.dataset}-r${r.ratio}-${r.backbone}-${r.method.replace("+", "_")}-seed${r.seed}`;
}

/** Settings every run of a sweep shares (they may not change between invocations of a sweep). */
export interface SweepSettings {
  /** Epochs per run (default: the recipe's, 200). */
  epochs?: number;
  /** Images per split (quick runs). */
  limit?: number;
  batchSize?: number;
  evalEvery?: number;
  /** Pass `--no-verify` to the recipes: accept archives that are not the official release. */
  noVerify?: boolean;
}

/** Whether the recipes of this checkout take `--backbone` (DenseNet-BC needs it). */
export function recipesTakeBackbone(spec: RecipeSpec): boolean {
  return spec.extra.some((e) => e.name === "backbone") || "backbone" in spec.defaults;
}

/** The recipe command-line arguments of one run (without `--resume`). */
export function runArgs(
  r: GridRun,
  dir: string,
  s: SweepSettings,
  dataDir: string | undefined,
): string[] {
  const [classifier, loss] = r.method.split("+");
  const args = [
    "--out",
    dir,
    "--ratio",
    String(r.ratio),
    "--classifier",
    classifier,
    "--loss",
    loss,
    "--seed",
    String(r.seed),
  ];
  // The recipe default is ResNet-32; --backbone only where another is asked for.
  if (r.backbone !== "resnet32") args.push("--backbone", r.backbone);
  if (s.epochs !== undefined) args.push("--epochs", String(s.epochs));
  if (s.limit !== undefined) args.push("--limit", String(s.limit));
  if (s.batchSize !== undefined) args.push("--batch-size", String(s.batchSize));
  if (s.evalEvery !== undefined) args.push("--eval-every", String(s.evalEvery));
  if (dataDir !== undefined) args.push("--data-dir", dataDir);
  if (s.noVerify) args.push("--no-verify");
  return args;
}

/** What a run folder holds. */
export interface RunState {
  /** "missing": no folder; "started": a run began (resume it); "finished": every epoch done. */
  status: "missing" | "started" | "finished";
  /** Epochs completed (metrics records). */
  epochsDone: number;
  /** The epochs the run was asked for (from its config.json). */
  epochs?: number;
  records: EpochRecord[];
  config?: Record<string, unknown>;
}

/**
 * Reads a run folder's state from its config.json, metrics.jsonl and report.md: "finished" when
 * every epoch is in the metrics, the last evaluated, and report.md is the final one.
 */
export async function runState(dir: string): Promise<RunState> {
  if (!(await pathExists(join(dir, CONFIG_FILE)))) {
    const started = await pathExists(dir);
    return { status: started ? "started" : "missing", epochsDone: 0, records: [] };
  }
  const config = (await readConfig(dir)) as Record<string, unknown> | undefined;
  const records = (await readMetrics(dir)) as EpochRecord[];
  const flags = (config?.flags ?? {}) as { epochs?: number };
  const epochs = flags.epochs;
  const lastEpoch = records.length ? records[records.length - 1].epoch : -1;
  // Finished: every epoch in the metrics, the last one evaluated, and the final report written
  // (the report follows the metrics line, so a run killed in between is not finished).
  let reported: number | undefined;
  try {
    reported = epochsInReport(await Deno.readTextFile(join(dir, "report.md")));
  } catch { /* no report yet */ }
  const finished = epochs !== undefined && lastEpoch + 1 >= epochs &&
    typeof records[records.length - 1].top1 === "number" && reported === lastEpoch + 1;
  return {
    status: finished ? "finished" : "started",
    epochsDone: lastEpoch + 1,
    epochs,
    records,
    config,
  };
}

/** Parses a comma list of one axis against its allowed values; returns the values or an error. */
export function parseAxis<T extends string | number>(
  flag: string,
  raw: string | undefined,
  all: readonly T[],
  parse: (s: string) => T | undefined,
): T[] | string {
  if (raw === undefined) return [...all];
  const out: T[] = [];
  for (const part of raw.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
    const v = parse(part);
    if (v === undefined) return `--${flag}: "${part}" is not one of ${all.join(", ")}`;
    if (!out.includes(v)) out.push(v);
  }
  if (out.length === 0) return `--${flag} needs at least one value`;
  return out;
}
