/**
 * The paper's table from one command: every combination of datasets x imbalance ratios x methods x
 * backbones x seeds as a normal recipe run in its own folder under `--out`, `--parallel` at a time,
 * resumable after any interruption, then `table.md`, `table.json` and `table.svg` under `--out`
 * (mean ± std over seeds, the published numbers beside ours, the ETF + DR minus learnable + CE
 * gap). `--help` explains the grid, the time it takes on this adapter (from measured images/s)
 * and how to narrow it.
 *
 *   deno run -A recipes/paper_table.ts --out runs/paper_table --datasets cifar10 --seeds 0,1,2
 *
 * Exit codes: 0 done (and --help), 1 some run failed or no adapter, 2 usage error.
 *
 * @module
 */

// deno-lint-ignore no-import-prefix -- library code uses full specifiers (importable by URL)
import { parseArgs } from "jsr:@std/cli@^1.0.32/parse-args";
import { initDevice } from "../gpu/device.ts";
import "../gpu/ops/mod.ts";
import { dataDir as defaultDataDir } from "../data/download.ts";
import {
  DEFAULT_SEEDS,
  type Grid,
  GRID_BACKBONES,
  GRID_DATASETS,
  GRID_METHODS,
  GRID_RATIOS,
  type GridBackbone,
  type GridDataset,
  gridRuns,
  parseAxis,
  recipeOf,
  recipesTakeBackbone,
  runName,
  runState,
  type SweepSettings,
} from "./lib/paper_grid.ts";
import type { PaperMethod } from "./lib/paper_results.ts";
import { writePaperTable } from "./lib/paper_table_report.ts";
import { checkSweepSettings, runSweep } from "./lib/sweep.ts";
import {
  adapterKey,
  estimatedImages,
  formatDuration,
  measureThroughput,
  readThroughputCache,
  type Throughput,
  throughputFromRuns,
  throughputKey,
  writeThroughputCache,
} from "./lib/throughput.ts";

interface Options {
  out: string;
  grid: Grid;
  settings: SweepSettings;
  dataDir?: string;
  parallel: number;
  measure: boolean;
  tableOnly: boolean;
  help: boolean;
}

const USAGE_HEAD = `Usage: deno run -A recipes/paper_table.ts [flags]

Runs the paper's table (Yang et al., NeurIPS 2022): every combination of
  datasets   cifar10, cifar100, svhn, stl10            (--datasets)
  ratios     0.005, 0.01, 0.02                          (--ratios; any value in (0, 1] works)
  methods    etf+dr (the paper's), learnable+ce (the baseline), etf+ce, learnable+dr (ablations)
                                                        (--methods)
  backbones  resnet32, densenet (DenseNet-BC-150)       (--backbones)
  seeds      0, 1, 2                                    (--seeds; any integers)
as one normal recipe run (recipes/<dataset>_lt.ts) per combination, in its own folder under
--out (e.g. cifar10-r0.01-resnet32-etf_dr-seed0, with its config.json, metrics.jsonl,
checkpoints, report.md and plots; the run's output in --out/logs/). Rerun the same command to
continue: finished runs are never redone, interrupted ones resume from their last checkpoint (a
kill, even kill -9, loses at most the epoch in flight of each run in flight). After each run,
table.md, table.json and table.svg under --out are rewritten: mean ± std over seeds of best- and
last-epoch top-1, head/medium/tail and ECE, the published number beside ours, the ETF + DR minus
learnable + CE gap; runs not finished are shown as missing.

Flags:
  --out DIR                 sweep root (default: runs/paper_table)
  --datasets LIST           comma list of datasets (default: all four)
  --ratios LIST             comma list of imbalance ratios (default: 0.005,0.01,0.02)
  --methods LIST            comma list of methods (default: all four)
  --backbones LIST          comma list of backbones (default: resnet32,densenet)
  --seeds LIST              comma list of seeds (default: 0,1,2)
  --epochs N                epochs per run (default: the recipes' 200, the paper's)
  --limit N                 images per split, for quick looks (not comparable with the paper)
  --batch-size N            batch size of every run (default: the recipes' 128)
  --eval-every N            evaluate every N epochs (default 1)
  --data-dir DIR            dataset folder (default: $COLLAPSE_DATA_DIR or ~/.cache/collapse)
  --no-verify               pass --no-verify to the recipes (archives not the official release)
  --parallel N              recipe processes at once on the one GPU (default 1)
  --measure                 measure training/evaluation images/s of each backbone and dataset
                            of the grid on this adapter (a few steps each), cache them in
                            <data-dir>/throughput.json, print the estimate and exit
  --table-only              rewrite the table from the runs under --out and exit
  -h, --help                this help, with the grid's size and time on this adapter`;

