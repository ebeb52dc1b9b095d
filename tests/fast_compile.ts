// Compile-time settings for tests that train whole models: lavapipe compiles every kernel on its
// first launch, so end-to-end tests (many shapes, few steps) use the small register tiles of
// TUNING.fastCompile; kernel tests force the large variants explicitly. Set per test file (an
// isolate of its own), never through Deno.env: test files run in parallel in one process, and an
// environment variable set by one would reach the others.
import { TUNING } from "../gpu/kernels/tuning.ts";

/** Turns on TUNING.fastCompile for this test file. */
export function useFastCompile(): void {
  TUNING.fastCompile = true;
}

/** The environment of a recipe subprocess that tests spawn: no colours, small tiles. */
export const SUBPROCESS_ENV: Record<string, string> = {
  NO_COLOR: "1",
  COLLAPSE_TUNING: "fast-compile",
};
