/** Losses: the contract, dot regression, cross-entropy, mixup. @module */
export * from "./loss.ts";
export * from "./dot_regression.ts";
export * from "./cross_entropy.ts";
export * from "./mixup.ts";
