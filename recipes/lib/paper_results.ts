/**
 * The published top-1 accuracies of Yang et al., "Inducing Neural Collapse in Imbalanced Learning:
 * Do We Really Need a Learnable Classifier at the End of Deep Neural Network?" (NeurIPS 2022) that
 * this project holds (the ETF classifier + DR loss with the recipes' backbones), the lookup by
 * dataset / ratio / backbone / method, and the check of whether a run follows the paper's protocol
 * (what makes a comparison with a published number meaningful).
 *
 * @module
 */

import type { RecipeFlags } from "./flags.ts";
import type { RecipeSpec } from "./recipe_specs.ts";

/** A classifier + loss combination of the paper's table. */
export type PaperMethod = "etf+dr" | "learnable+ce" | "etf+ce" | "learnable+dr";

/** One published number. */
export interface PaperResult {
  /** Canonical dataset name. */
  dataset: "cifar10_lt" | "cifar100_lt" | "imagenet_lt";
  /** Imbalance ratio; undefined for ImageNet-LT (its split is fixed). */
  ratio?: number;
  /** The backbone the number was published for. */
  backbone: "resnet32" | "resnet50" | "densenet";
  method: PaperMethod;
  /** Top-1 accuracy in percent. */
  top1: number;
}

/** Where the numbers come from, for reports. */
export const PAPER_SOURCE = "Yang et al., NeurIPS 2022 (published top-1)";

/** Every published top-1 this project holds. */
export const PAPER_RESULTS: readonly PaperResult[] = [
  { dataset: "cifar10_lt", ratio: 0.005, backbone: "resnet32", method: "etf+dr", top1: 72.9 },
  { dataset: "cifar10_lt", ratio: 0.01, backbone: "resnet32", method: "etf+dr", top1: 78.5 },
  { dataset: "cifar100_lt", ratio: 0.005, backbone: "resnet32", method: "etf+dr", top1: 40.9 },
  { dataset: "cifar100_lt", ratio: 0.01, backbone: "resnet32", method: "etf+dr", top1: 45.3 },
  { dataset: "cifar100_lt", ratio: 0.02, backbone: "resnet32", method: "etf+dr", top1: 50.4 },
  { dataset: "imagenet_lt", backbone: "resnet50", method: "etf+dr", top1: 44.7 },
];

/**
 * Canonical dataset name from any usual spelling ("CIFAR-10-LT", "cifar10_lt", "cifar10",
 * "ImageNet-LT", ...); undefined for datasets without published numbers.
 */
export function canonicalDataset(name: string): PaperResult["dataset"] | undefined {
  const n = name.toLowerCase().replace(/[^a-z0-9]/g, "").replace(/lt$/, "");
  if (n === "cifar10") return "cifar10_lt";
  if (n === "cifar100") return "cifar100_lt";
  if (n === "imagenet") return "imagenet_lt";
  return undefined;
}

/** Which backbone and method to look up (default: any backbone, ETF + DR). */
export interface PaperQuery {
  backbone?: string;
  method?: PaperMethod;
}

/** The method of a classifier/loss pair, e.g. ("etf", "dr") -> "etf+dr". */
export function methodOf(classifier: string, loss: string): PaperMethod {
  return `${classifier}+${loss}` as PaperMethod;
}

/** The held published result for a dataset, ratio, backbone and method, or undefined. */
export function findPaperResult(
  dataset: string,
  ratio?: number,
  query: PaperQuery = {},
): PaperResult | undefined {
  const d = canonicalDataset(dataset);
  if (d === undefined) return undefined;
  const method = query.method ?? "etf+dr";
  return PAPER_RESULTS.find((r) =>
    r.dataset === d && r.method === method &&
    (query.backbone === undefined || r.backbone === query.backbone) &&
    (r.ratio === undefined ||
      (ratio !== undefined && Math.abs(r.ratio - ratio) <= 1e-9 * Math.max(1, r.ratio)))
  );
}

/**
 * The paper's top-1 (percent) for a dataset and imbalance ratio, or undefined where no published
 * number is held (other ratios, SVHN, STL-10, CUB, other backbones or methods). The ratio is
 * ignored for ImageNet-LT.
 *
 * @example
 * ```ts
 * import { paperTop1 } from "./paper_results.ts";
 * console.log(paperTop1("CIFAR-10-LT", 0.01)); // 78.5
 * console.log(paperTop1("cifar10_lt", 0.01, { backbone: "densenet" })); // undefined
 * console.log(paperTop1("cifar10_lt", 0.02)); // undefined
 * ```
 */
