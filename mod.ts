/**
 * collapse: a Deno-native WebGPU training microframework for the fixed simplex-ETF classifier and
 * the dot-regression loss (Yang et al., NeurIPS 2022), with Keras-like layers and long-tailed data.
 *
 * @module
 */
export * from "./gpu/mod.ts";
