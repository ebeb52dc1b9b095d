/**
 * The paper's settings per recipe (Yang et al., NeurIPS 2022, and the official
 * NeuralCollapseApplications/ImbalancedLearning configs): dataset, backbone, command-line defaults,
 * learning-rate schedule, head options and recipe-specific flags. The thin files in `recipes/` pick
 * one of these and hand it to {@linkcode runRecipe} (./run_recipe.ts).
 *
 * @module
 */

import type { DatasetId } from "../../data/datasets/mod.ts";
import { datasetFlags } from "./dataset_flags.ts";
import type { ExtraFlag, RecipeDefaults } from "./flags.ts";

/** Names of the runnable recipes (file names in `recipes/` without `.ts`). */
export type RecipeName =
  | "cifar10_lt"
  | "cifar100_lt"
  | "svhn_lt"
  | "stl10_lt"
  | "cub"
  | "imagenet_lt";

/** A DenseNet-BC backbone (nn/models/densenet.ts `DenseNet3` with bottleneck layers). */
export interface DenseNetBackboneSpec {
  kind: "densenet";
  /** Depth: floor((depth - 4) / 6) layers per dense block (DenseNet-BC-150: 24). */
  depth: number;
  growthRate: number;
  reduction: number;
}

/** The backbone of a recipe. */
export type BackboneSpec =
  | { kind: "resnet32"; widthMultiplier: number; blocksPerStage?: number }
  | { kind: "resnet50"; layer4Planes: number }
  | DenseNetBackboneSpec;

/** The paper's second CIFAR/SVHN/STL backbone: DenseNet-BC-150 (growth 12, reduction 0.5, d = 510). */
export const DENSENET_BC150: DenseNetBackboneSpec = {
  kind: "densenet",
  depth: 150,
  growthRate: 12,
  reduction: 0.5,
};

/** `--backbone resnet32|densenet` of the CIFAR-style recipes (the paper trains each with both). */
export const BACKBONE_FLAG: ExtraFlag = {
  name: "backbone",
  type: "string",
  help: "resnet32 (the recipe's ResNet-32) or densenet (DenseNet-BC-150, d = 510)",
  default: "resnet32",
  choices: ["resnet32", "densenet"],
};

/**
 * `--densenet-depth N`: DenseNet-BC's depth with `--backbone densenet` (floor((N - 4) / 6) layers
 * per block, as the official DenseNet3's int((depth - 4) / 3 / 2)).
 */
export const DENSENET_DEPTH_FLAG: ExtraFlag = {
  name: "densenet-depth",
  type: "number",
  help: "DenseNet-BC depth with --backbone densenet (floor((N - 4) / 6) layers per dense block; " +
    "the paper: 150; the official code also has 100)",
  default: 150,
};

/** The backbone a run uses: DenseNet-BC with `--backbone densenet`, else the recipe's. */
export function recipeBackbone(
  spec: RecipeSpec,
  extra: Readonly<Record<string, unknown>>,
): BackboneSpec {
  if (extra.backbone !== "densenet") return spec.backbone;
  const depth = extra["densenet-depth"];
  return typeof depth === "number" ? { ...DENSENET_BC150, depth } : DENSENET_BC150;
}

/** What is wrong with the backbone flags of a run (empty when nothing is). */
export function backboneFlagErrors(extra: Readonly<Record<string, unknown>>): string[] {
  const d = extra["densenet-depth"];
  if (d === undefined || (typeof d === "number" && Number.isInteger(d) && d >= 10)) return [];
  return [
    `--densenet-depth must be an integer >= 10 (floor((N - 4) / 6) layers per dense block), got ${d}`,
  ];
}

/** Everything that makes a recipe the paper's setting. */
export interface RecipeSpec {
  name: RecipeName;
  /** Dataset shown in reports, e.g. "CIFAR-10-LT". */
  title: string;
  dataset: DatasetId;
  /** One paragraph for `--help`. */
  description: string;
  /** Command-line defaults (dataDir and out are filled in by the runner when empty). */
  defaults: RecipeDefaults;
  backbone: BackboneSpec;
  /**
   * "multistep": linear warmup (5 epochs) + x0.1 at 80% and 90% of the epochs (160/180 of 200);
   * "cosine": cosine decay over the epochs, no warmup (ImageNet-LT).
   */
  schedule: "multistep" | "cosine";
  /** Batch size the default lr belongs to; lr is scaled by batch / this (ImageNet-LT: 1024). */
  lrReferenceBatch?: number;
  /** L2-normalise the ETF head's features (the paper skips it on ImageNet-LT). */
  normalizeFeatures: boolean;
  /** Weight of mean ||h|| added to the DR loss (0.01 on ImageNet-LT). */
  drNormRegularizer: number;
  /** The split is fixed: `--ratio` other than 1 is refused (ImageNet-LT). */
  fixedSplit?: boolean;
  /** Recipe-specific flags. */
  extra: ExtraFlag[];
  /** Remarks copied into every report of this recipe. */
  notes: string[];
}