function usageError(msg: string): never {
  console.error(`error: ${msg}\n\n${USAGE_HEAD}`);
  Deno.exit(2);
}

function positiveInt(flag: string, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) usageError(`--${flag} must be an integer >= 1, got ${v}`);
  return n;
}

function parse(args: string[]): Options {
  const unknown: string[] = [];
  const p = parseArgs(args, {
    string: [
      "out",
      "datasets",
      "ratios",
      "methods",
      "backbones",
      "seeds",
      "epochs",
      "limit",
      "batch-size",
      "eval-every",
      "data-dir",
      "parallel",
    ],
    boolean: ["measure", "table-only", "help", "no-verify"],
    alias: { h: "help" },
    unknown: (a) => {
      unknown.push(a);
      return false;
    },
  });
  if (unknown.length) usageError(`unknown flag ${unknown[0]}`);
  const axis = <T extends string | number>(
    flag: string,
    all: readonly T[],
    parseOne: (s: string) => T | undefined,
  ): T[] => {
    const v = parseAxis(flag, p[flag] as string | undefined, all, parseOne);
    if (typeof v === "string") usageError(v);
    return v;
  };
  const grid: Grid = {
    datasets: axis<GridDataset>(
      "datasets",
      GRID_DATASETS,
      (s) => (GRID_DATASETS as readonly string[]).includes(s) ? s as GridDataset : undefined,
    ),
    ratios: axis<number>("ratios", GRID_RATIOS, (s) => {
      const n = Number(s);
      return n > 0 && n <= 1 ? n : undefined;
    }),
    methods: axis<PaperMethod>(
      "methods",
      GRID_METHODS,
      (s) => (GRID_METHODS as readonly string[]).includes(s) ? s as PaperMethod : undefined,
    ),
    backbones: axis<GridBackbone>(
      "backbones",
      GRID_BACKBONES,
      (s) => (GRID_BACKBONES as readonly string[]).includes(s) ? s as GridBackbone : undefined,
    ),
    seeds: axis<number>("seeds", DEFAULT_SEEDS, (s) => {
      const n = Number(s);
      return Number.isSafeInteger(n) ? n : undefined;
    }),
  };
  return {
    out: (p.out as string | undefined) || "runs/paper_table",
    grid,
    settings: {
      epochs: positiveInt("epochs", p.epochs),
      limit: positiveInt("limit", p.limit),
      batchSize: positiveInt("batch-size", p["batch-size"]),
      evalEvery: positiveInt("eval-every", p["eval-every"]),
      ...(p["no-verify"] === true ? { noVerify: true } : {}),
    },
    dataDir: (p["data-dir"] as string | undefined) || undefined,
    parallel: positiveInt("parallel", p.parallel) ?? 1,
    measure: p.measure === true,
    tableOnly: p["table-only"] === true,
    help: p.help === true,
  };
}

/** The figures this adapter has for each backbone and dataset of the grid. */
async function knownThroughput(
  o: Options,
  adapter: string,
): Promise<Map<string, Throughput>> {
  const fromRuns = await throughputFromRuns(o.out);
  const cache = await readThroughputCache(o.dataDir ?? defaultDataDir());
  const out = new Map<string, Throughput>();
  for (const [k, v] of [...cache, ...fromRuns]) if (k.startsWith(`${adapter} || `)) out.set(k, v);
  return out;
}

function batchOf(o: Options, d: GridDataset): number {
  return o.settings.batchSize ?? recipeOf(d).defaults.batchSize;
}

