/**
 * Kernel: inverted dropout with an in-kernel counter-based hash RNG of (seed, index): element i is
 * kept when hash(seed, i) / 2^24 >= rate and then scaled by 1 / (1 - rate). The same launch on dy
 * with the same seed is the backward. Thread 0 also copies the seed it used into `seedOut` (so the
 * backward reuses it even if the caller changes the seed tensor between forward and backward).
 * @module
 */
import type { Launch } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import { grid1d, main1d, packUniforms } from "./util.ts";

const WG = 256;

const code = `
struct P { n: u32, threshold: u32, scale: f32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> seed: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> seed_out: array<u32>;
@group(0) @binding(4) var<uniform> u: P;
fn pcg(v: u32) -> u32 {
  let s = v * 747796405u + 2891336453u;
  let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (w >> 22u) ^ w;
}
${main1d(WG)}
  if (i >= u.n) { return; }
  let sd = seed[0];
  if (i == 0u) { seed_out[0] = sd; }
  let r = pcg(pcg(i) ^ pcg(sd ^ 0x9e3779b9u)) >> 8u;
  y[i] = select(0.0, x[i] * u.scale, r >= u.threshold);
}`;

/** y = keep(seed, i) ? x * scale : 0, keep when a 24-bit hash >= threshold. */
export function dropoutLaunch(
  x: Tensor,
  seed: Tensor,
  y: Tensor,
  seedOut: Tensor,
  rate: number,
): Launch {
  const threshold = Math.min(2 ** 24, Math.round(rate * 2 ** 24));
  return {
    name: "dropout",
    code,
    bindings: [x.binding, seed.binding, y.binding, seedOut.binding],
    uniforms: packUniforms([
      ["u32", x.size],
      ["u32", threshold],
      ["f32", rate >= 1 ? 0 : 1 / (1 - rate)],
    ]),
    workgroups: grid1d(x.size, WG),
  };
}
