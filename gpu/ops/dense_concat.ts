/**
 * Memory-efficient dense concatenation (DenseNet; the shared-storage scheme of Pleiss et al.,
 * "Memory-Efficient Implementation of DenseNets", 2017). A dense block's growing feature map lives
 * in ONE preallocated NHWC buffer [N, H, W, total] ({@link denseBlockBuffer}); each layer
 * ({@link denseBlockLayer}) reads the channel prefix [0, c) in place, runs a chain of pre-activation
 * conv units (BN -> ReLU -> conv, see {@link PreactConvUnit}) and writes its `growth` new channels
 * into [c, c + growth). Nothing of size c is kept per layer: each unit's BN-ReLU output goes to a
 * temporary that is freed at once and recomputed in the backward pass, so a layer keeps only its
 * intermediate unit outputs (the bottleneck's 4 * growth channels) and the BN statistics.
 *
 * Backward: the block's gradient lives in one buffer too. A layer's backward reads its slice's
 * gradient, runs the units backward and ACCUMULATES the prefix gradient into the same buffer in
 * place (no concat/split copies), then hands that buffer on as the gradient of the layer's input.
 * A gradient that arrives from outside the block is copied into a fresh buffer once per block.
 *
 * Large batches: every kernel binds at most `maxStorageBufferBindingSize` bytes; the ops split the
 * batch into groups of images that fit (./image_groups.ts) and bind views per group, the BN
 * statistics and every parameter gradient still over the whole batch. The unit chain itself is
 * ./preact_units.ts; the transition and head ops on whole tensors are ./preact_conv.ts.
 *
 * The tensors returned by successive layers of one block share the buffer: later layers write more
 * channels into it, so an intermediate layer's output is meant only as the next layer's input.
 * @module
 */
import { needsGrad, record } from "../autograd.ts";
import { engine } from "../engine.ts";
import { stridedMapLaunch } from "../kernels/strided_map.ts";
import { empty, fmtShape, reshapeView, type Tensor } from "../tensor.ts";
import { disposeAll, geometry, views } from "./image_groups.ts";
import { contiguousStrides } from "./op_util.ts";
import {
  backwardUnits,
  checkNhwc,
  checkUnits,
  disposeSaved,
  forwardUnits,
  isOwnGradient,
  markOwnGradient,
  type PreactConvUnit,
  unitInputs,
  widestOf,
} from "./preact_units.ts";

export type { BatchNormParams, PreactConvUnit } from "./preact_units.ts";
export { denseConcatLimits } from "./image_groups.ts";

const COPY = { name: "dense_concat_copy", expr: "a" };

/** Copies x [n, H, W, C] into channels [offset, offset + C) of buf [n, H, W, total] (or back). */
function copyChannels(buf: Tensor, offset: number, x: Tensor, intoBuffer: boolean): void {
  if (x.size === 0) return;
  const b = { t: buf, offset, strides: contiguousStrides(buf.shape) };
  const t = { t: x, offset: 0, strides: contiguousStrides(x.shape) };
  engine().dispatch(
    stridedMapLaunch(COPY, intoBuffer ? b : t, [intoBuffer ? t : b], [...x.shape]),
  );
}

/**
 * A dense block's feature buffer: a new [N, H, W, totalChannels] tensor holding x [N, H, W, C0] in
 * channels [0, C0), the rest to be written by {@link denseBlockLayer}. Differentiable in x.
 *
 * @example
 * ```ts ignore
 * let state = denseBlockBuffer(x, 24 + 24 * 12); // x: [N, 32, 32, 24]
 * ```
 */
