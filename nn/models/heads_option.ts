/**
 * How backbone factories take a head: a {@link Head} instance, "etf" (the paper's fixed
 * ETF classifier), "dense" (the learnable baseline) or null (features only).
 * @module
 */
import { DenseClassifier } from "../heads/dense_classifier.ts";
import { ETFClassifier, type ETFClassifierOptions } from "../heads/etf_classifier.ts";
import type { Head } from "../heads/head.ts";

/** A head or the name of one. */
export type HeadSpec = Head | "etf" | "dense" | null;

/** Resolves a {@link HeadSpec}; named heads need `numClasses`. */
export function makeHead(
  spec: HeadSpec | undefined,
  numClasses: number | undefined,
  etfOptions: ETFClassifierOptions = {},
): Head | null {
  if (spec === undefined) spec = numClasses ? "dense" : null;
  if (spec === null || typeof spec === "object") return spec;
  if (!numClasses) throw new Error(`collapse: a '${spec}' head needs numClasses`);
  if (spec === "etf") {
    return new ETFClassifier(numClasses, { name: "etf_classifier", ...etfOptions });
  }
  if (spec === "dense") return new DenseClassifier(numClasses, { name: "dense_classifier" });
  throw new Error(
    `collapse: unknown head '${spec as string}' (use "etf", "dense", a Head or null)`,
  );
}
