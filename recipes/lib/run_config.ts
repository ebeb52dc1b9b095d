/**
 * A training run's `config.json`: every setting (as `--config` reads them back), the identity a
 * resume is checked against, what the settings resolved to (learning rate and schedule,
 * optimizer, loss, backbone, head, parameter count, the paper's figure), the data (counts,
 * groups, statistics, sources), the adapter, kernels and versions, the notes, and the history of
 * resumes; and the context report.md and the plots are rendered with.
 *
 * @module
 */

import type { DatasetInfo } from "../../data/datasets/mod.ts";
import type { Loss } from "../../nn/losses/loss.ts";
import type { ClassifierModel } from "../../nn/model/classifier.ts";
import type { SGD } from "../../nn/optimizers/sgd.ts";
import type { Schedule } from "../../nn/schedules.ts";
import type { RecipeFlags } from "./flags.ts";
import { paperTop1, protocolDifferences, runBackbone } from "./paper_results.ts";
import {
  type BackboneSpec,
  describeSchedule,
  type RecipeSpec,
  type ScheduleParams,
} from "./recipe_specs.ts";
import { type ResumeState, runIdentity, type RunTarget } from "./resume.ts";
import { adapterInfo, adapterText, kernelInfo, versions } from "./run_environment.ts";
import type { OutputContext } from "./run_outputs.ts";
import { describeBackbone } from "./training_setup.ts";

/** What a training run's config.json is made from. */
export interface RunConfigInput {
  spec: RecipeSpec;
  flags: RecipeFlags;
  /** The schedule's parameters and peak learning rate (after batch scaling). */
  scheduleParams: ScheduleParams;
  lr: number;
  schedule: Schedule;
  optimizer: SGD;
  loss: Loss;
  backbone: BackboneSpec;
  model: ClassifierModel;
  /** Whether the neural-collapse metrics are computed at each evaluation. */
  neuralCollapse: boolean;
  data: DatasetInfo;
  notes: string[];
  /** Where the run writes and what it continues from. */
  target: RunTarget;
  resume: ResumeState;
}

/** The config.json record of a training run (written before its first epoch). */
export function runConfig(c: RunConfigInput): Record<string, unknown> {
  const { spec, flags, data, lr, resume } = c;
  const paramCount = c.model.weights().filter((w) => w.trainable)
    .reduce((s, w) => s + w.value.shape.reduce((a, b) => a * b, 1), 0);
  const saved = resume.savedConfig;
  return {
    recipe: spec.name,
    dataset: spec.title,
    flags: { ...flags },
    identity: runIdentity(flags, c.scheduleParams),
    effective: {
      lr,
      lrReference: spec.lrReferenceBatch
        ? `--lr ${flags.lr} for batch ${spec.lrReferenceBatch}, scaled linearly`
        : null,
      schedule: c.schedule.getConfig(),
      scheduleDescription: describeSchedule(c.scheduleParams, lr),
      optimizer: c.optimizer.getConfig(),
      loss: c.loss.getConfig(),
      backbone: describeBackbone(c.backbone),
      backboneSpec: c.backbone,
      head: flags.classifier === "etf"
        ? `fixed simplex ETF${spec.normalizeFeatures ? " (BN + L2-normalised features)" : " (BN)"}`
        : "learnable Dense",
      trainableParameters: paramCount,
      featureDim: c.model.head?.inFeatures ?? 0,
      neuralCollapse: c.neuralCollapse,
      paperTop1: paperTop1(spec.name, flags.ratio, { backbone: runBackbone(spec, flags) }) ?? null,
    },
    data: {
      key: data.key,
      dir: data.dir,
      numClasses: data.numClasses,
      trainImages: data.trainSize,
      testImages: data.testSize,
      trainCounts: data.trainCounts,
      testCounts: data.testCounts,
      inputShape: data.inputShape,
      trainAugment: data.trainAugment,
      testAugment: data.testAugment,
      groups: data.groups,
      groupings: data.groupings,
      stats: data.stats,
      sources: data.sources,
    },
    adapter: adapterInfo(),
    kernels: kernelInfo(),
    versions: versions(),
    notes: c.notes,
    createdAt: (saved?.createdAt as string | undefined) ?? new Date().toISOString(),
    resumes: [
      ...((saved?.resumes as unknown[] | undefined) ?? []),
      ...(flags.resume
        ? [{
          at: new Date().toISOString(),
          fromEpoch: resume.initialEpoch,
          ...(c.target.explicit ? { from: c.target.checkpoint } : {}),
        }]
        : []),
    ],
  };
}

/**
 * What report.md and the plots of a run are rendered with: the recipe, the data's classes and
 * counts, the adapter, `config` (config.json, with the adapter in one line), the notes, and
 * how the run's protocol differs from the paper's.
 */
export function reportContext(
  spec: RecipeSpec,
  flags: RecipeFlags,
  data: DatasetInfo,
  config: Record<string, unknown>,
  notes: string[],
): OutputContext {
  const adapter = adapterText();
  return {
    recipe: spec.name,
    title: spec.title,
    ratio: flags.ratio,
    classNames: data.classNames,
    trainCounts: data.trainCounts,
    adapter,
    config: { ...config, adapter },
    notes,
    backbone: runBackbone(spec, flags),
    protocolDifferences: protocolDifferences(spec, flags),
  };
}