const COMMON: Omit<RecipeDefaults, "dataDir" | "out"> = {
  ratio: 0.01,
  epochs: 200,
  batchSize: 128,
  lr: 0.1,
  weightDecay: 2e-4,
  classifier: "etf",
  loss: "dr",
  mixup: 1,
  sampler: "instance",
  seed: 0,
  resume: false,
  evalEvery: 1,
  workers: 1,
};

const IMAGE_SIZE: ExtraFlag = {
  name: "image-size",
  type: "number",
  help: "training/test image side in pixels (int >= 16; small values for quick tries)",
  default: 224,
};

function defaults(name: RecipeName, over: Partial<RecipeDefaults> = {}): RecipeDefaults {
  return { ...COMMON, dataDir: "", out: `runs/${name}`, ...over };
}

/** Every recipe's settings, by name. */
export const RECIPES: Readonly<Record<RecipeName, RecipeSpec>> = {
  cifar10_lt: {
    name: "cifar10_lt",
    title: "CIFAR-10-LT",
    dataset: "cifar10",
    description: "CIFAR-10-LT (exponential long tail, r = --ratio) with ResNet-32 (or " +
      "DenseNet-BC-150: --backbone densenet), the fixed ETF classifier and the DR loss: SGD 0.9, " +
      "lr 0.1, batch 128, wd 2e-4, 200 epochs, 5 warmup, x0.1 at 160 and 180, mixup 1.0, random " +
      "crop + flip.",
    defaults: defaults("cifar10_lt"),
    backbone: { kind: "resnet32", widthMultiplier: 1 },
    schedule: "multistep",
    normalizeFeatures: true,
    drNormRegularizer: 0,
    extra: [BACKBONE_FLAG, DENSENET_DEPTH_FLAG, ...datasetFlags("cifar10")],
    notes: [],
  },
  cifar100_lt: {
    name: "cifar100_lt",
    title: "CIFAR-100-LT",
    dataset: "cifar100",
    description: "CIFAR-100-LT with ResNet-32 at double width (32/64/128, d = 128; or " +
      "DenseNet-BC-150, d = 510: --backbone densenet), ETF + DR, the CIFAR-10-LT schedule.",
    defaults: defaults("cifar100_lt"),
    backbone: { kind: "resnet32", widthMultiplier: 2 },
    schedule: "multistep",
    normalizeFeatures: true,
    drNormRegularizer: 0,
    extra: [BACKBONE_FLAG, DENSENET_DEPTH_FLAG, ...datasetFlags("cifar100")],
    notes: [],
  },
  svhn_lt: {
    name: "svhn_lt",
    title: "SVHN-LT",
    dataset: "svhn",
    description:
      "SVHN-LT (the official protocol: train_32x32.mat and extra_32x32.mat each long-tailed, " +
      "concatenated; test_32x32.mat) with ResNet-32 (or DenseNet-BC-150: --backbone densenet), " +
      "ETF + DR, no augmentation, images scaled to [-1, 1].",
    defaults: defaults("svhn_lt"),
    backbone: { kind: "resnet32", widthMultiplier: 1 },
    schedule: "multistep",
    normalizeFeatures: true,
    drNormRegularizer: 0,
    extra: [BACKBONE_FLAG, DENSENET_DEPTH_FLAG, ...datasetFlags("svhn")],
    notes: [],
  },
  stl10_lt: {
    name: "stl10_lt",
    title: "STL-10-LT",
    dataset: "stl10",
    description: "STL-10-LT (96x96 labelled train split long-tailed; official test split) with " +
      "ResNet-32 (or DenseNet-BC-150: --backbone densenet), ETF + DR, no augmentation, images " +
      "scaled to [-1, 1].",
    defaults: defaults("stl10_lt"),
    backbone: { kind: "resnet32", widthMultiplier: 1 },
    schedule: "multistep",
    normalizeFeatures: true,
    drNormRegularizer: 0,
    extra: [BACKBONE_FLAG, DENSENET_DEPTH_FLAG, ...datasetFlags("stl10")],
    notes: [],
  },
  cub: {
    name: "cub",
    title: "CUB-200-2011",
    dataset: "cub",
    description: "CUB-200-2011 (official train/test split; --ratio < 1 makes the train split " +
      "long-tailed) with ResNet-50, ETF + DR, RandomResizedCrop 224 + flip + ColorJitter 0.4. " +
      "Results near the published level need ImageNet-pretrained weights: --pretrained FILE " +
      "(safetensors in torchvision's naming).",
    defaults: defaults("cub", {
      ratio: 1,
      epochs: 100,
      batchSize: 64,
      lr: 0.01,
      weightDecay: 5e-4,
      mixup: 0,
    }),
    backbone: { kind: "resnet50", layer4Planes: 512 },
    schedule: "cosine",
    normalizeFeatures: true,
    drNormRegularizer: 0,
    extra: [...datasetFlags("cub"), IMAGE_SIZE, {
      name: "pretrained",
      type: "string",
      help: "ResNet-50 weights to fine-tune from (safetensors, torchvision parameter names)",
    }],
    notes: [
      "CUB settings (lr 0.01, batch 64, 100 epochs, cosine, no mixup) are the usual fine-tuning " +
      "recipe; the official ImbalancedLearning code publishes no CUB config.",
    ],
  },
  imagenet_lt: {
    name: "imagenet_lt",
    title: "ImageNet-LT",
    dataset: "imagenet_lt",
    description: "ImageNet-LT (OLTR split lists over a local ImageNet) with ResNet-50 (layer4 " +
      "widened to 1024 planes, d = 4096), ETF without feature normalisation + DR with 0.01 " +
      "feature-norm regulariser, SGD lr 0.1 for batch 1024 (scaled linearly for other batch " +
      "sizes), wd 5e-4, 90 epochs, cosine, mixup 0.2.",
    defaults: defaults("imagenet_lt", {
      ratio: 1,
      epochs: 90,
      batchSize: 1024,
      lr: 0.1,
      weightDecay: 5e-4,
      mixup: 0.2,
    }),
    backbone: { kind: "resnet50", layer4Planes: 1024 },
    schedule: "cosine",
    lrReferenceBatch: 1024,
    normalizeFeatures: false,
    drNormRegularizer: 0.01,
    fixedSplit: true,
    extra: [...datasetFlags("imagenet_lt"), IMAGE_SIZE, {
      name: "imagenet-dir",
      type: "string",
      help: "ImageNet folder holding train/ and val/ (default: <data-dir>/imagenet)",
    }, {
      name: "layer4-planes",
      type: "number",
      help: "planes of ResNet-50's last stage (the paper widens it to 1024, d = 4096; 512 is " +
        "torchvision's, d = 2048)",
      default: 1024,
    }],
    notes: [],
  },
};

