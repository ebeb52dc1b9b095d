/**
 * Measured throughput for the paper table's time estimate: training and evaluation images/s per
 * adapter, backbone and dataset (model width and image size follow the dataset) and batch size,
 * taken from earlier runs' metrics.jsonl (`images_per_sec`, `eval_images_per_sec`) or from a
 * measurement of a few steps (`measureThroughput`) cached in `<data-dir>/throughput.json`; and the
 * estimate itself (epochs x images / measured images/s). Nothing is guessed: a figure that was
 * never measured is reported as such.
 *
 * @module
 */

// deno-lint-ignore no-import-prefix -- library code uses full specifiers (importable by URL)
import { join } from "jsr:@std/path@^1/join";
import type { AdapterSummary } from "../../gpu/device.ts";
import { Rng } from "../../gpu/rng.ts";
import type { Batch } from "../../data/types.ts";
import { writeFileAtomic } from "../../nn/io/atomic_file.ts";
import { evaluate } from "../../nn/training/evaluate.ts";
import { fit } from "../../nn/training/fit.ts";
import { compile, type DataSource } from "../../nn/training/state.ts";
import { type GridBackbone, type GridDataset, recipeOf } from "./paper_grid.ts";
import type { EpochRecord } from "./run_outputs.ts";
import { readConfig, readMetrics } from "./run_dir.ts";
import { type BackboneSpec, recipeBackbone } from "./recipe_specs.ts";
import { buildClassifier, makeLoss, makeOptimizer, makeSchedule } from "./training_setup.ts";

/** A measured throughput. */
export interface Throughput {
  /** Training images/s (steady state: after the first epoch / the compiling step). */
  train: number;
  /** Evaluation images/s, or null when not measured. */
  eval: number | null;
  batchSize: number;
  /** Where the figure comes from ("runs under DIR", "measured DATE"). */
  source: string;
}

/** File of the measured throughputs in the data folder. */
export const THROUGHPUT_FILE = "throughput.json";

/** The adapter, as a key ("llvmpipe (LLVM 15.0.6, 256 bits) | mesa | ..."). */
export function adapterKey(
  a: Pick<AdapterSummary, "description" | "vendor" | "architecture" | "device">,
): string {
  return [a.description, a.vendor, a.architecture, a.device].filter(Boolean).join(" | ");
}

/** The key of a figure: adapter, backbone, dataset, batch size. */
export function throughputKey(
  adapter: string,
  backbone: string,
  dataset: string,
  batchSize: number,
): string {
  return `${adapter} || ${backbone} || ${dataset} || batch ${batchSize}`;
}

function median(xs: number[]): number {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
}

interface RunConfig {
  recipe?: string;
  adapter?: AdapterSummary;
  flags?: { batchSize: number; backbone?: string; extra?: Record<string, unknown> };
}

/**
 * Throughputs measured by the runs under `root` (each a folder with config.json and
 * metrics.jsonl): the median over epochs after the first (the first compiles the pipelines) of
 * every run of one key.
 */
export async function throughputFromRuns(root: string): Promise<Map<string, Throughput>> {
  const acc = new Map<string, { train: number[]; eval: number[]; batch: number }>();
  let entries: Deno.DirEntry[] = [];
  try {
    entries = [...Deno.readDirSync(root)].filter((e) => e.isDirectory);
  } catch {
    return new Map();
  }
  for (const e of entries) {
    const dir = join(root, e.name);
    const config = (await readConfig(dir).catch(() => undefined)) as RunConfig | undefined;
    if (!config?.adapter || !config.flags) continue;
    const records = (await readMetrics(dir)) as EpochRecord[];
    const steady = records.length > 1 ? records.slice(1) : records;
    if (!steady.length) continue;
    const dataset = String(config.recipe ?? "").replace(/_lt$/, "");
    const backbone = String(config.flags.backbone ?? config.flags.extra?.backbone ?? "resnet32");
    const key = throughputKey(
      adapterKey(config.adapter),
      backbone,
      dataset,
      config.flags.batchSize,
    );
    const a = acc.get(key) ?? { train: [], eval: [], batch: config.flags.batchSize };
    for (const r of steady) {
      if (r.images_per_sec > 0) a.train.push(r.images_per_sec);
      const ev = (r as { eval_images_per_sec?: number }).eval_images_per_sec;
      if (typeof ev === "number" && ev > 0) a.eval.push(ev);
    }
    acc.set(key, a);
  }
  const out = new Map<string, Throughput>();
  for (const [k, a] of acc) {
    if (!a.train.length) continue;
    out.set(k, {
      train: median(a.train),
      eval: a.eval.length ? median(a.eval) : null,
      batchSize: a.batch,
      source: `earlier runs under ${root}`,
    });
  }
  return out;
}

