/**
 * The model, loss, optimizer and learning-rate schedule of a recipe run, built from a
 * {@linkcode RecipeSpec} and the parsed flags: ResNet-32 (CIFAR width 1 or 2), DenseNet-BC or ResNet-50 with the
 * fixed ETF head or a learnable Dense head, the DR loss or cross-entropy, SGD momentum 0.9 with
 * weight decay on every trainable parameter, warmup + multistep or cosine. Also loads
 * torchvision-layout pretrained weights (`cub.ts --pretrained FILE`). Shared by the recipe runner
 * and the quickstart.
 *
 * @module
 */

import { readSafetensorsFile } from "../../nn/io/safetensors.ts";
import { balancedClassWeights, ClassWeightedLoss } from "../../nn/losses/class_weighted.ts";
import { CrossEntropyLoss } from "../../nn/losses/cross_entropy.ts";
import { DotRegressionLoss } from "../../nn/losses/dot_regression.ts";
import { LDAMLoss } from "../../nn/losses/ldam.ts";
import { BalancedSoftmaxLoss } from "../../nn/losses/logit_adjusted.ts";
import type { Loss } from "../../nn/losses/loss.ts";
import type { ClassifierModel } from "../../nn/model/classifier.ts";
import { densenet3 } from "../../nn/models/densenet.ts";
import { resnet32 } from "../../nn/models/resnet32.ts";
import { resnet50 } from "../../nn/models/resnet50.ts";
import { type HostTensor, type LoadReport, loadTorchState } from "../../nn/models/torch_layout.ts";
import { SGD } from "../../nn/optimizers/sgd.ts";
import { CosineSchedule, type Schedule, WarmupMultiStepSchedule } from "../../nn/schedules.ts";
import type { DatasetInfo } from "../../data/datasets/mod.ts";
import { type ClassifierFlag, extraNumber, type LossFlag, type RecipeFlags } from "./flags.ts";
import {
  type BackboneSpec,
  recipeBackbone,
  type RecipeSpec,
  type ScheduleParams,
} from "./recipe_specs.ts";

/** What {@linkcode buildClassifier} needs. */
export interface ModelSetup {
  backbone: BackboneSpec;
  numClasses: number;
  classifier: ClassifierFlag;
  /** ETF head: L2-normalise the features (false on ImageNet-LT). */
  normalizeFeatures: boolean;
  /** Seed of the weight initialisation (and the ETF matrix). */
  seed: number;
}

/** The backbone with its head, seeded. */
export function buildClassifier(s: ModelSetup): ClassifierModel {
  const head = s.classifier === "etf" ? "etf" : "dense";
  const etf = { normalize: s.normalizeFeatures };
  if (s.backbone.kind === "densenet") {
    return densenet3({
      depth: s.backbone.depth,
      growthRate: s.backbone.growthRate,
      reduction: s.backbone.reduction,
      numClasses: s.numClasses,
      head,
      etf,
      seed: s.seed,
    });
  }
  if (s.backbone.kind === "resnet32") {
    return resnet32({
      widthMultiplier: s.backbone.widthMultiplier,
      blocksPerStage: s.backbone.blocksPerStage,
      numClasses: s.numClasses,
      head,
      etf,
      seed: s.seed,
    });
  }
  return resnet50({
    layer4Planes: s.backbone.layer4Planes,
    numClasses: s.numClasses,
    head,
    etf,
    seed: s.seed,
  });
}

/**
 * The recipe's model for these flags and data (`--layer4-planes` and the backbone flags applied),
 * built for the data's input shape.
 */
export function buildRunModel(
  spec: RecipeSpec,
  flags: RecipeFlags,
  data: DatasetInfo,
): { model: ClassifierModel; backbone: BackboneSpec } {
  const planes = extraNumber(flags, "layer4-planes");
  const backbone = spec.backbone.kind === "resnet50" && planes !== undefined
    ? { ...spec.backbone, layer4Planes: planes }
    : recipeBackbone(spec, flags.extra);
  const model = buildClassifier({
    backbone,
    numClasses: data.numClasses,
    classifier: flags.classifier,
    normalizeFeatures: spec.normalizeFeatures,
    seed: flags.seed,
  });
  model.build([-1, ...data.inputShape]);
  return { model, backbone };
}