/** The learning-rate schedule of a run, resolved from the recipe, `--epochs` and the overrides. */
export type ScheduleParams =
  | {
    kind: "multistep";
    /** Epochs of linear warmup (0: none). */
    warmupEpochs: number;
    /**
     * "epoch": lr x (e + 1) / warmup during 0-based epoch e (the official code's stepping);
     * "step": linear in the step count.
     */
    warmupBy: "epoch" | "step";
    /** The lr is multiplied by 0.1 after each of these epochs. */
    milestones: number[];
  }
  | { kind: "cosine"; epochs: number; warmupEpochs: number };

/** `--warmup-epochs` / `--milestones` as given (undefined: the recipe's default). */
export interface ScheduleOverrides {
  warmupEpochs?: number;
  milestones?: number[];
}

/** The paper's schedule: 5 warmup epochs and milestones 160/180 of 200 epochs. */
const PAPER_EPOCHS = 200;
const PAPER_WARMUP = 5;

/**
 * The learning-rate schedule of a recipe for a run of `epochs` epochs. Multistep recipes: the
 * paper's 5 warmup epochs and milestones 160/180 at 200 epochs; other lengths scale both (warmup
 * max(1, round(epochs * 5 / 200)) epochs, milestones at round(80%) and round(90%), dropping any
 * at or after the last epoch). A warmup of 5 or more epochs steps per epoch as the official code
 * (lr x (e + 1) / warmup in 0-based epoch e); a shorter one is linear per step, so even a 1-epoch
 * warmup starts low. Cosine recipes: no warmup unless `--warmup-epochs` asks for one (per step).
 *
 * @example
 * ```ts
 * import { RECIPES, scheduleParams } from "./recipe_specs.ts";
 * console.log(scheduleParams(RECIPES.cifar10_lt, 200));
 * // { kind: "multistep", warmupEpochs: 5, warmupBy: "epoch", milestones: [160, 180] }
 * console.log(scheduleParams(RECIPES.cifar10_lt, 10));
 * // { kind: "multistep", warmupEpochs: 1, warmupBy: "step", milestones: [8, 9] }
 * ```
 */
