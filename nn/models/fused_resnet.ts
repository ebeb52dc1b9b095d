/**
 * Wiring of the CIFAR ResNet layers to the fused GPU ops (gpu/ops/fused_block.ts): the tensors and
 * settings of a built Conv2D + BatchNormalization pair, and the fused stem / basic block when the
 * layers and the input allow it (null otherwise: the caller runs its layers one by one). The
 * layers, their weights and their names are unchanged; `COLLAPSE_FUSION=off` turns fusion off.
 * @module
 */
import {
  type BlockShortcut,
  canFuseConvBn,
  type ConvBnParams,
  fusedBasicBlock,
  fusedConvBnRelu,
} from "../../gpu/ops/fused_block.ts";
import { Tensor } from "../../gpu/tensor.ts";
import type { BatchNormalization } from "../layers/batch_normalization.ts";
import type { Conv2D } from "../layers/conv2d.ts";

function fusionOn(): boolean {
  try {
    return Deno.env.get("COLLAPSE_FUSION") !== "off";
  } catch {
    return true; // no env permission
  }
}

/** The fused-op view of a built 3x3, padding-1, bias-free conv and its BatchNorm, or null. */
export function convBnParams(conv: Conv2D, bn: BatchNormalization): ConvBnParams | null {
  const [sh, sw] = conv.strides;
  const [kh, kw] = conv.kernelSize;
  if (!conv.kernel || conv.bias || !bn.gamma || !bn.beta || !bn.runningMean || !bn.runningVar) {
    return null;
  }
  if (kh !== 3 || kw !== 3 || sh !== sw || conv.padding !== 1) return null;
  return {
    w: conv.kernel.value,
    stride: sh,
    gamma: bn.gamma.value,
    beta: bn.beta.value,
    runningMean: bn.runningMean.value,
    runningVar: bn.runningVar.value,
    momentum: bn.momentum,
    eps: bn.epsilon,
  };
}

/** relu(bn(conv(x))) fused, or null when it cannot be (see {@link canFuseConvBn}). */
export function fusedStem(
  x: unknown,
  conv: Conv2D,
  bn: BatchNormalization,
  training: boolean,
): Tensor | null {
  if (!fusionOn() || !(x instanceof Tensor)) return null;
  const c = convBnParams(conv, bn);
  return c && canFuseConvBn(x, [c], training) ? fusedConvBnRelu(x, c, training) : null;
}

/** The basic block fused, or null when it cannot be. */
export function fusedBlock(
  x: unknown,
  layers: [Conv2D, BatchNormalization, Conv2D, BatchNormalization],
  shortcut: BlockShortcut,
  training: boolean,
): Tensor | null {
  if (!fusionOn() || !(x instanceof Tensor)) return null;
  const c1 = convBnParams(layers[0], layers[1]), c2 = convBnParams(layers[2], layers[3]);
  if (!c1 || !c2 || !canFuseConvBn(x, [c1, c2], training, shortcut)) return null;
  return fusedBasicBlock(x, c1, c2, shortcut, training);
}