/** Word-wraps each paragraph of `text` at `width` columns (indented lines are kept as they are). */
function wrap(text: string, width = 100): string {
  return text.split("\n").map((line) => {
    if (line.length <= width || line.startsWith(" ")) return line;
    const out: string[] = [];
    let cur = "";
    for (const w of line.split(" ")) {
      if (cur && cur.length + 1 + w.length > width) {
        out.push(cur);
        cur = w;
      } else cur = cur ? `${cur} ${w}` : w;
    }
    if (cur) out.push(cur);
    return out.join("\n");
  }).join("\n");
}

/** The grid's size and the time it takes on this adapter, from measured images/s. */
async function estimate(o: Options): Promise<string> {
  const runs = gridRuns(o.grid);
  const lines = [
    `This grid: ${o.grid.datasets.length} datasets x ${o.grid.ratios.length} ratios x ` +
    `${o.grid.methods.length} methods x ${o.grid.backbones.length} backbones x ` +
    `${o.grid.seeds.length} seeds = ${runs.length} runs of ${
      o.settings.epochs ?? "200 (the recipes' default)"
    } epochs.`,
  ];
  let adapter: string;
  try {
    adapter = adapterKey((await initDevice()).adapter);
  } catch (e) {
    lines.push(`No time estimate: no WebGPU adapter (${(e as Error).message.split("\n")[0]}).`);
    return lines.join("\n");
  }
  const known = await knownThroughput(o, adapter);
  // Runs under --out count as progress only if they were made with these settings.
  const sameSweep = await checkSweepSettings(o.out, o.settings, { dryRun: true }) === undefined;
  lines.push(`Measured images/s on this adapter (${adapter}):`);
  let seconds = 0, estimated = 0, remaining = 0, noEval = false;
  const unmeasured = new Set<string>();
  for (const b of o.grid.backbones) {
    for (const d of o.grid.datasets) {
      const spec = recipeOf(d);
      if (b !== "resnet32" && !recipesTakeBackbone(spec)) {
        lines.push(`  ${b} on ${d}: not available (recipes/${spec.name}.ts has no --backbone)`);
        continue;
      }
      const t = known.get(throughputKey(adapter, b, d, batchOf(o, d)));
      lines.push(
        t
          ? `  ${b} on ${d} (batch ${t.batchSize}): ${t.train.toFixed(1)} training, ${
            t.eval === null ? "evaluation not measured" : `${t.eval.toFixed(1)} evaluation`
          } (${t.source})`
          : `  ${b} on ${d} (batch ${batchOf(o, d)}): not measured`,
      );
      if (!t) unmeasured.add(`${b}/${d}`);
    }
  }
  for (const r of runs) {
    const t = known.get(throughputKey(adapter, r.backbone, r.dataset, batchOf(o, r.dataset)));
    if (!t) continue;
    const epochs = o.settings.epochs ?? recipeOf(r.dataset).defaults.epochs;
    const every = o.settings.evalEvery ?? 1;
    const evals = Math.floor(epochs / every) + (epochs % every ? 1 : 0);
    const n = estimatedImages(r.dataset, r.ratio, o.settings.limit);
    const s = epochs * n.train / t.train + (t.eval ? evals * n.test / t.eval : 0);
    if (!t.eval) noEval = true;
    const st = await runState(`${o.out}/${runName(r)}`);
    seconds += s;
    estimated++;
    const done = sameSweep ? (st.status === "finished" ? epochs : st.epochsDone) : 0;
    remaining += s * (1 - Math.min(1, done / epochs));
  }
  lines.push(
    estimated
      ? `Estimated time of the ${estimated} measured runs (of ${runs.length}): ${
        formatDuration(seconds)
      } one at a time; still to run under ${o.out}: ${formatDuration(remaining)}` +
        (sameSweep ? "" : " (its runs were made with other settings)") +
        (noEval ? " (training only where evaluation was not measured)" : "") +
        " (training and evaluation at the measured rates; each run's start, data preparation " +
        "and kernel compilation come on top). Training images per run follow the long-tail formula (n_i = n_max r^(i/(K-1)); SVHN " +
        "with its extra split, as the official code). --parallel N shares the one GPU: it helps " +
        "only while one run leaves the GPU idle (small models on a large GPU)."
      : `No run of this grid has a measured throughput yet.`,
  );
  if (unmeasured.size) {
    lines.push(
      `Not measured: ${[...unmeasured].join(", ")}. \`--measure\` times a few steps of each ` +
        "(minutes on a CPU adapter, seconds on a GPU) and caches the figures; finished epochs " +
        "of runs under --out count too.",
    );
  }
  lines.push(
    "",
    "Narrow it with the filters, e.g. the paper's headline comparison on one dataset:",
    "  --datasets cifar10 --ratios 0.01 --methods etf+dr,learnable+ce --backbones resnet32",
    "  --seeds 0,1,2   (6 runs)",
    "or a quick look (reported as not comparable with the paper): --epochs 20 --limit 2000.",
  );
  return lines.join("\n");
}

