/**
 * Optimizer names accepted by `compile({ optimizer })`, Keras style, with Keras' default learning
 * rates: "sgd" (SGD, lr 0.01, no momentum), "adam" (AdamW without weight decay = Adam, lr 1e-3) and
 * "adamw" (AdamW, lr 1e-3, weight decay 0.01 as torch's).
 * @module
 */
import { checkChoice } from "../options.ts";
import { AdamW } from "./adamw.ts";
import type { Optimizer } from "./optimizer.ts";
import { SGD } from "./sgd.ts";

/** An optimizer name of {@link optimizerFromName}. */
export type OptimizerName = "sgd" | "adam" | "adamw";

const NAMES: readonly OptimizerName[] = ["sgd", "adam", "adamw"];

/** A new optimizer of a name, with its defaults; throws naming the known names. */
export function optimizerFromName(name: string): Optimizer {
  const n = checkChoice("compile()", "optimizer", name, NAMES);
  if (n === "sgd") return new SGD();
  return new AdamW(n === "adam" ? { weightDecay: 0 } : {});
}
