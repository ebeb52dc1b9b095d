/**
 * Pre-activation conv chains on whole NHWC tensors with the dense-concatenation ops' memory scheme
 * (the BN-ReLU outputs recomputed in the backward pass, the batch split into image groups under the
 * binding limit): {@link preactConv} (a DenseNet transition: BN -> ReLU -> conv1x1, optionally fused
 * with its 2x2 average pooling) and {@link preactGlobalPool} (DenseNet's head: BN -> ReLU -> global
 * average pooling).
 * @module
 */
import { needsGrad, record } from "../autograd.ts";
import { engine } from "../engine.ts";
import { poolBackwardLaunch, poolForwardLaunch, type PoolGeom } from "../kernels/pool_window.ts";
import { empty, type Tensor } from "../tensor.ts";
import { assemble, disposeAll, geometry, split, views } from "./image_groups.ts";
import {
  backwardUnits,
  type BatchNormParams,
  checkNhwc,
  checkUnits,
  disposeSaved,
  forwardUnits,
  markOwnGradient,
  type PreactConvUnit,
  type Unit,
  unitGrads,
  unitInputs,
  widestOf,
} from "./preact_units.ts";

/** The 2x2 / stride-2 average pooling (floor) of y [n, H, W, C]. */
function poolGeom(y: Tensor): PoolGeom {
  const [n, h, w, c] = y.shape;
  const oh = Math.floor(h / 2), ow = Math.floor(w / 2);
  return { n, h, w, c, oh, ow, kh: 2, kw: 2, sh: 2, sw: 2, ph: 0, pw: 0 };
}

/** Options of {@link preactConv}. */
export interface PreactConvOptions {
  /**
   * Follow the chain with 2x2 average pooling, stride 2 (floor, as PyTorch's `F.avg_pool2d(y, 2)`),
   * fused per image group: a DenseNet transition, which then keeps nothing of the conv output.
   */
  avgPool2?: boolean;
}

/** The chain on groups of x; returns the output [N, ...] and records the backward pass. */
function runChain(
  op: string,
  x: Tensor,
  units: Unit[],
  training: boolean,
  pool: boolean,
): Tensor {
  const [n, h, w, c] = checkNhwc(op, x);
  const ins = checkUnits(op, units, c, n * h * w, training);
  if (pool && (h < 2 || w < 2)) {
    throw new Error(`collapse: ${op}: cannot pool ${x.describe()} by 2`);
  }
  const geo = geometry(op, n, h, w, widestOf(units, c));
  const prefix = (t: Tensor) => views(t, geo).map((v) => ({ t: v, ld: t.shape[3] }));
  const xs = prefix(x);
  const { ys, saved } = forwardUnits(xs, geo, ins, units, training);
  disposeAll(xs.map((v) => v.t));
  const outs = pool
    ? ys.map((t) => {
      const g = poolGeom(t);
      const p = empty([g.n, g.oh, g.ow, g.c], "f32", "preact_pool");
      engine().dispatch(poolForwardLaunch("avg", t, p, null, g));
      t.dispose();
      return p;
    })
    : ys;
  const y = assemble(outs, geo, [n, ...outs[0].shape.slice(1)]);
  record(y, op, [x, ...unitInputs(units)], (dy) => {
    const dx = needsGrad(x) ? empty(x.shape, "f32", "preact_dx") : null;
    let dys = split(dy, geo);
    if (pool) {
      dys = dys.map((d) => {
        const pre = empty([d.shape[0], h, w, d.shape[3]], "f32", "preact_pool_grad");
        engine().dispatch(poolBackwardLaunch("avg", d, null, pre, poolGeom(pre)));
        d.dispose();
        return pre;
      });
    }
    const xs = prefix(x), dxs = dx ? prefix(dx) : null;
    const grads = backwardUnits(xs, geo, ins, units, saved, dys, dxs, false, training);
    disposeAll([...dys, ...xs.map((v) => v.t), ...(dxs ?? []).map((v) => v.t)]);
    if (dx) markOwnGradient(dx);
    return [dx, ...unitGrads(units, grads)];
  });
  if (!y.node) disposeSaved(saved);
  return y;
}

/**
 * A chain of pre-activation conv units on a whole tensor x [N, H, W, C] (a DenseNet transition's
 * BN -> ReLU -> conv1x1, with `avgPool2` its pooling too), with the same recomputation: nothing of
 * x's size is kept for the backward pass. Returns the last unit's output [N, H, W, Cout] (pooled:
 * [N, floor(H / 2), floor(W / 2), Cout]). Differentiable in x and every gamma, beta and weight.
 *
 * @example
 * ```ts ignore
 * const z = preactConv(x, [{ bn, weight: w }], true, { avgPool2: true }); // w [1, 1, C, C / 2]
 * ```
 */
export function preactConv(
  x: Tensor,
  units: PreactConvUnit[],
  training: boolean,
  options: PreactConvOptions = {},
): Tensor {
  return runChain("preactConv", x, units, training, !!options.avgPool2);
}

/**
 * BN -> ReLU -> global average pooling of x [N, H, W, C] to [N, C] (DenseNet's head: `bn1`, ReLU,
 * `F.avg_pool2d(out, H)`), with the BN-ReLU output recomputed in the backward pass and the batch
 * split into image groups under the binding limit. Differentiable in x, gamma and beta.
 *
 * @example
 * ```ts ignore
 * const features = preactGlobalPool(x, bn, true); // [N, C]
 * ```
 */
export function preactGlobalPool(x: Tensor, bn: BatchNormParams, training: boolean): Tensor {
  return runChain("preactGlobalPool", x, [{ bn, weight: null }], training, false);
}