/** A short name of the architecture, for configs and reports. */
export function describeBackbone(b: BackboneSpec): string {
  if (b.kind === "densenet") {
    return `DenseNet-BC-${b.depth} (growth ${b.growthRate}, reduction ${b.reduction})`;
  }
  if (b.kind === "resnet32") {
    const depth = 6 * (b.blocksPerStage ?? 5) + 2;
    return `ResNet-${depth}` + (b.widthMultiplier !== 1 ? ` (width x${b.widthMultiplier})` : "");
  }
  return "ResNet-50" + (b.layer4Planes !== 512 ? ` (layer4 ${b.layer4Planes} planes)` : "");
}

/** What the long-tail losses need to know of the run (see {@linkcode makeLoss}). */
export interface LossContext {
  /** Training images per class. */
  trainCounts: readonly number[];
  /** Training epochs (LDAM's re-weighting starts at 80% of them: epoch 160 of 200). */
  epochs: number;
  /** The head: LDAM scales the cosine logits of the ETF head by 30, a learnable head's by 1. */
  classifier: ClassifierFlag;
}

/**
 * The training loss: DR (with an optional feature-norm regulariser), cross-entropy, or a long-tail
 * baseline, which needs the run's `context`: CE with "balanced" class weights n / (K n_c),
 * balanced softmax, LDAM (max margin 0.5) with deferred re-weighting (beta 0.9999).
 */
export function makeLoss(loss: LossFlag, drNormRegularizer = 0, context?: LossContext): Loss {
  if (loss === "dr") return new DotRegressionLoss({ normRegularizer: drNormRegularizer });
  if (loss === "ce") return new CrossEntropyLoss();
  if (!context) throw new Error(`collapse: --loss ${loss} needs the training class counts`);
  const classCounts = context.trainCounts;
  switch (loss) {
    case "ce-weighted":
      return new ClassWeightedLoss(new CrossEntropyLoss(), balancedClassWeights(classCounts));
    case "balanced-softmax":
      return new BalancedSoftmaxLoss({ classCounts });
    case "ldam-drw":
      return new LDAMLoss({
        classCounts,
        drwEpoch: Math.floor(context.epochs * 0.8),
        scale: context.classifier === "etf" ? 30 : 1,
      });
  }
}

/** Parameters of {@linkcode makeSchedule}. */
export type ScheduleSetup =
  | {
    kind: "multistep";
    base: number;
    warmupEpochs: number;
    milestones: number[];
    /** Warmup granularity (default "epoch", the official code's stepping). */
    warmupBy?: "epoch" | "step";
  }
  | { kind: "cosine"; base: number; epochs: number; warmupEpochs?: number };

/** The learning-rate schedule. */
export function makeSchedule(s: ScheduleSetup): Schedule {
  return s.kind === "multistep"
    ? new WarmupMultiStepSchedule({
      base: s.base,
      warmupEpochs: s.warmupEpochs,
      milestones: s.milestones,
      gamma: 0.1,
      warmupBy: s.warmupBy ?? "epoch",
    })
    : new CosineSchedule(s.base, s.epochs, s.warmupEpochs ?? 0, 0);
}

/** The schedule of resolved recipe parameters ({@linkcode ScheduleParams}) at peak lr `base`. */
export function scheduleFromParams(p: ScheduleParams, base: number): Schedule {
  return makeSchedule(
    p.kind === "multistep"
      ? {
        kind: "multistep",
        base,
        warmupEpochs: p.warmupEpochs,
        milestones: p.milestones,
        warmupBy: p.warmupBy,
      }
      : { kind: "cosine", base, epochs: p.epochs, warmupEpochs: p.warmupEpochs },
  );
}

/** SGD momentum 0.9 with weight decay on every trainable parameter (the paper's optimizer). */
export function makeOptimizer(schedule: Schedule, weightDecay: number): SGD {
  return new SGD({ learningRate: schedule, momentum: 0.9, weightDecay });
}

/**
 * Loads torchvision-layout weights (a safetensors file, e.g. converted from torchvision's
 * resnet50) into a built model by name; the head stays as initialised. Throws if nothing matched.
 */
export async function loadPretrained(model: ClassifierModel, path: string): Promise<LoadReport> {
  const file = await readSafetensorsFile(path);
  const state = new Map<string, HostTensor>();
  for (const [name, t] of Object.entries(file.tensors)) {
    if (name.endsWith("num_batches_tracked")) continue;
    state.set(name, { shape: t.shape, data: Float32Array.from(t.data as ArrayLike<number>) });
  }
  const report = loadTorchState(model, state);
  if (report.loaded.length === 0) {
    throw new Error(
      `collapse: --pretrained ${path}: no tensor name matches the model (expected torchvision ` +
        `names such as conv1.weight, layer1.0.conv1.weight)`,
    );
  }
  return report;
}
