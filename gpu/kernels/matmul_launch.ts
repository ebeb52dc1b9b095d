/** Picks the GEMM variant generator named by a spec's config. @module */
import type { Launch } from "../engine.ts";
import type { GemmSpec } from "./matmul_gemm.ts";
import { regblockLaunch } from "./matmul_regblock.ts";
import { tiledLaunch } from "./matmul_tiled.ts";

/** The launch of a GEMM spec, with the variant its config names. */
export function gemmLaunch(s: GemmSpec): Launch {
  return s.config.variant === "tiled" ? tiledLaunch(s) : regblockLaunch(s);
}
