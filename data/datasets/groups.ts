/**
 * Head/medium/tail class groupings as data about a dataset: which classes the long-tail
 * literature reports as many-shot (head), medium-shot and few-shot (tail). A grouping is a plain
 * value, structurally the same as the `GroupRule` that nn's `accuracyReport` and `evaluate`
 * accept, so the metric consumes it without `data/` knowing anything of `nn/`.
 *
 * @module
 */

/**
 * How classes are split into head/medium/tail: by inclusive index ranges (CIFAR-10 classes
 * 0-2 / 3-6 / 7-9), or by training count (`> many` head, `< few` tail, medium between;
 * defaults 100 and 20).
 */
export type ClassGrouping =
  | { kind: "ranges"; head: [number, number]; medium: [number, number]; tail: [number, number] }
  | { kind: "train-count"; trainCounts: number[]; many?: number; few?: number };

/** A grouping with the name and the one-line description a report shows. */
export interface NamedGrouping {
  /** Short name, e.g. `"index ranges"` or `"train count"`. */
  name: string;
  /** What it is, e.g. `"classes 0-389 / 390-834 / 835-999 (the official ranges)"`. */
  description: string;
  /** The rule itself. */
  rule: ClassGrouping;
}

/**
 * The index-range grouping the paper reports for K classes: CIFAR-10-like 0-2 / 3-6 / 7-9,
 * CIFAR-100 0-35 / 36-70 / 71-99, otherwise the first 30%, the next 40% and the last 30%.
 *
 * @example
 * ```ts
 * import { rangeGrouping } from "./groups.ts";
 * console.log(rangeGrouping(10)); // { kind: "ranges", head: [0, 2], medium: [3, 6], tail: [7, 9] }
 * ```
 */
export function rangeGrouping(numClasses: number): ClassGrouping {
  if (numClasses === 100) {
    return { kind: "ranges", head: [0, 35], medium: [36, 70], tail: [71, 99] };
  }
  if (numClasses === 10) return { kind: "ranges", head: [0, 2], medium: [3, 6], tail: [7, 9] };
  const a = Math.round(numClasses * 0.3), b = Math.round(numClasses * 0.7);
  return { kind: "ranges", head: [0, a - 1], medium: [a, b - 1], tail: [b, numClasses - 1] };
}

/** The count-threshold grouping: more than `many` training images head, fewer than `few` tail. */
export function countGrouping(
  trainCounts: readonly number[],
  many = 100,
  few = 20,
): ClassGrouping {
  return { kind: "train-count", trainCounts: [...trainCounts], many, few };
}

/** A one-line description of a grouping, for reports. */
export function describeGrouping(rule: ClassGrouping): string {
  if (rule.kind === "ranges") {
    const r = (x: [number, number]) => `${x[0]}-${x[1]}`;
    return `classes ${r(rule.head)} / ${r(rule.medium)} / ${r(rule.tail)}`;
  }
  const many = rule.many ?? 100, few = rule.few ?? 20;
  return `training images > ${many} / ${few}-${many} / < ${few}`;
}
