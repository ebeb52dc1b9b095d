/**
 * The training-parity guard's shared definition (used by `export_inputs.ts`, which feeds
 * `torch_reference.py`, and by `parity_test.ts`, which replays the same steps in collapse): the
 * variants (what a recipe trains: ResNet-32 width x0.5 with the ETF head + DR loss, the learnable
 * head + CE, the unnormalised ETF head + DR + 0.01 mean||h|| of ImageNet-LT), the deterministic
 * long-tailed data (120 images of 8x8: 7 batches of 16 and a last partial batch of 8 per epoch, 4
 * epochs = 32 steps), fit's mixup draws, the model/loss/optimizer built with the recipes' own
 * `training_setup.ts`, the exported inputs (initial weights in torch layout, ETF, batches, mixup
 * permutations) with their digest, and the relative errors the test asserts on.
 * @module
 */
import { Rng } from "../../gpu/rng.ts";
import { readAll } from "../../gpu/tensor.ts";
import type { Batch } from "../../data/types.ts";
import type { SafetensorsInput } from "../../nn/io/safetensors.ts";
import { Mixup } from "../../nn/losses/mixup.ts";
import type { ClassifierModel } from "../../nn/model/classifier.ts";
import { collapseToTorch } from "../../nn/models/torch_layout.ts";
import type { SGD } from "../../nn/optimizers/sgd.ts";
import { CosineSchedule, type Schedule, WarmupMultiStepSchedule } from "../../nn/schedules.ts";
import { compile, type DataSource, fitRng } from "../../nn/training/mod.ts";
import { buildClassifier, makeLoss, makeOptimizer } from "../../recipes/lib/training_setup.ts";

/** One trained configuration of the parity guard. */
export interface ParityVariant {
  /** File stem of its inputs and goldens. */
  name: string;
  classifier: "etf" | "learnable";
  /** ETF head: L2-normalise the BN output (false: the ImageNet-LT head). */
  normalizeFeatures: boolean;
  loss: "dr" | "ce";
  /** DR loss: weight of mean_i ||h_i|| (0.01 on ImageNet-LT). */
  normRegularizer: number;
  mixupAlpha: number;
  /** The learning-rate schedule, a fresh one per call (see {@link PARITY} for its peak rate). */
  schedule(): Schedule;
}

/**
 * Sizes, seeds and hyperparameters shared by every variant. The peak learning rates are 1e-4 and
 * 5e-5, not the recipes' 0.1: a ReLU network's trajectory branches wherever a pre-activation sits
 * within float32 rounding of 0 (the gradient jumps there), and at lr 0.1 the branches part by
 * 1e-1 within 20 steps (PyTorch float32 against float64 as much as collapse against float64), so
 * no step-exact comparison can hold. At these rates float32-level noise moves nothing by more than
 * ~1e-4 (certified by torch_reference.py) while the changes the guard must catch move the losses,
 * weights or logits by 1e-2 or more.
 */
export const PARITY = {
  numClasses: 10,
  /** Long-tailed class counts of the 120 training images. */
  counts: [30, 23, 18, 13, 10, 8, 6, 5, 4, 3],
  imageSize: 8,
  batchSize: 16,
  epochs: 4,
  /** 7 full batches and a partial one of 8 per epoch. */
  stepsPerEpoch: 8,
  evalSize: 24,
  /** Evaluation batch size (3 batches: eager, captured, replayed). */
  evalBatchSize: 8,
  widthMultiplier: 0.5,
  modelSeed: 7,
  fitSeed: 11,
  dataSeed: 5,
  /**
   * SGD weight decay, large so that decaying the BN parameters or not changes them by ~1-2% at
   * these learning rates (the recipes use 2e-4 or 5e-4 with lr 0.1).
   */
  weightDecay: 1.0,
} as const;

/** The variants: CIFAR ETF + DR, learnable + CE, ImageNet-LT-style unnormalised ETF + DR. */
export const VARIANTS: readonly ParityVariant[] = [
  {
    name: "etf_dr",
    classifier: "etf",
    normalizeFeatures: true,
    loss: "dr",
    normRegularizer: 0,
    mixupAlpha: 1,
    schedule: () =>
      new WarmupMultiStepSchedule({
        base: 1e-4,
        warmupEpochs: 2,
        milestones: [3],
        warmupBy: "step",
      }),
  },
  {
    name: "learnable_ce",
    classifier: "learnable",
    normalizeFeatures: true,
    loss: "ce",
    normRegularizer: 0,
    mixupAlpha: 1,
    schedule: () =>
      new WarmupMultiStepSchedule({
        base: 5e-5,
        warmupEpochs: 2,
        milestones: [3],
        warmupBy: "epoch",
      }),
  },
  {
    name: "etf_dr_unnormalized",
    classifier: "etf",
    normalizeFeatures: false,
    loss: "dr",
    normRegularizer: 0.01,
    mixupAlpha: 0.2,
    schedule: () => new CosineSchedule(5e-5, PARITY.epochs, 1, 0),
  },
];