export function scheduleParams(
  spec: RecipeSpec,
  epochs: number,
  overrides: ScheduleOverrides = {},
): ScheduleParams {
  if (spec.schedule === "cosine") {
    return { kind: "cosine", epochs, warmupEpochs: overrides.warmupEpochs ?? 0 };
  }
  const warmupEpochs = overrides.warmupEpochs ??
    Math.max(1, Math.round(epochs * PAPER_WARMUP / PAPER_EPOCHS));
  const milestones = overrides.milestones ??
    [...new Set([Math.round(epochs * 0.8), Math.round(epochs * 0.9)])].filter((m) => m < epochs);
  return {
    kind: "multistep",
    warmupEpochs,
    warmupBy: warmupEpochs >= PAPER_WARMUP ? "epoch" : "step",
    milestones,
  };
}

/** Problems of `--warmup-epochs` / `--milestones` against `--epochs` and the recipe's schedule. */
export function scheduleProblems(
  spec: RecipeSpec,
  epochs: number,
  overrides: ScheduleOverrides,
): string[] {
  const errors: string[] = [];
  const w = overrides.warmupEpochs;
  if (w !== undefined && w > epochs) {
    errors.push(`--warmup-epochs ${w} is more than --epochs ${epochs}`);
  }
  const ms = overrides.milestones;
  if (ms !== undefined && spec.schedule === "cosine") {
    errors.push(
      `--milestones: ${spec.name} uses a cosine schedule, which has no milestones`,
    );
  } else if (ms !== undefined) {
    const p = scheduleParams(spec, epochs, overrides);
    for (const m of ms) {
      if (m >= epochs) {
        errors.push(
          `--milestones: ${m} is not before the last epoch (${epochs}); a milestone M ` +
            `lowers the lr from epoch M + 1 on`,
        );
      } else if (m < p.warmupEpochs) {
        errors.push(`--milestones: ${m} falls inside the ${p.warmupEpochs}-epoch warmup`);
      }
    }
  }
  return errors;
}

function epochList(ms: readonly number[]): string {
  return ms.length <= 2 ? ms.join(" and ") : `${ms.slice(0, -1).join(", ")} and ${ms.at(-1)}`;
}

/**
 * The schedule in words, e.g. "peak lr 0.1; linear warmup over 5 epochs (stepped per epoch, as
 * the official code); x0.1 after epochs 160 and 180".
 */
export function describeSchedule(p: ScheduleParams, lr: number): string {
  const parts = [`peak lr ${lr}`];
  const w = p.warmupEpochs;
  if (w === 0) parts.push("no warmup");
  else if (p.kind === "multistep" && p.warmupBy === "epoch") {
    parts.push(
      `linear warmup over ${w} epochs (stepped per epoch, as the official code: ` +
        `lr x (e + 1) / ${w} in epoch e)`,
    );
  } else parts.push(`linear warmup over ${w} epoch${w === 1 ? "" : "s"} (per step)`);
  if (p.kind === "cosine") parts.push(`cosine decay to 0 over ${p.epochs} epochs`);
  else if (p.milestones.length === 0) parts.push("no decay");
  else {
    parts.push(
      `x0.1 after epoch${p.milestones.length === 1 ? "" : "s"} ${epochList(p.milestones)}`,
    );
  }
  return parts.join("; ");
}

/** The schedule rule of a recipe, for `--help`. */
export function scheduleHelp(spec: RecipeSpec): string {
  const d = spec.defaults;
  const now = describeSchedule(scheduleParams(spec, d.epochs), d.lr);
  if (spec.schedule === "cosine") {
    return `Schedule (${d.epochs} epochs): ${now}. --warmup-epochs N adds a linear warmup ` +
      "(per step).";
  }
  return `Schedule (${d.epochs} epochs): ${now}. Other --epochs scale it: warmup ` +
    "max(1, round(epochs x 5/200)) epochs (per step when under 5), milestones at 80% and 90%. " +
    "--warmup-epochs and --milestones set them; config.json and report.md state the schedule " +
    "used.";
}

/** The peak learning rate actually used: `lr`, scaled by batch / reference batch if the recipe has one. */
export function effectiveLr(spec: RecipeSpec, lr: number, batchSize: number): number {
  return spec.lrReferenceBatch ? lr * batchSize / spec.lrReferenceBatch : lr;
}
