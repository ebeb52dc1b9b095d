/**
 * Mixup as the paper trains with it: one lambda ~ Beta(alpha, alpha) and one permutation pi per
 * batch; x_mix = lambda x + (1 - lambda) x[pi]; L = lambda L(y) + (1 - lambda) L(y[pi]), with the
 * DR loss's class weights Ew from the un-mixed labels y. lambda (f32 [1]) and pi (i32 [B]) are GPU
 * tensors that {@link Mixup.sample} (or {@link Mixup.set}) writes before each step, so a captured
 * step replays with new values. alpha <= 0 disables mixing (lambda = 1), as the official code.
 * @module
 */
import { add, addScalar, mul, neg } from "../../gpu/ops/elementwise.ts";
import { gather } from "../../gpu/ops/indexing.ts";
import { reshape } from "../../gpu/ops/shape.ts";
import type { Rng } from "../../gpu/rng.ts";
import { untrack } from "../../gpu/scope.ts";
import { fmtShape, type Tensor, tensor, writeTensor } from "../../gpu/tensor.ts";
import type { ModelOutputs } from "../types.ts";
import type { Loss, LossCallOptions } from "./loss.ts";

/** The per-batch-size GPU tensors of a {@link Mixup}. */
export interface MixupTensors {
  /** f32 [1]. */
  lambda: Tensor;
  /** i32 [B]. */
  perm: Tensor;
}

/** Mixup state: alpha and the lambda / permutation tensors the step reads. */
export class Mixup {
  readonly alpha: number;
  readonly #bySize = new Map<number, MixupTensors>();

  constructor(alpha = 1) {
    if (typeof alpha !== "number" || !(alpha >= 0)) {
      throw new Error(`collapse: Mixup: alpha must be >= 0, got ${alpha}`);
    }
    this.alpha = alpha;
  }

  /** The tensors for batch size B (created once, identity permutation and lambda 1). */
  tensors(batchSize: number): MixupTensors {
    let t = this.#bySize.get(batchSize);
    if (!t) {
      const idx = new Int32Array(batchSize);
      for (let i = 0; i < batchSize; i++) idx[i] = i;
      t = {
        lambda: untrack(tensor(new Float32Array([1]), [1])),
        perm: untrack(tensor(idx, [batchSize])),
      };
      this.#bySize.set(batchSize, t);
    }
    return t;
  }

  /** Writes explicit lambda and permutation for batch size `perm.length` (host -> GPU, outside capture). */
  set(lambda: number, perm: Int32Array): void {
    const b = perm.length;
    const seen = new Uint8Array(b);
    for (const p of perm) {
      if (!(p >= 0 && p < b) || seen[p]) {
        throw new Error(`collapse: Mixup.set: perm is not a permutation of 0..${b - 1}`);
      }
      seen[p] = 1;
    }
    if (!(lambda >= 0 && lambda <= 1)) {
      throw new Error(`collapse: Mixup.set: lambda must be in [0, 1], got ${lambda}`);
    }
    const t = this.tensors(b);
    writeTensor(t.lambda, new Float32Array([lambda]));
    writeTensor(t.perm, perm);
  }

  /** Draws lambda ~ Beta(alpha, alpha) and a permutation from `rng` and writes them. */
  sample(batchSize: number, rng: Rng): { lambda: number; perm: Int32Array } {
    const lambda = this.alpha > 0 ? rng.beta(this.alpha, this.alpha) : 1;
    const perm = rng.permutation(batchSize);
    this.set(lambda, perm);
    return { lambda, perm };
  }

  #forBatch(x: Tensor, what: string): MixupTensors {
    const t = this.#bySize.get(x.shape[0]);
    if (!t) {
      throw new Error(
        `collapse: Mixup.${what}: no lambda/permutation for batch size ${x.shape[0]} ` +
          `(${fmtShape(x.shape)}); call sample() or set() first`,
      );
    }
    return t;
  }

  /** lambda x + (1 - lambda) x[pi] (x batch-first, any rank). */
  mixInputs(x: Tensor): Tensor {
    const { lambda, perm } = this.#forBatch(x, "mixInputs");
    const lam = reshape(lambda, x.shape.map(() => 1));
    const xp = gather(x, perm, 0);
    return add(mul(lam, x), mul(addScalar(neg(lam), 1), xp));
  }

  /** lambda L(y) + (1 - lambda) L(y[pi]), Ew (countLabels) from the un-mixed y. */
  loss(base: Loss, outputs: ModelOutputs, labels: Tensor): Tensor {
    const { lambda, perm } = this.#forBatch(labels, "loss");
    const l1 = base.compute(outputs, labels, { countLabels: labels });
    const l2 = base.compute(outputs, gather(labels, perm, 0), { countLabels: labels });
    const lam = reshape(lambda, l1.shape.map(() => 1));
    return add(mul(lam, l1), mul(addScalar(neg(lam), 1), l2));
  }
}

/** A {@link Loss} that applies a {@link Mixup}'s combination to a base loss. */
export class MixupLoss implements Loss {
  readonly name: string;
  readonly base: Loss;
  readonly mixup: Mixup;

  constructor(base: Loss, mixup: Mixup) {
    this.base = base;
    this.mixup = mixup;
    this.name = `mixup_${base.name}`;
  }

  compute(outputs: ModelOutputs, labels: Tensor, _options?: LossCallOptions): Tensor {
    return this.mixup.loss(this.base, outputs, labels);
  }

  getConfig(): Record<string, unknown> {
    return { name: this.name, alpha: this.mixup.alpha, base: this.base.getConfig() };
  }
}
