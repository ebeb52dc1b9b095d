/**
 * The published top-1 accuracies of the ETF classifier + DR loss (Yang et al., "Inducing Neural
 * Collapse in Imbalanced Learning: Do We Really Need a Learnable Classifier at the End of Deep
 * Neural Network?", NeurIPS 2022), for the settings the paper reports.
 *
 * @module
 */

/** One published number. */
export interface PaperResult {
  /** Canonical dataset name. */
  dataset: "cifar10_lt" | "cifar100_lt" | "imagenet_lt";
  /** Imbalance ratio; undefined for ImageNet-LT (its split is fixed). */
  ratio?: number;
  /** Top-1 accuracy in percent. */
  top1: number;
}

/** Where the numbers come from, for reports. */
export const PAPER_SOURCE = "Yang et al., NeurIPS 2022 (ETF classifier + DR loss, published top-1)";

/** Every published top-1 of ETF + DR. */
export const PAPER_RESULTS: readonly PaperResult[] = [
  { dataset: "cifar10_lt", ratio: 0.005, top1: 72.9 },
  { dataset: "cifar10_lt", ratio: 0.01, top1: 78.5 },
  { dataset: "cifar100_lt", ratio: 0.005, top1: 40.9 },
  { dataset: "cifar100_lt", ratio: 0.01, top1: 45.3 },
  { dataset: "cifar100_lt", ratio: 0.02, top1: 50.4 },
  { dataset: "imagenet_lt", top1: 44.7 },
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

/**
 * The paper's top-1 (percent) for a dataset and imbalance ratio, or undefined where the paper
 * publishes no number (other ratios, SVHN, STL-10, CUB). The ratio is ignored for ImageNet-LT.
 *
 * @example
 * ```ts
 * import { paperTop1 } from "./paper_results.ts";
 * console.log(paperTop1("CIFAR-10-LT", 0.01)); // 78.5
 * console.log(paperTop1("cifar10_lt", 0.02)); // undefined
 * ```
 */
export function paperTop1(dataset: string, ratio?: number): number | undefined {
  const d = canonicalDataset(dataset);
  if (d === undefined) return undefined;
  const hit = PAPER_RESULTS.find((r) =>
    r.dataset === d &&
    (r.ratio === undefined ||
      (ratio !== undefined && Math.abs(r.ratio - ratio) <= 1e-9 * Math.max(1, r.ratio)))
  );
  return hit?.top1;
}

/** {@linkcode paperTop1} with its source, in the shape the report takes. */
export function paperResult(
  dataset: string,
  ratio?: number,
): { top1: number; source: string } | undefined {
  const top1 = paperTop1(dataset, ratio);
  return top1 === undefined ? undefined : { top1, source: PAPER_SOURCE };
}
