/** Classification heads: the simplex ETF, the fixed ETF classifier, the learnable baseline. @module */
export * from "./etf.ts";
export * from "./head.ts";
export * from "./etf_classifier.ts";
export * from "./dense_classifier.ts";