/** The cached measurements of `<dataDir>/throughput.json` (empty when there is none). */
export async function readThroughputCache(dataDir: string): Promise<Map<string, Throughput>> {
  try {
    const o = JSON.parse(await Deno.readTextFile(join(dataDir, THROUGHPUT_FILE)));
    return new Map(Object.entries(o as Record<string, Throughput>));
  } catch {
    return new Map();
  }
}

/** Adds measurements to `<dataDir>/throughput.json`. */
export async function writeThroughputCache(
  dataDir: string,
  add: Map<string, Throughput>,
): Promise<void> {
  const all = await readThroughputCache(dataDir);
  for (const [k, v] of add) all.set(k, v);
  await Deno.mkdir(dataDir, { recursive: true });
  await writeFileAtomic(
    join(dataDir, THROUGHPUT_FILE),
    JSON.stringify(Object.fromEntries(all), null, 2) + "\n",
  );
}

/**
 * The backbone spec of a grid backbone for a dataset, as its recipe builds it with
 * `--backbone` (undefined where the recipe has no such flag).
 */
export function backboneSpecOf(
  dataset: GridDataset,
  backbone: GridBackbone,
): BackboneSpec | undefined {
  const spec = recipeOf(dataset);
  if (backbone === "resnet32") return spec.backbone;
  if (!spec.extra.some((f) => f.name === "backbone")) return undefined;
  return recipeBackbone(spec, { backbone });
}

const SIDES: Record<GridDataset, number> = { cifar10: 32, cifar100: 32, svhn: 32, stl10: 96 };
const CLASSES: Record<GridDataset, number> = { cifar10: 10, cifar100: 100, svhn: 10, stl10: 10 };

/**
 * Measures training and evaluation images/s of a recipe's model (its backbone and head, the
 * ETF + DR setting, mixup) on synthetic images of the dataset's size: two one-step epochs (the
 * first compiles the pipelines; the second is timed) and two evaluations of one batch (the
 * second timed). Needs the device initialised.
 */
export async function measureThroughput(
  dataset: GridDataset,
  backbone: GridBackbone,
  batchSize: number,
): Promise<Omit<Throughput, "source">> {
  const spec = recipeOf(dataset);
  const bb = backboneSpecOf(dataset, backbone);
  if (!bb) throw new Error(`collapse: no ${backbone} backbone for ${dataset} in this checkout`);
  const K = CLASSES[dataset], S = SIDES[dataset];
  const model = buildClassifier({
    backbone: bb,
    numClasses: K,
    classifier: "etf",
    normalizeFeatures: spec.normalizeFeatures,
    seed: 0,
  });
  model.build([-1, S, S, 3]);
  const schedule = makeSchedule({ kind: "multistep", base: 0.1, warmupEpochs: 0, milestones: [] });
  compile(model, { optimizer: makeOptimizer(schedule, 2e-4), loss: makeLoss("dr") });
  const rng = new Rng(1);
  const batch: Batch = {
    images: Float32Array.from({ length: batchSize * S * S * 3 }, () => rng.normal()),
    labels: Int32Array.from({ length: batchSize }, (_, i) => i % K),
    shape: [batchSize, S, S, 3],
  };
  const data: DataSource = { batches: () => [batch], batchesPerEpoch: () => 1 };
  const h = await fit(model, data, { epochs: 2, verbose: 0, mixupAlpha: 1 });
  await evaluate(model, data);
  const t0 = performance.now();
  await evaluate(model, data);
  const evalSecs = (performance.now() - t0) / 1000;
  return { train: h.history.images_per_sec[1], eval: batchSize / evalSecs, batchSize };
}

/** Images per split of a grid run, estimated from the dataset's long-tail formula. */
export function estimatedImages(
  dataset: GridDataset,
  ratio: number,
  limit: number | undefined,
): { train: number; test: number } {
  const K = CLASSES[dataset];
  // n_max per class of the official protocol; SVHN makes train and extra long-tailed alike.
  const nMax: number[] = dataset === "cifar10"
    ? [5000]
    : dataset === "cifar100"
    ? [500]
    : dataset === "stl10"
    ? [500]
    : [73257 / 10, 531131 / 10];
  let train = 0;
  for (const n of nMax) {
    for (let i = 0; i < K; i++) train += Math.floor(n * ratio ** (i / (K - 1)));
  }
  const test = { cifar10: 10000, cifar100: 10000, svhn: 26032, stl10: 8000 }[dataset];
  return {
    train: limit !== undefined ? Math.min(limit, train) : train,
    test: limit !== undefined ? Math.min(limit, test) : test,
  };
}

/** Formats seconds as "3 h 20 min", "12 min", "40 s". */
export function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return "unknown";
  if (s < 90) return `${Math.round(s)} s`;
  const m = Math.round(s / 60);
  if (m < 90) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${(s / 86400).toFixed(1)} days`;
}
