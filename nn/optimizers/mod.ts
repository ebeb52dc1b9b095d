/**
 * Optimizers over the flat parameter arena: {@link SGD} (torch.optim.SGD semantics) and
 * {@link AdamW}, plus the {@link Optimizer} base and {@link optimizerFromConfig}.
 * @module
 */
import { scheduleFromConfig } from "../schedules.ts";
import { AdamW } from "./adamw.ts";
import type { Optimizer } from "./optimizer.ts";
import { SGD } from "./sgd.ts";

export * from "./optimizer.ts";
export * from "./sgd.ts";
export * from "./adamw.ts";
export * from "./by_name.ts";

/** Rebuilds an optimizer from {@link Optimizer.getConfig} output. */
export function optimizerFromConfig(c: Record<string, unknown>): Optimizer {
  const learningRate = scheduleFromConfig(c.schedule as Record<string, unknown>);
  const ex = c.excludeFromWeightDecay as string[] | { regexp: string; flags: string } | null;
  const excludeFromWeightDecay = ex === null || ex === undefined
    ? undefined
    : Array.isArray(ex)
    ? ex
    : new RegExp(ex.regexp, ex.flags);
  const common = { learningRate, weightDecay: c.weightDecay as number, excludeFromWeightDecay };
  switch (c.kind) {
    case "sgd":
      return new SGD({
        ...common,
        momentum: c.momentum as number,
        dampening: c.dampening as number,
        nesterov: c.nesterov as boolean,
      });
    case "adamw":
      return new AdamW({
        ...common,
        beta1: c.beta1 as number,
        beta2: c.beta2 as number,
        epsilon: c.epsilon as number,
      });
    default:
      throw new Error(`collapse: unknown optimizer kind ${String(c.kind)}`);
  }
}