/** Measures every backbone and dataset of the grid; returns how many measurements failed. */
async function measure(o: Options): Promise<number> {
  const ctx = await initDevice();
  const adapter = adapterKey(ctx.adapter);
  let failed = 0;
  for (const b of o.grid.backbones) {
    for (const d of o.grid.datasets) {
      if (b !== "resnet32" && !recipesTakeBackbone(recipeOf(d))) continue;
      const batch = batchOf(o, d);
      console.error(`collapse: measuring ${b} on ${d} (batch ${batch}) ...`);
      const t0 = performance.now();
      let m: Awaited<ReturnType<typeof measureThroughput>>;
      try {
        m = await measureThroughput(d, b, batch);
      } catch (e) {
        failed++;
        console.error(`collapse: ${b} on ${d}: measurement failed: ${(e as Error).message}`);
        continue;
      }
      const t: Throughput = { ...m, source: `measured ${new Date().toISOString().slice(0, 10)}` };
      // Cached at once: a later failure keeps what was measured.
      await writeThroughputCache(
        o.dataDir ?? defaultDataDir(),
        new Map([[throughputKey(adapter, b, d, batch), t]]),
      );
      console.error(
        `collapse: ${b} on ${d}: ${m.train.toFixed(1)} img/s training, ${
          m.eval?.toFixed(1)
        } img/s evaluation (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
      );
    }
  }
  return failed;
}

async function main(): Promise<number> {
  const o = parse(Deno.args);
  if (o.help) {
    console.log(`${USAGE_HEAD}\n\n${wrap(await estimate(o))}`);
    return 0;
  }
  if (o.measure) {
    const failed = await measure(o);
    console.log(wrap(await estimate(o)));
    return failed ? 1 : 0;
  }
  if (o.tableOnly) {
    const t = await writePaperTable(o.out, o.grid, o.settings);
    console.log(`table: ${o.out}/table.md (${t.runsFinished} of ${t.runsTotal} runs finished)`);
    return 0;
  }
  const problem = await checkSweepSettings(o.out, o.settings);
  if (problem) usageError(problem);
  const runs = gridRuns(o.grid);
  let writing = Promise.resolve();
  const rewrite = () => {
    writing = writing.then(() => writePaperTable(o.out, o.grid, o.settings).then(() => {}));
    return writing;
  };
  await rewrite();
  const outcomes = await runSweep({
    root: o.out,
    runs,
    settings: o.settings,
    dataDir: o.dataDir,
    parallel: o.parallel,
    log: (l) => console.error(l),
    onRunEnd: rewrite,
  });
  await rewrite();
  const failed = outcomes.filter((x) => x.status === "failed");
  const unavailable = outcomes.filter((x) => x.status === "unavailable");
  if (unavailable.length) {
    console.error(
      `collapse: paper_table: ${unavailable.length} runs not available: ${unavailable[0].detail}`,
    );
  }
  console.log(
    `table: ${o.out}/table.md; ${
      outcomes.filter((x) => x.status.startsWith("finished")).length
    } of ${runs.length} runs finished` + (failed.length ? `, ${failed.length} failed` : ""),
  );
  return failed.length ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
