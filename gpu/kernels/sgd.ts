/**
 * Kernel: one SGD step (PyTorch semantics: weight decay on the leading `decayCount` elements,
 * momentum with dampening, Nesterov) over a whole flat parameter buffer, in place; and the tiny
 * kernel that marks the first step done (used with dampening, where PyTorch's first step is buf = g).
 * @module
 */
import type { Launch } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import { grid1d, main1d, packUniforms } from "./util.ts";

const WG = 256;
const code = new Map<string, string>();

/** Variant flags of the SGD kernel. */
export interface SgdVariant {
  /** Use a momentum buffer (momentum != 0). */
  momentum: boolean;
  nesterov: boolean;
  /** Read the first-step flag (dampening != 0). */
  firstFlag: boolean;
}

function source(v: SgdVariant): string {
  const key = `${v.momentum}${v.nesterov}${v.firstFlag}`;
  let c = code.get(key);
  if (c) return c;
  const decls = [
    "@group(0) @binding(0) var<storage, read_write> p: array<f32>;",
    "@group(0) @binding(1) var<storage, read> g: array<f32>;",
    "@group(0) @binding(2) var<storage, read> lr: array<f32>;",
  ];
  let b = 3;
  if (v.momentum) {
    decls.push(`@group(0) @binding(${b++}) var<storage, read_write> buf: array<f32>;`);
  }
  if (v.firstFlag) decls.push(`@group(0) @binding(${b++}) var<storage, read> started: array<u32>;`);
  decls.push("struct P { n: u32, decay_count: u32, momentum: f32, wd: f32, dampening: f32 }");
  decls.push(`@group(0) @binding(${b}) var<uniform> u: P;`);
  let update: string;
  if (!v.momentum) update = "let d = gi;";
  else {
    const first = v.firstFlag ? "if (started[0] == 0u) { bi = gi; }" : "";
    update = `var bi = u.momentum * buf[i] + (1.0 - u.dampening) * gi;
    ${first}
    buf[i] = bi;
    let d = ${v.nesterov ? "gi + u.momentum * bi" : "bi"};`;
  }
  c = `${decls.join("\n")}
${main1d(WG)}
  if (i >= u.n) { return; }
  let pi = p[i];
  var gi = g[i];
  if (i < u.decay_count) { gi = gi + u.wd * pi; }
  ${update}
  p[i] = pi - lr[0] * d;
}`;
  code.set(key, c);
  return c;
}

/** The launch of one SGD step over flat buffers `p`, `g` (and `buf`, `started` per variant). */
export function sgdLaunch(
  p: Tensor,
  g: Tensor,
  lr: Tensor,
  buf: Tensor | null,
  started: Tensor | null,
  o: {
    decayCount: number;
    momentum: number;
    weightDecay: number;
    dampening: number;
    nesterov: boolean;
  },
): Launch {
  const bindings = [p.binding, g.binding, lr.binding];
  if (buf) bindings.push(buf.binding);
  if (started) bindings.push(started.binding);
  return {
    name: "sgd",
    code: source({ momentum: buf !== null, nesterov: o.nesterov, firstFlag: started !== null }),
    bindings,
    uniforms: packUniforms([
      ["u32", p.size],
      ["u32", o.decayCount],
      ["f32", o.momentum],
      ["f32", o.weightDecay],
      ["f32", o.dampening],
    ]),
    workgroups: grid1d(p.size, WG),
  };
}

const markCode = `
@group(0) @binding(0) var<storage, read_write> started: array<u32>;
@compute @workgroup_size(1)
fn main() { started[0] = 1u; }`;

/** The launch that sets the u32[1] first-step flag to 1. */
export function sgdMarkStartedLaunch(started: Tensor): Launch {
  return { name: "sgd_mark_started", code: markCode, bindings: [started.binding], workgroups: [1] };
}
