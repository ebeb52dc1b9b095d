/**
 * Classification metrics from per-class counts: top-1, per-class accuracy, and the head/medium/tail
 * groups (CIFAR-10-like: classes 0-2 / 3-6 / 7-9; CIFAR-100: 0-35 / 36-70 / 71-99; ImageNet-LT by
 * training count: > 100 / 20-100 / < 20).
 * @module
 */

/** Accuracy summary of one split. */
export interface AccuracyReport {
  /** Overall accuracy, a fraction in [0, 1]. */
  top1: number;
  /** Accuracy of each class (NaN for a class absent from the split). */
  perClass: number[];
  /** Mean per-class accuracy over the head classes. */
  head: number;
  /** Mean per-class accuracy over the medium classes. */
  medium: number;
  /** Mean per-class accuracy over the tail classes. */
  tail: number;
  /** Class indices in each group. */
  groups: { head: number[]; medium: number[]; tail: number[] };
}

/** How classes are split into head/medium/tail. */
export type GroupRule =
  | { kind: "ranges"; head: [number, number]; medium: [number, number]; tail: [number, number] }
  | { kind: "train-count"; trainCounts: number[]; many?: number; few?: number };

/** The paper's default grouping for K classes (CIFAR-10-like for K=10, CIFAR-100 for K=100). */
export function defaultGroups(numClasses: number): GroupRule {
  if (numClasses === 100) {
    return { kind: "ranges", head: [0, 35], medium: [36, 70], tail: [71, 99] };
  }
  if (numClasses === 10) return { kind: "ranges", head: [0, 2], medium: [3, 6], tail: [7, 9] };
  const a = Math.round(numClasses * 0.3), b = Math.round(numClasses * 0.7);
  return { kind: "ranges", head: [0, a - 1], medium: [a, b - 1], tail: [b, numClasses - 1] };
}

function groupsOf(rule: GroupRule, K: number): AccuracyReport["groups"] {
  const g = { head: [] as number[], medium: [] as number[], tail: [] as number[] };
  for (let c = 0; c < K; c++) {
    if (rule.kind === "ranges") {
      if (c >= rule.head[0] && c <= rule.head[1]) g.head.push(c);
      else if (c >= rule.medium[0] && c <= rule.medium[1]) g.medium.push(c);
      else if (c >= rule.tail[0] && c <= rule.tail[1]) g.tail.push(c);
    } else {
      const n = rule.trainCounts[c], many = rule.many ?? 100, few = rule.few ?? 20;
      if (n > many) g.head.push(c);
      else if (n < few) g.tail.push(c);
      else g.medium.push(c);
    }
  }
  return g;
}

/** Builds the report from per-class correct and total counts. */
export function accuracyReport(
  correct: ArrayLike<number>,
  total: ArrayLike<number>,
  rule: GroupRule = defaultGroups(total.length),
): AccuracyReport {
  const K = total.length;
  let c = 0, t = 0;
  const perClass: number[] = [];
  for (let k = 0; k < K; k++) {
    c += correct[k];
    t += total[k];
    perClass.push(total[k] > 0 ? correct[k] / total[k] : NaN);
  }
  const groups = groupsOf(rule, K);
  const avg = (ids: number[]) => {
    let cc = 0, tt = 0;
    for (const k of ids) {
      cc += correct[k];
      tt += total[k];
    }
    return tt > 0 ? cc / tt : NaN;
  };
  return {
    top1: t > 0 ? c / t : NaN,
    perClass,
    head: avg(groups.head),
    medium: avg(groups.medium),
    tail: avg(groups.tail),
    groups,
  };
}
