/**
 * AdamW (decoupled weight decay), exactly as torch.optim.AdamW without amsgrad, as one dispatch
 * over the parameter arena plus a one-thread step-counter increment; the step counter is a GPU
 * tensor so the update replays inside captured steps.
 * @module
 */
import { adamwStep_ } from "../../gpu/ops/optim.ts";
import type { ParamArena } from "../../gpu/param_arena.ts";
import { keep } from "../../gpu/scope.ts";
import { type Tensor, tensor } from "../../gpu/tensor.ts";
import { checkOptions, type OptionKeys, optionKeys } from "../options.ts";
import { Optimizer, type OptimizerOptions } from "./optimizer.ts";

/** Options of {@link AdamW}. */
export interface AdamWOptions extends OptimizerOptions {
  /** Default 0.9. */
  beta1?: number;
  /** Default 0.999. */
  beta2?: number;
  /** Default 1e-8. */
  epsilon?: number;
}

const KEYS: OptionKeys = optionKeys<AdamWOptions>({
  learningRate: true,
  weightDecay: true,
  excludeFromWeightDecay: true,
  beta1: true,
  beta2: true,
  epsilon: true,
});

/**
 * torch.optim.AdamW: step += 1; p *= 1 - lr * wd (decayed parameters only); m = b1 m + (1 - b1) g;
 * v = b2 v + (1 - b2) g^2; p -= lr / (1 - b1^step) * m / (sqrt(v) / sqrt(1 - b2^step) + eps).
 * The learning rate defaults to 1e-3 and the weight decay to 0.01, as torch's.
 */
export class AdamW extends Optimizer {
  readonly kind = "adamw";
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  #step: Tensor | null = null;

  constructor(options: AdamWOptions = {}) {
    checkOptions("new AdamW()", options, KEYS);
    options ??= {};
    super({ ...options, weightDecay: options.weightDecay ?? 1e-2 }, 1e-3);
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-8;
    if (!(this.beta1 >= 0 && this.beta1 < 1) || !(this.beta2 >= 0 && this.beta2 < 1)) {
      throw new Error(
        `collapse: AdamW: betas must lie in [0, 1), got ${this.beta1}, ${this.beta2}`,
      );
    }
    if (!(this.epsilon >= 0)) throw new Error(`collapse: AdamW: invalid epsilon ${this.epsilon}`);
  }

  protected allocateState(arena: ParamArena): void {
    arena.ensureState2();
    this.#step ??= keep(tensor(new Float32Array([0]), [1]));
  }

  step(): void {
    const arena = this.arena;
    if (!arena || !this.#step) {
      throw new Error("collapse: AdamW.step: optimizer is not attached to an arena");
    }
    adamwStep_(arena, {
      lr: this.lrTensor,
      beta1: this.beta1,
      beta2: this.beta2,
      eps: this.epsilon,
      weightDecay: this.weightDecay,
      step: this.#step,
    });
  }

  protected flatState(): Record<string, Tensor> {
    const a = this.arena!;
    return { exp_avg: a.state1, exp_avg_sq: a.ensureState2() };
  }

  protected scalarState(): Record<string, Tensor> {
    return { step: this.#step! };
  }

  override getConfig(): Record<string, unknown> {
    return {
      ...super.getConfig(),
      beta1: this.beta1,
      beta2: this.beta2,
      epsilon: this.epsilon,
    };
  }

  override dispose(): void {
    this.#step?.dispose();
    this.#step = null;
    super.dispose();
  }
}
