/**
 * Metric names of `compile({ metrics })` and the top-k accuracy: "accuracy" (top-1, always
 * reported) and "top5" / "top_5_accuracy" / "sparse_top_k_categorical_accuracy" (Keras' name,
 * k = 5) / "top<k>" for any k. An example counts as correct at k when fewer than k classes score
 * strictly higher than its label (ties count in its favour, as `torch.topk`-based top-k with the
 * label among equal scores). Computed on the GPU from the logits.
 * @module
 */
import { addScalar, clamp, greater, mul, neg } from "../../gpu/ops/elementwise.ts";
import { oneHot } from "../../gpu/ops/indexing.ts";
import { sum } from "../../gpu/ops/reduce.ts";
import { reshape } from "../../gpu/ops/shape.ts";
import { fmtShape, type Tensor } from "../../gpu/tensor.ts";

/** A parsed metric name. */
export type MetricSpec =
  | { kind: "accuracy"; name: "accuracy" }
  /** `name` is the log key: "top5_accuracy" (validation logs: "val_top5_accuracy"). */
  | { kind: "top_k"; k: number; name: string };

const TOP1_NAMES = ["accuracy", "acc", "sparse_categorical_accuracy", "top1", "top_1_accuracy"];
const KERAS_TOP_K = ["sparse_top_k_categorical_accuracy", "top_k_accuracy", "top_k"];

/**
 * Parses a metric name; throws naming the accepted forms for anything else.
 *
 * @example
 * ```ts
 * import { parseMetric } from "./top_k.ts";
 * parseMetric("top5"); // { kind: "top_k", k: 5, name: "top5_accuracy" }
 * ```
 */
export function parseMetric(name: unknown): MetricSpec {
  if (typeof name === "string") {
    if (TOP1_NAMES.includes(name)) return { kind: "accuracy", name: "accuracy" };
    if (KERAS_TOP_K.includes(name)) return { kind: "top_k", k: 5, name: "top5_accuracy" };
    const m = /^top_?(\d+)(_accuracy)?$/.exec(name);
    if (m) {
      const k = Number(m[1]);
      if (k === 1) return { kind: "accuracy", name: "accuracy" };
      if (k >= 2) return { kind: "top_k", k, name: `top${k}_accuracy` };
    }
  }
  throw new Error(
    `collapse: compile(): unknown metric ${JSON.stringify(name)}; known: "accuracy" (top-1), ` +
      `"top5" (or "top<k>", "top_<k>_accuracy", "sparse_top_k_categorical_accuracy" for k = 5)`,
  );
}

/** The distinct top-k metrics (k >= 2) of a metric list, in order. */
export function topKMetrics(metrics: readonly string[]): { k: number; name: string }[] {
  const out: { k: number; name: string }[] = [];
  for (const m of metrics) {
    const s = parseMetric(m);
    if (s.kind === "top_k" && !out.some((o) => o.k === s.k)) out.push({ k: s.k, name: s.name });
  }
  return out;
}

/**
 * Per-example top-k hits f32 [N] (1 or 0) of logits [N, K] against i32 labels [N]: 1 when fewer
 * than k classes score strictly higher than the label's class.
 */
export function topKHits(logits: Tensor, labels: Tensor, k: number): Tensor {
  if (logits.rank !== 2 || labels.rank !== 1 || labels.shape[0] !== logits.shape[0]) {
    throw new Error(
      `collapse: topKHits: logits [N, K] and labels [N] expected, got ${fmtShape(logits.shape)} ` +
        `and ${fmtShape(labels.shape)}`,
    );
  }
  if (!(Number.isInteger(k) && k >= 1)) throw new Error(`collapse: topKHits: bad k ${k}`);
  const [n, K] = logits.shape;
  const target = sum(mul(logits, oneHot(labels, K)), -1, true); // [N, 1]: the label's score
  const higher = sum(greater(logits, target), -1); // [N]: classes scoring strictly higher
  // `higher` is a whole number: k - higher >= 1 exactly when fewer than k score higher.
  return reshape(clamp(addScalar(neg(higher), k), 0, 1), [n]);
}