export function denseBlockBuffer(x: Tensor, totalChannels: number): Tensor {
  const op = "denseBlockBuffer";
  const [n, h, w, c0] = checkNhwc(op, x);
  if (!Number.isInteger(totalChannels) || totalChannels < c0) {
    throw new Error(
      `collapse: ${op}: totalChannels ${totalChannels} must be an integer >= the ` +
        `${c0} channels of ${x.describe()}`,
    );
  }
  const geo = geometry(op, n, h, w, totalChannels);
  const buf = empty([n, h, w, totalChannels], "f32", "dense_block");
  const copy = (big: Tensor, small: Tensor, into: boolean) => {
    const bv = views(big, geo), sv = views(small, geo);
    bv.forEach((b, k) => copyChannels(b, 0, sv[k], into));
    disposeAll([...bv, ...sv]);
  };
  copy(buf, x, true);
  return record(buf, op, [x], (dy) => {
    const dx = empty(x.shape, "f32", "dense_block_dx");
    copy(dy, dx, false);
    return [dx];
  });
}

/**
 * One dense layer: reads channels [0, channels) of the block buffer `state` [N, H, W, total] in
 * place, runs the pre-activation conv `units` (BN -> ReLU -> conv each; DenseNet-BC's bottleneck is
 * a 1x1 unit to 4 * growth channels then a 3x3 unit to growth channels) and writes the last unit's
 * output into channels [channels, channels + growth) of the same buffer. Returns the buffer as a new
 * tensor (the next layer's input). Training mode uses batch statistics and updates the running
 * ones. Differentiable in `state` and every gamma, beta and weight (the backward accumulates into
 * one gradient buffer per block, see the module notes).
 *
 * @example
 * ```ts ignore
 * state = denseBlockLayer(state, 24, [
 *   { bn: bn1, weight: w1 }, // w1 [1, 1, 24, 48]
 *   { bn: bn2, weight: w2 }, // w2 [3, 3, 48, 12]
 * ], true);
 * ```
 */
export function denseBlockLayer(
  state: Tensor,
  channels: number,
  units: PreactConvUnit[],
  training: boolean,
): Tensor {
  const op = "denseBlockLayer";
  const [n, h, w, total] = checkNhwc(op, state);
  const ins = checkUnits(op, units, channels, n * h * w, training);
  const growth = units[units.length - 1].weight.shape[3];
  if (!Number.isInteger(channels) || channels < 1 || channels + growth > total) {
    throw new Error(
      `collapse: ${op}: ${channels} filled channels + ${growth} new ones do not fit ${
        fmtShape(state.shape)
      }`,
    );
  }
  const geo = geometry(op, n, h, w, widestOf(units, total));
  const prefix = (t: Tensor) => views(t, geo).map((v) => ({ t: v, ld: total }));
  const xs = prefix(state);
  const { ys, saved } = forwardUnits(xs, geo, ins, units, training);
  ys.forEach((y, k) => copyChannels(xs[k].t, channels, y, true));
  disposeAll([...ys, ...xs.map((x) => x.t)]);
  const out = reshapeView(state, state.shape);
  record(out, op, [state, ...unitInputs(units)], (dy) => {
    let buf = dy;
    if (!isOwnGradient(dy)) {
      buf = empty(dy.shape, "f32", "dense_block_grad");
      engine().copy(dy.storage, buf.storage, dy.size * 4);
      markOwnGradient(buf);
    }
    const bufs = prefix(buf);
    const slices = geo.groups.map((g, k) => {
      const s = empty([g.count, h, w, growth], "f32", "dense_layer_dy");
      copyChannels(bufs[k].t, channels, s, false);
      return s;
    });
    const wantX = needsGrad(state);
    const xs = prefix(state);
    const grads = backwardUnits(
      xs,
      geo,
      ins,
      units,
      saved,
      slices,
      wantX ? bufs : null,
      true,
      training,
    );
    disposeAll([...slices, ...bufs.map((b) => b.t), ...xs.map((x) => x.t)]);
    const dState = wantX ? reshapeView(buf, buf.shape) : null;
    if (buf !== dy) buf.dispose();
    return [dState, ...grads];
  });
  if (!out.node) disposeSaved(saved);
  return out;
}