const PIX = PARITY.imageSize * PARITY.imageSize * 3;
const N = PARITY.counts.reduce((a, b) => a + b, 0);

/** Class prototypes plus noise: images [n, 8, 8, 3] and labels. */
function makeImages(labels: Int32Array, rng: Rng, protos: Float32Array[]): Float32Array {
  const out = new Float32Array(labels.length * PIX);
  for (let i = 0; i < labels.length; i++) {
    const p = protos[labels[i]];
    for (let j = 0; j < PIX; j++) out[i * PIX + j] = 0.8 * p[j] + rng.normal();
  }
  return out;
}

const data = (() => {
  const rng = new Rng(PARITY.dataSeed);
  const protos = Array.from(
    { length: PARITY.numClasses },
    () => Float32Array.from({ length: PIX }, () => rng.normal()),
  );
  const labels = new Int32Array(N);
  let o = 0;
  PARITY.counts.forEach((c, k) => labels.fill(k, o, o += c));
  const evalLabels = Int32Array.from({ length: PARITY.evalSize }, (_, i) => i % PARITY.numClasses);
  return {
    images: makeImages(labels, rng, protos),
    labels,
    evalImages: makeImages(evalLabels, rng, protos),
    evalLabels,
  };
})();

const shape = (n: number): [number, number, number, number] => [
  n,
  PARITY.imageSize,
  PARITY.imageSize,
  3,
];

/** The training batches of `epoch` (a seeded shuffle; the last batch has 8 images). */
export function epochBatches(epoch: number): Batch[] {
  const order = new Rng(1000 + epoch).permutation(N);
  const out: Batch[] = [];
  for (let b = 0; b < N; b += PARITY.batchSize) {
    const n = Math.min(PARITY.batchSize, N - b);
    const images = new Float32Array(n * PIX), labels = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const k = order[b + i];
      images.set(data.images.subarray(k * PIX, (k + 1) * PIX), i * PIX);
      labels[i] = data.labels[k];
    }
    out.push({ images, labels, shape: shape(n) });
  }
  return out;
}

/** Every training batch in step order. */
export function allBatches(): Batch[] {
  return Array.from({ length: PARITY.epochs }, (_, e) => epochBatches(e)).flat();
}

/** The training data source fit consumes (batchesPerEpoch counts the partial batch). */
export function trainSource(): DataSource {
  return { batches: epochBatches, batchesPerEpoch: () => PARITY.stepsPerEpoch };
}

/** The fixed evaluation set (24 images, 8 per batch). */
export function evalSource(): DataSource {
  const b = PARITY.evalBatchSize;
  return {
    batches: () =>
      Array.from({ length: PARITY.evalSize / b }, (_, i) => ({
        images: data.evalImages.slice(i * b * PIX, (i + 1) * b * PIX),
        labels: data.evalLabels.slice(i * b, (i + 1) * b),
        shape: shape(b),
      })),
    batchesPerEpoch: () => PARITY.evalSize / b,
  };
}

/** The variant's model as a recipe builds it (seeded, built for 8x8x3 inputs). */
export function buildModel(v: ParityVariant): ClassifierModel {
  const model = buildClassifier({
    backbone: { kind: "resnet32", widthMultiplier: PARITY.widthMultiplier },
    numClasses: PARITY.numClasses,
    classifier: v.classifier,
    normalizeFeatures: v.normalizeFeatures,
    seed: PARITY.modelSeed,
  });
  model.build([-1, PARITY.imageSize, PARITY.imageSize, 3]);
  return model;
}

/** Compiles the model with the recipe's loss and optimizer (SGD 0.9, wd on all trainable). */
export function compileModel(model: ClassifierModel, v: ParityVariant): SGD {
  const optimizer = makeOptimizer(v.schedule(), PARITY.weightDecay);
  compile(model, { optimizer, loss: makeLoss(v.loss, v.normRegularizer) });
  return optimizer;
}

/** fit's mixup draws, step by step (fit draws per step from `fitRng(seed, epoch)`). */
export function mixupDraws(v: ParityVariant): { lambda: number; perm: Int32Array }[] {
  const mixup = new Mixup(v.mixupAlpha);
  const out: { lambda: number; perm: Int32Array }[] = [];
  for (let e = 0; e < PARITY.epochs; e++) {
    const rng = fitRng(PARITY.fitSeed, e);
    for (const b of epochBatches(e)) out.push(mixup.sample(b.shape[0], rng));
  }
  return out;
}

