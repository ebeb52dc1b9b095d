/**
 * SGD with momentum, dampening, Nesterov and coupled (L2) weight decay, exactly as
 * torch.optim.SGD, as one dispatch over the parameter arena.
 * @module
 */
import { sgdStep_ } from "../../gpu/ops/optim.ts";
import type { ParamArena } from "../../gpu/param_arena.ts";
import type { Tensor } from "../../gpu/tensor.ts";
import { checkOptions, type OptionKeys, optionKeys } from "../options.ts";
import { Optimizer, type OptimizerOptions } from "./optimizer.ts";

/** Options of {@link SGD}. */
export interface SGDOptions extends OptimizerOptions {
  /** Momentum factor (default 0). */
  momentum?: number;
  /** Dampening of the momentum (default 0). */
  dampening?: number;
  /** Nesterov momentum (default false; needs momentum > 0 and no dampening). */
  nesterov?: boolean;
}

const KEYS: OptionKeys = optionKeys<SGDOptions>({
  learningRate: true,
  weightDecay: true,
  excludeFromWeightDecay: true,
  momentum: true,
  dampening: true,
  nesterov: true,
});

/**
 * torch.optim.SGD: g += wd * p (decayed parameters only); buf = momentum * buf + (1 - dampening) * g
 * (buf = g on the first step); p -= lr * (nesterov ? g + momentum * buf : buf). The learning rate
 * defaults to Keras' 0.01.
 *
 * @example
 * ```ts ignore
 * import { WarmupMultiStepSchedule } from "../schedules.ts";
 * const opt = new SGD({
 *   learningRate: new WarmupMultiStepSchedule({ base: 0.1 }),
 *   momentum: 0.9,
 *   weightDecay: 2e-4,
 * });
 * ```
 */
export class SGD extends Optimizer {
  readonly kind = "sgd";
  readonly momentum: number;
  readonly dampening: number;
  readonly nesterov: boolean;

  constructor(options: SGDOptions = {}) {
    super(checkOptions("new SGD()", options, KEYS) ?? {}, 0.01);
    this.momentum = options.momentum ?? 0;
    this.dampening = options.dampening ?? 0;
    this.nesterov = options.nesterov ?? false;
    if (!(this.momentum >= 0) || !(this.dampening >= 0)) {
      throw new Error(
        `collapse: SGD: invalid momentum ${this.momentum} or dampening ${this.dampening}`,
      );
    }
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      throw new Error("collapse: SGD: Nesterov momentum requires a momentum and zero dampening");
    }
  }

  protected allocateState(_arena: ParamArena): void {}

  step(): void {
    sgdStep_(this.#arena(), {
      lr: this.lrTensor,
      momentum: this.momentum,
      weightDecay: this.weightDecay,
      nesterov: this.nesterov,
      dampening: this.dampening,
    });
  }

  #arena(): ParamArena {
    const a = this.arena;
    if (!a) throw new Error("collapse: SGD.step: optimizer is not attached to an arena");
    return a;
  }

  protected flatState(): Record<string, Tensor> {
    return this.momentum !== 0 ? { momentum_buffer: this.#arena().state1 } : {};
  }

  protected scalarState(): Record<string, Tensor> {
    return this.momentum !== 0 && this.dampening !== 0 ? { started: this.#arena().sgdStarted } : {};
  }

  override getConfig(): Record<string, unknown> {
    return {
      ...super.getConfig(),
      momentum: this.momentum,
      dampening: this.dampening,
      nesterov: this.nesterov,
    };
  }
}
