/** Models: the Model base (subclassing), Sequential, Functional, classifier models, summary. @module */
export * from "./model.ts";
export * from "./sequential.ts";
export * from "./functional.ts";
export * from "./classifier.ts";
export * from "./summary.ts";