export function paperTop1(
  dataset: string,
  ratio?: number,
  query: PaperQuery = {},
): number | undefined {
  return findPaperResult(dataset, ratio, query)?.top1;
}

/** {@linkcode paperTop1} with its source (paper, backbone, method), in the shape the report takes. */
export function paperResult(
  dataset: string,
  ratio?: number,
  query: PaperQuery = {},
): { top1: number; source: string } | undefined {
  const hit = findPaperResult(dataset, ratio, query);
  if (!hit) return undefined;
  return {
    top1: hit.top1,
    source: `${PAPER_SOURCE}, ${BACKBONE_NAMES[hit.backbone]}, ${hit.method}`,
  };
}

const BACKBONE_NAMES: Record<string, string> = {
  resnet32: "ResNet-32",
  resnet50: "ResNet-50",
  densenet: "DenseNet-BC",
};

/** The backbone name a run used: the `--backbone` flag where the recipe has one, else its default. */
export function runBackbone(spec: RecipeSpec, flags: RecipeFlags): string {
  const own = (flags as unknown as Record<string, unknown>).backbone ?? flags.extra.backbone;
  return typeof own === "string" ? own : spec.backbone.kind;
}

/** The recipes whose defaults are the paper's protocol (the official configs). */
const PAPER_PROTOCOL_RECIPES = new Set([
  "cifar10_lt",
  "cifar100_lt",
  "svhn_lt",
  "stl10_lt",
  "imagenet_lt",
]);

/** Settings that do not change what is trained (where data live, logging, resuming, seeds). */
const NOT_PROTOCOL = new Set([
  "dataDir",
  "out",
  "resume",
  "evalEvery",
  "workers",
  "seed",
  "ratio",
  "classifier",
  "loss",
  "evalOnly",
  "config",
  "printConfig",
  "extend",
  "extra",
]);

function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function show(v: unknown): string {
  return Array.isArray(v) ? v.join(",") : String(v);
}

/**
 * How a run departs from the paper's protocol, i.e. from its recipe's defaults (which are the
 * paper's settings) and from the method the published number is for; one phrase per difference,
 * e.g. "--epochs 2 (the paper: 200)", "--limit 256 (the paper: every image)". Empty when the run
 * is comparable with the published number. The seed, folders, logging and `--eval-every` do not
 * count. Empty for recipes whose defaults are not the paper's (CUB: the paper has no CUB setting).
 */
export function protocolDifferences(
  spec: RecipeSpec,
  flags: RecipeFlags,
  method: PaperMethod = "etf+dr",
): string[] {
  if (!PAPER_PROTOCOL_RECIPES.has(spec.name)) return [];
  const out: string[] = [];
  if (flags.limit !== undefined) out.push(`--limit ${flags.limit} (the paper: every image)`);
  const defaults = spec.defaults as unknown as Record<string, unknown>;
  const given = flags as unknown as Record<string, unknown>;
  for (const key of Object.keys(defaults)) {
    if (NOT_PROTOCOL.has(key) || key === "limit") continue;
    if (JSON.stringify(given[key] ?? null) !== JSON.stringify(defaults[key] ?? null)) {
      out.push(`--${kebab(key)} ${show(given[key])} (the paper: ${show(defaults[key])})`);
    }
  }
  for (const e of spec.extra) {
    if (e.default === undefined || e.name === "backbone") continue;
    const v = flags.extra[e.name];
    if (v !== undefined && v !== e.default) {
      out.push(`--${e.name} ${show(v)} (the paper: ${show(e.default)})`);
    }
  }
  const used = methodOf(flags.classifier, flags.loss);
  if (used !== method) {
    out.push(
      `--classifier ${flags.classifier} --loss ${flags.loss} (the published number is for ${method})`,
    );
  }
  return out;
}

/**
 * The flags named by {@linkcode protocolDifferences}' phrases, once each, e.g. "--limit / --epochs"
 * (for "not comparable (--limit / --epochs differ from the paper)").
 */
export function differingFlags(differences: readonly string[]): string {
  const names = differences.flatMap((d) => d.split(" (")[0].match(/--[\w-]+/g) ?? [d]);
  return [...new Set(names)].join(" / ");
}