/** What the Python reference is told about a variant (also checked against the goldens). */
export function parityConfig(v: ParityVariant): Record<string, unknown> {
  const steps = allBatches();
  return {
    variant: v.name,
    classifier: v.classifier,
    normalizeFeatures: v.normalizeFeatures,
    loss: v.loss,
    normRegularizer: v.normRegularizer,
    mixupAlpha: v.mixupAlpha,
    numClasses: PARITY.numClasses,
    widthMultiplier: PARITY.widthMultiplier,
    imageSize: PARITY.imageSize,
    epochs: PARITY.epochs,
    stepsPerEpoch: PARITY.stepsPerEpoch,
    batchSizes: steps.map((b) => b.shape[0]),
    lambdas: mixupDraws(v).map((d) => d.lambda),
    momentum: 0.9,
    weightDecay: PARITY.weightDecay,
    schedule: v.schedule().getConfig(),
    bnMomentum: 0.1,
    bnEpsilon: 1e-5,
    evalSize: PARITY.evalSize,
    evalBatchSize: PARITY.evalBatchSize,
  };
}

/** Reads every weight of the model, in torch layout (the ETF M stays [d, K], as the official). */
export async function torchState(model: ClassifierModel): Promise<Map<string, SafetensorsInput>> {
  const ws = model.weights();
  const host = await readAll(ws.map((w) => w.value));
  const out = new Map<string, SafetensorsInput>();
  ws.forEach((w, i) => {
    const t = { shape: w.value.shape, data: host[i] as Float32Array };
    const c = w.name === "fc.etf" ? t : collapseToTorch(t);
    out.set(w.name, { dtype: "F32", shape: [...c.shape], data: Float32Array.from(c.data) });
  });
  return out;
}

/**
 * The tensors the Python reference starts from: `init/<name>` (every weight, torch layout),
 * `batch/<step>/{images,labels,perm}` (NHWC f32, i32, i32) and `eval/{images,labels}`.
 */
export async function parityInputs(
  v: ParityVariant,
  model: ClassifierModel,
): Promise<Record<string, SafetensorsInput>> {
  const out: Record<string, SafetensorsInput> = {};
  for (const [name, t] of await torchState(model)) out[`init/${name}`] = t;
  const draws = mixupDraws(v);
  allBatches().forEach((b, i) => {
    const s = String(i).padStart(2, "0");
    out[`batch/${s}/images`] = { dtype: "F32", shape: b.shape, data: b.images };
    out[`batch/${s}/labels`] = { dtype: "I32", shape: [b.shape[0]], data: b.labels };
    out[`batch/${s}/perm`] = { dtype: "I32", shape: [b.shape[0]], data: draws[i].perm };
  });
  out["eval/images"] = { dtype: "F32", shape: shape(PARITY.evalSize), data: data.evalImages };
  out["eval/labels"] = { dtype: "I32", shape: [PARITY.evalSize], data: data.evalLabels };
  return out;
}

/**
 * SHA-256 (hex) over the tensors in name order: name, dtype and JSON shape lines, then the raw
 * little-endian bytes (`torch_reference.py` computes the same over what it read).
 */
export async function inputsDigest(tensors: Record<string, SafetensorsInput>): Promise<string> {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  for (const name of Object.keys(tensors).sort()) {
    const t = tensors[name];
    parts.push(enc.encode(`${name}\n${t.dtype}\n${JSON.stringify(t.shape)}\n`));
    parts.push(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  const all = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return Array.from(h, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** sqrt(sum of squares). */
function norm(a: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) n += a[i] * a[i];
  return Math.sqrt(n);
}

/** ||a - b|| / ||b|| (b the golden; 0 when a equals b). */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let d = 0;
  for (let i = 0; i < a.length; i++) d += (a[i] - b[i]) ** 2;
  return d === 0 ? 0 : Math.sqrt(d) / norm(b);
}

/**
 * The relative error of weight `name`: ||ours - golden|| / scale, where the scale is the golden
 * tensor's norm, except for a BatchNorm layer's bias (the norm of its weight) and running mean
 * (the norm of the square root of its running variance): those start at 0, so their own norm is
 * no scale (BN's output is weight * (x - mean) / sqrt(var) + bias).
 */
export function weightError(
  name: string,
  ours: ArrayLike<number>,
  golden: (name: string) => ArrayLike<number> | undefined,
): number {
  const g = golden(name);
  if (!g || g.length !== ours.length) return Infinity;
  const base = name.slice(0, name.lastIndexOf("."));
  const runningVar = golden(`${base}.running_var`);
  let scale = norm(g);
  if (name.endsWith(".bias") && runningVar) scale = norm(golden(`${base}.weight`) ?? g);
  if (name.endsWith(".running_mean") && runningVar) {
    let sum = 0; // ||sqrt(var)||^2
    for (let i = 0; i < runningVar.length; i++) sum += runningVar[i];
    scale = Math.sqrt(sum);
  }
  let d = 0;
  for (let i = 0; i < g.length; i++) d += (ours[i] - g[i]) ** 2;
  return d === 0 ? 0 : Math.sqrt(d) / scale;
}
