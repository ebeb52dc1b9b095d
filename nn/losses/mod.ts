/**
 * Losses: the contract, dot regression, cross-entropy, mixup, class weights, and the long-tail
 * baselines (logit adjustment / balanced softmax, LDAM with deferred re-weighting); loss names.
 * @module
 */
export * from "./loss.ts";
export * from "./dot_regression.ts";
export * from "./cross_entropy.ts";
export * from "./mixup.ts";
export * from "./class_weighted.ts";
export * from "./logit_adjusted.ts";
export * from "./ldam.ts";
export * from "./by_name.ts";
