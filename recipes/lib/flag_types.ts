/**
 * The types of the recipes' command line: the settings every recipe takes
 * ({@linkcode RecipeFlags}), recipe-specific flags ({@linkcode ExtraFlag}) and the outcome of
 * parsing ({@linkcode ParseResult}).
 *
 * @module
 */

/** Classifier head: the fixed simplex ETF or a learnable Dense layer. */
export type ClassifierFlag = "etf" | "learnable";
/**
 * Loss: dot-regression, softmax cross-entropy, or a long-tail baseline: cross-entropy with
 * "balanced" class weights, balanced softmax, LDAM with deferred re-weighting.
 */
export type LossFlag = "dr" | "ce" | "ce-weighted" | "balanced-softmax" | "ldam-drw";

/** Every {@linkcode LossFlag}, as spelled on the command line. */
export const LOSS_FLAGS: readonly LossFlag[] = [
  "dr",
  "ce",
  "ce-weighted",
  "balanced-softmax",
  "ldam-drw",
];
/** Batch sampler, as spelled on the command line. */
export type SamplerFlag = "instance" | "class-balanced" | "sqrt" | "progressive";

/** Every recipe's settings, after parsing. */
export interface RecipeFlags {
  /** Folder with the downloaded archives / shards. */
  dataDir: string;
  /** Output folder of the run (config, metrics, checkpoints, plots, report). */
  out: string;
  /** Long-tail imbalance ratio r = n_min / n_max, in (0, 1]. */
  ratio: number;
  /** Training epochs. */
  epochs: number;
  /** Batch size. */
  batchSize: number;
  /** Peak learning rate. */
  lr: number;
  /** Weight decay of every trainable parameter. */
  weightDecay: number;
  /** Classifier head. */
  classifier: ClassifierFlag;
  /** Training loss. */
  loss: LossFlag;
  /** Mixup alpha; 0 turns mixup off. */
  mixup: number;
  /** Batch sampler. */
  sampler: SamplerFlag;
  /** Random seed (weights, ETF, data order, mixup). */
  seed: number;
  /** Resume from a checkpoint: `resumeFrom`, or the last checkpoint in `out`. */
  resume: boolean;
  /** `--resume PATH`: the checkpoint file or run folder to resume from. */
  resumeFrom?: string;
  /** `--extend`: with `--resume`, allow a larger `--epochs` than the run was started with. */
  extend?: boolean;
  /** `--eval-only CHECKPOINT`: evaluate this checkpoint on the test split; no training. */
  evalOnly?: string;
  /** `--print-config`: print the resolved settings as JSON and exit 0. */
  printConfig?: boolean;
  /** Warmup epochs; undefined: the recipe's default for `epochs`. */
  warmupEpochs?: number;
  /** Epochs after which the lr is multiplied by 0.1; undefined: the recipe's default. */
  milestones?: number[];
  /** Evaluate on the test set every this many epochs (and always at the last). */
  evalEvery: number;
  /** Cap on images per split (for quick runs); undefined = all. */
  limit?: number;
  /** Data-loading workers: 0 = in the main thread, 1 = one prefetching worker. */
  workers: 0 | 1;
  /** Recipe-specific extra flags, by name (see {@linkcode ExtraFlag}). */
  extra: Record<string, string | number | boolean | undefined>;
}

/** A recipe's defaults: every flag's value when it is not given. */
export type RecipeDefaults = Omit<RecipeFlags, "extra">;

/** A recipe-specific flag beyond the shared set (e.g. `cub.ts --pretrained FILE`). */
export interface ExtraFlag {
  /** Flag name without dashes, kebab-case (e.g. `"pretrained"`). */
  name: string;
  /** Value type; a boolean flag also has its `--no-` form. */
  type: "string" | "number" | "boolean";
  /** One line for the usage text. */
  help: string;
  /** Value when the flag is not given. */
  default?: string | number | boolean;
  /** A string flag's allowed values (others are refused like a bad value). */
  choices?: readonly string[];
}

/** Optional parts of the usage text and recipe-specific flags. */
export interface RecipeCliOptions {
  /** One paragraph shown under the usage line. */
  description?: string;
  /** Recipe-specific flags. */
  extra?: ExtraFlag[];
  /** Paragraphs shown after the flags (e.g. the learning-rate schedule). */
  notes?: string[];
  /**
   * Reads the `--config` file (default `Deno.readTextFileSync`); tests pass their own. The only
   * side effect of parsing.
   */
  readFile?: (path: string) => string;
}

/** The outcome of {@linkcode parseRecipeFlags}. */
export type ParseResult =
  | {
    ok: true;
    flags: RecipeFlags;
    /**
     * Keys of {@linkcode RecipeFlags} given on the command line or in `--config` (`extra.NAME`
     * for extras), and `"config"` when `--config` was.
     */
    given: string[];
  }
  | { ok: false; message: string; exitCode: 0 | 2 };
