/**
 * Kernel: one AdamW step (torch.optim.AdamW semantics: decoupled weight decay p *= 1 - lr * wd on the
 * leading `decayCount` elements, bias-corrected moments) over a whole flat parameter buffer, in
 * place; and the tiny kernel that increments the f32[1] step counter on the GPU.
 * @module
 */
import type { Launch } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import { grid1d, main1d, packUniforms } from "./util.ts";

const WG = 256;

const code = `
@group(0) @binding(0) var<storage, read_write> p: array<f32>;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> m: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;
@group(0) @binding(4) var<storage, read> lr: array<f32>;
@group(0) @binding(5) var<storage, read> step: array<f32>;
struct P { n: u32, decay_count: u32, beta1: f32, beta2: f32, eps: f32, wd: f32 }
@group(0) @binding(6) var<uniform> u: P;
${main1d(WG)}
  if (i >= u.n) { return; }
  let t = step[0];
  let a = lr[0];
  let bc1 = 1.0 - pow(u.beta1, t);
  let bc2 = 1.0 - pow(u.beta2, t);
  var pi = p[i];
  if (i < u.decay_count) { pi = pi * (1.0 - a * u.wd); }
  let gi = g[i];
  let mi = u.beta1 * m[i] + (1.0 - u.beta1) * gi;
  let vi = u.beta2 * v[i] + (1.0 - u.beta2) * gi * gi;
  m[i] = mi;
  v[i] = vi;
  let denom = sqrt(vi) / sqrt(bc2) + u.eps;
  p[i] = pi - (a / bc1) * mi / denom;
}`;

/** The launch of one AdamW update (uses the already incremented `step`). */
export function adamwLaunch(
  p: Tensor,
  g: Tensor,
  m: Tensor,
  v: Tensor,
  lr: Tensor,
  step: Tensor,
  o: { decayCount: number; beta1: number; beta2: number; eps: number; weightDecay: number },
): Launch {
  return {
    name: "adamw",
    code,
    bindings: [p.binding, g.binding, m.binding, v.binding, lr.binding, step.binding],
    uniforms: packUniforms([
      ["u32", p.size],
      ["u32", o.decayCount],
      ["f32", o.beta1],
      ["f32", o.beta2],
      ["f32", o.eps],
      ["f32", o.weightDecay],
    ]),
    workgroups: grid1d(p.size, WG),
  };
}

const incCode = `
@group(0) @binding(0) var<storage, read_write> step: array<f32>;
@compute @workgroup_size(1)
fn main() { step[0] = step[0] + 1.0; }`;

/** The launch that adds 1 to an f32[1] step counter. */
export function stepIncrementLaunch(step: Tensor): Launch {
  return { name: "step_increment", code: incCode, bindings: [step.binding], workgroups: [1] };
}
