/**
 * Learning-rate schedules as objects: constant, linear warmup + multi-step decay (the paper's CIFAR
 * recipe), and cosine with warmup (ImageNet-LT). A schedule maps (epoch, fraction of the epoch done)
 * to a learning rate; the trainer asks once per step and writes the value into the optimizer's
 * learning-rate tensor.
 * @module
 */

import { checkOptions, type OptionKeys, optionKeys } from "./options.ts";

/** A learning-rate schedule. */
export interface Schedule {
  /** Learning rate at 0-based `epoch`, `progress` in [0, 1) through it. */
  lr(epoch: number, progress: number): number;
  /** A JSON description (saved in configs and checkpoints). */
  getConfig(): Record<string, unknown>;
}

/** A fixed learning rate. */
export class ConstantSchedule implements Schedule {
  constructor(readonly base: number) {}
  lr(): number {
    return this.base;
  }
  getConfig(): Record<string, unknown> {
    return { kind: "constant", base: this.base };
  }
}

/** Options of {@link WarmupMultiStepSchedule}. */
export interface WarmupMultiStepOptions {
  /** Peak learning rate. */
  base: number;
  /** Epochs of linear warmup (default 5). */
  warmupEpochs?: number;
  /** Epochs after which the rate is multiplied by `gamma` each (default [160, 180]). */
  milestones?: number[];
  /** Factor per milestone (default 0.1). */
  gamma?: number;
  /**
   * Warmup granularity: "epoch" (lr * (epoch + 1) / warmup, as the official code) or "step"
   * (linear in the step count). Default "epoch".
   */
  warmupBy?: "epoch" | "step";
}

const WARMUP_MULTISTEP_KEYS: OptionKeys = optionKeys<WarmupMultiStepOptions>({
  base: true,
  warmupEpochs: true,
  milestones: true,
  gamma: true,
  warmupBy: true,
});

/**
 * Linear warmup then step decay: the paper's CIFAR/SVHN/STL schedule (lr 0.1, 5 warmup epochs,
 * x0.1 after epoch 160 and again after 180).
 *
 * @example
 * ```ts
 * import { WarmupMultiStepSchedule } from "./schedules.ts";
 * const s = new WarmupMultiStepSchedule({ base: 0.1 });
 * console.log(s.lr(0, 0), s.lr(10, 0), s.lr(170, 0), s.lr(190, 0)); // 0.02 0.1 0.01 0.001
 * ```
 */
export class WarmupMultiStepSchedule implements Schedule {
  readonly base: number;
  readonly warmupEpochs: number;
  readonly milestones: number[];
  readonly gamma: number;
  readonly warmupBy: "epoch" | "step";

  constructor(o: WarmupMultiStepOptions) {
    checkOptions("new WarmupMultiStepSchedule()", o, WARMUP_MULTISTEP_KEYS, { required: ["base"] });
    this.base = o.base;
    this.warmupEpochs = o.warmupEpochs ?? 5;
    this.milestones = [...(o.milestones ?? [160, 180])].sort((a, b) => a - b);
    this.gamma = o.gamma ?? 0.1;
    this.warmupBy = o.warmupBy ?? "epoch";
  }

  lr(epoch: number, progress: number): number {
    if (epoch < this.warmupEpochs) {
      const t = this.warmupBy === "epoch" ? epoch + 1 : epoch + progress;
      return this.base * Math.max(t, 1e-3) / this.warmupEpochs;
    }
    let lr = this.base;
    for (const m of this.milestones) if (epoch >= m) lr *= this.gamma;
    return lr;
  }

  getConfig(): Record<string, unknown> {
    return {
      kind: "warmup_multistep",
      base: this.base,
      warmupEpochs: this.warmupEpochs,
      milestones: this.milestones,
      gamma: this.gamma,
      warmupBy: this.warmupBy,
    };
  }
}

/** Cosine decay from `base` to `min` over `epochs`, after a linear warmup (per step). */
export class CosineSchedule implements Schedule {
  constructor(
    readonly base: number,
    readonly epochs: number,
    readonly warmupEpochs = 0,
    readonly min = 0,
  ) {}

  lr(epoch: number, progress: number): number {
    const t = epoch + progress;
    if (t < this.warmupEpochs) return this.base * Math.max(t, 1e-3) / this.warmupEpochs;
    const span = Math.max(this.epochs - this.warmupEpochs, 1e-9);
    const f = Math.min(1, (t - this.warmupEpochs) / span);
    return this.min + 0.5 * (this.base - this.min) * (1 + Math.cos(Math.PI * f));
  }

  getConfig(): Record<string, unknown> {
    return {
      kind: "cosine",
      base: this.base,
      epochs: this.epochs,
      warmupEpochs: this.warmupEpochs,
      min: this.min,
    };
  }
}

/** Rebuilds a schedule from {@link Schedule.getConfig} output. */
export function scheduleFromConfig(c: Record<string, unknown>): Schedule {
  switch (c.kind) {
    case "constant":
      return new ConstantSchedule(c.base as number);
    case "warmup_multistep":
      return new WarmupMultiStepSchedule({
        base: c.base as number,
        warmupEpochs: c.warmupEpochs as number,
        milestones: c.milestones as number[],
        gamma: c.gamma as number,
        warmupBy: c.warmupBy as "epoch" | "step",
      });
    case "cosine":
      return new CosineSchedule(
        c.base as number,
        c.epochs as number,
        c.warmupEpochs as number,
        c.min as number,
      );
    default:
      throw new Error(`collapse: unknown schedule kind ${String(c.kind)}`);
  }
}
