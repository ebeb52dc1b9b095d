/**
 * What a run records of where it ran: the adapter (one line for the console and report.md, every
 * field for config.json), the kernel family and activation storage it trained with, and the
 * versions of collapse, Deno, V8 and TypeScript.
 *
 * @module
 */

import denoJson from "../../deno.json" with { type: "json" };
import { adapterLabel, gpu } from "../../gpu/device.ts";
import { kernelMode, TUNING } from "../../gpu/kernels/tuning.ts";

/** The adapter in one line, with the activation storage when it is not the default. */
export function adapterText(): string {
  return adapterLabel(gpu().adapter) +
    (TUNING.halfActivations ? "; f16 activations (COLLAPSE_ACTIVATIONS=f16)" : "");
}

/** The kernel family and the storage of activations the run trained with (config.json). */
export function kernelInfo(): { mode: string; activations: "f16" | "f32" } {
  return { mode: kernelMode(), activations: TUNING.halfActivations ? "f16" : "f32" };
}

/** Everything the adapter reported (config.json). */
export function adapterInfo(): Record<string, unknown> {
  const a = gpu().adapter;
  return {
    description: a.description,
    vendor: a.vendor,
    architecture: a.architecture,
    device: a.device,
    isFallbackAdapter: a.isFallbackAdapter,
    backend: a.backend,
    features: a.features,
    limits: a.limits,
  };
}

/** The versions a run was made with (config.json). */
export function versions(): Record<string, string> {
  return {
    collapse: String((denoJson as { version?: string }).version ?? "unknown"),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    os: `${Deno.build.os}-${Deno.build.arch}`,
  };
}
