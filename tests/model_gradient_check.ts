/**
 * The whole-model gradient check the backbone tests share: a training-mode forward of a random
 * batch, the loss sum(logits * r) for a random r, the GPU gradients of the input and of every
 * trainable weight, the logits against a host f64 reference of the model, then central differences
 * of that reference at a few coordinates of each. Not a test file itself.
 * @module
 */
import { assertEquals } from "@std/assert";
import { backward } from "../gpu/autograd.ts";
import { mul } from "../gpu/ops/elementwise.ts";
import "../gpu/ops/mod.ts";
import { sum } from "../gpu/ops/reduce.ts";
import { readAll, type Tensor, tensor } from "../gpu/tensor.ts";
import type { Weight } from "../nn/types.ts";
import { assertClose, checkGradients, dotSum, type HT, ht, randArray } from "./nn_reference.ts";

/** What {@link checkModelGradients} needs of a model. */
export interface GradientCheckedModel {
  forward(x: Tensor, opts: { training: boolean }): { logits: Tensor };
  trainableWeights(): Weight[];
}

/** What to check and how closely. */
export interface ModelGradientCheck {
  /** Shown in failures ("ResNet-32 logits"). */
  label: string;
  /** NHWC input shape. */
  xShape: number[];
  /** Seeds of the input and of r. */
  seeds: [number, number];
  /** The number of trainable weights the model must have. */
  trainableCount: number;
  /** The host reference: logits from the input and the weights by name. */
  reference: (x: HT, weights: Map<string, HT>) => HT;
  /** Options of {@link checkGradients}. */
  options: { perParam: number; rtol: number; atol: number; step: number };
}

/** Runs the check; returns the number of coordinates checked. */
export async function checkModelGradients(
  m: GradientCheckedModel,
  c: ModelGradientCheck,
): Promise<number> {
  const xs = randArray(c.xShape.reduce((a, b) => a * b, 1), c.seeds[0]);
  const x = tensor(Float32Array.from(xs), c.xShape);
  x.requiresGrad = true;
  const out = m.forward(x, { training: true });
  const r = randArray(out.logits.size, c.seeds[1]);
  const loss = sum(mul(out.logits, tensor(Float32Array.from(r), out.logits.shape)));
  const trainable = m.trainableWeights();
  assertEquals(trainable.length, c.trainableCount);
  const grads = backward(loss, [x, ...trainable.map((w) => w.value)]);
  const vals = await readAll([out.logits, ...trainable.map((w) => w.value)]);
  const host = new Map<string, HT>();
  trainable.forEach((w, i) => host.set(w.name, ht([...w.value.shape], vals[i + 1])));
  const xh = ht(c.xShape, xs);
  const f = () => c.reference(xh, host);
  assertClose(vals[0], f().data, c.label, 1e-3, 1e-4);
  const gv = await readAll([x, ...trainable.map((w) => w.value)].map((t) => grads.get(t)!));
  return checkGradients(
    [
      { name: "x", host: xh.data, grad: gv[0] },
      ...trainable.map((w, i) => ({ name: w.name, host: host.get(w.name)!.data, grad: gv[i + 1] })),
    ],
    () => dotSum(f(), r),
    c.options,
  );
}
