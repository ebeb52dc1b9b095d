/**
 * Kernel: zero-pads the channel (last) axis of an [R, C] tensor to a multiple of 4, so that a
 * conv over few channels (an RGB stem) reads its input with vec4 loads; y [R, C4 * 4].
 * @module
 */
import type { Launch } from "../engine.ts";
import type { Tensor } from "../tensor.ts";
import { grid1d, main1d } from "./util.ts";

/** y[r, c] = x[r, c] for c < C, else 0. */
export function padChannelsLaunch(x: Tensor, y: Tensor): Launch {
  const c = x.shape[x.rank - 1], rows = x.size / c, c4 = Math.ceil(c / 4);
  const total = rows * c4;
  const comp = [0, 1, 2, 3].map((k) =>
    `select(0.0, x[min(b + ${k}u, ${x.size - 1}u)], q * 4u + ${k}u < ${c}u)`
  );
  return {
    name: "pad_channels",
    code: `// pad_channels ${c} -> ${c4 * 4}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<vec4<f32>>;
${main1d(64)}
  if (i >= ${total}u) { return; }
  let q = i % ${c4}u;
  let b = (i / ${c4}u) * ${c}u + q * 4u;
  y[i] = vec4<f32>(${comp.join(", ")});
}`,
    bindings: [x.binding, y.binding],
    workgroups: grid1d(total, 64),
  };
}
