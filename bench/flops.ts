/**
 * FLOP counting for the benches: the GEMM work (conv2d, Dense, classifier heads) of a built model's
 * forward pass and of its backward pass (gradient w.r.t. inputs and w.r.t. weights), per image,
 * from the layers' kernel shapes and recorded output shapes. One multiply-add counts as 2 FLOPs.
 * BatchNorm, ReLU, pooling, losses and the optimizer are memory-bound and not counted (they are
 * < 1% of ResNet-32's FLOPs). Also the FLOPs of a conv/matmul problem for the kernel benches.
 * @module
 */
import { Conv2D } from "../nn/layers/conv2d.ts";
import { Dense } from "../nn/layers/dense.ts";
import type { Layer } from "../nn/layers/layer.ts";
import { Head } from "../nn/heads/head.ts";

/** FLOPs of one GEMM-like layer, per image. */
export interface LayerFlops {
  /** The layer's weight path prefix or name ("layer1.0.conv1."). */
  layer: string;
  kind: "conv2d" | "dense" | "head";
  /** Forward GEMM FLOPs. */
  forward: number;
  /** dL/dx FLOPs (0 where the input needs no gradient: the stem conv on the images). */
  backwardInput: number;
  /** dL/dW FLOPs (0 for a constant classifier such as the ETF). */
  backwardWeight: number;
  /** A conv with stride > 1 (its backward-data runs as a dense GEMM + col2im). */
  strided?: boolean;
}

/** Totals per image, and per layer. */
export interface ModelFlops {
  layers: LayerFlops[];
  forward: number;
  backwardInput: number;
  backwardWeight: number;
  /** forward + backwardInput + backwardWeight: one training image. */
  train: number;
}

/** 2 * OH * OW * Cout * KH * KW * Cin: one image's conv forward FLOPs. */
export function convFlops(
  oh: number,
  ow: number,
  cout: number,
  kh: number,
  kw: number,
  cin: number,
): number {
  return 2 * oh * ow * cout * kh * kw * cin;
}

/** 2 * M * N * K. */
export function matmulFlops(m: number, n: number, k: number): number {
  return 2 * m * n * k;
}

function walk(layer: Layer, out: Layer[]): void {
  out.push(layer);
  for (const child of layer.sublayers.values()) walk(child, out);
}

/**
 * GEMM FLOPs per image of a built model (after `model.build(shape)` or one forward), from each
 * layer's kernel shape and last output shape. The first conv/dense layer met (the stem, which
 * reads the images) gets no input gradient, as autograd skips it.
 */
export function modelFlops(model: Layer): ModelFlops {
  const all: Layer[] = [];
  walk(model, all);
  const layers: LayerFlops[] = [];
  let first = true;
  for (const l of all) {
    const name = l.pathPrefix || l.name;
    if (l instanceof Conv2D) {
      const k = l.kernel?.value.shape;
      const o = l.outputShape as readonly number[] | undefined;
      if (!k || !o || o.length !== 4) {
        throw new Error(`collapse: modelFlops: ${l.describe()} is not built (build the model)`);
      }
      const f = convFlops(o[1], o[2], o[3], k[0], k[1], k[2]);
      const trainable = l.kernel!.trainable;
      layers.push({
        layer: name,
        kind: "conv2d",
        forward: f,
        backwardInput: first ? 0 : f,
        backwardWeight: trainable ? f : 0,
        strided: l.strides[0] > 1 || l.strides[1] > 1,
      });
      first = false;
    } else if (l instanceof Dense) {
      const k = l.kernel?.value.shape;
      const o = l.outputShape as readonly number[] | undefined;
      if (!k || !o) {
        throw new Error(`collapse: modelFlops: ${l.describe()} is not built (build the model)`);
      }
      const rows = o.slice(1, -1).reduce((a, b) => a * b, 1);
      const f = matmulFlops(rows, k[1], k[0]);
      layers.push({
        layer: name,
        kind: "dense",
        forward: f,
        backwardInput: first ? 0 : f,
        backwardWeight: l.kernel!.trainable ? f : 0,
      });
      first = false;
    } else if (l instanceof Head) {
      const m = l.classifierMatrix();
      const f = matmulFlops(1, m.shape[1], m.shape[0]);
      const learnable = l.weights().some((w) => w.value === m && w.trainable);
      layers.push({
        layer: name,
        kind: "head",
        forward: f,
        backwardInput: first ? 0 : f,
        backwardWeight: learnable ? f : 0,
      });
      first = false;
    }
  }
  const sum = (k: "forward" | "backwardInput" | "backwardWeight") =>
    layers.reduce((a, x) => a + x[k], 0);
  const forward = sum("forward");
  const backwardInput = sum("backwardInput");
  const backwardWeight = sum("backwardWeight");
  return {
    layers,
    forward,
    backwardInput,
    backwardWeight,
    train: forward + backwardInput + backwardWeight,
  };
}
