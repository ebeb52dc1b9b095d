/**
 * The Keras callbacks a Keras user reaches for, with Keras' options and semantics:
 * {@link EarlyStopping}, {@link ReduceLROnPlateau}, {@link LearningRateScheduler},
 * {@link ModelCheckpoint} (every epoch or the best by a monitored value; weights only or a full,
 * resumable checkpoint) and {@link TerminateOnNaN}. Monitored values are the epoch logs (`loss`,
 * `accuracy`, `val_loss`, `val_accuracy`, `val_top5_accuracy`, ...); "auto" mode minimises names
 * containing "loss" and maximises the others. A monitored name that is not logged is an error at
 * the end of the first epoch, naming the logged ones.
 * @module
 */
import { readAll, writeTensor } from "../../gpu/tensor.ts";
import { saveCheckpoint } from "../checkpoint.ts";
import { checkChoice, checkOptions, type OptionKeys, optionKeys } from "../options.ts";
import type { Schedule } from "../schedules.ts";
import type { Callback, FitContext } from "./callbacks.ts";
import type { History, Logs } from "./history.ts";

/** How a monitored value improves: "min", "max", or "auto" (min for names with "loss"). */
export type MonitorMode = "auto" | "min" | "max";

const MODES = ["auto", "min", "max"] as const;

/** The best value of a monitored log entry, and whether a new value improves on it. */
export class MonitoredValue {
  /** "min" or "max" ("auto" resolved by the name). */
  readonly mode: "min" | "max";
  /** The best value so far (+-Infinity before any). */
  best: number;

  /** `where` names the callback in errors; improvements must exceed `minDelta`. */
  constructor(
    readonly where: string,
    readonly monitor: string,
    mode: MonitorMode,
    readonly minDelta: number,
  ) {
    if (typeof monitor !== "string" || !monitor) {
      throw new Error(`collapse: ${where}: monitor must be a log name such as "val_loss"`);
    }
    const m = checkChoice(where, "mode", mode, MODES);
    this.mode = m === "auto" ? (monitor.includes("loss") ? "min" : "max") : m;
    if (!(minDelta >= 0)) throw new Error(`collapse: ${where}: minDelta must be >= 0`);
    this.best = this.mode === "min" ? Infinity : -Infinity;
  }

  /** Forgets the best value (or starts from `baseline`). */
  reset(baseline?: number | null): void {
    this.best = baseline ?? (this.mode === "min" ? Infinity : -Infinity);
  }

  /** The monitored value of `logs`; throws naming the logged values when it is absent. */
  value(logs: Logs): number {
    const v = logs[this.monitor];
    if (v === undefined) {
      throw new Error(
        `collapse: ${this.where}: '${this.monitor}' is not logged (logged: ${
          Object.keys(logs).join(", ")
        }); validation values need validationData or validationSplit`,
      );
    }
    return v;
  }

  /** Whether `v` beats the best by more than minDelta. */
  improves(v: number): boolean {
    if (!Number.isFinite(v)) return false;
    return this.mode === "min" ? v < this.best - this.minDelta : v > this.best + this.minDelta;
  }
}

function say(verbose: number, line: string): void {
  if (verbose > 0) console.log(line);
}

/**
 * Base of the callbacks that watch one logged value (EarlyStopping, ReduceLROnPlateau,
 * ModelCheckpoint): its name, its mode and the best value so far.
 */
export abstract class MonitorCallback {
  /** The watched value and its best so far. */
  protected readonly watch: MonitoredValue;

  /** Watches `monitor` in `mode`; improvements must exceed `minDelta`. */
  constructor(where: string, monitor: string, mode: MonitorMode, minDelta: number) {
    this.watch = new MonitoredValue(where, monitor, mode, minDelta);
  }

  /** The monitored log name. */
  get monitor(): string {
    return this.watch.monitor;
  }

  /** The best monitored value so far. */
  get best(): number {
    return this.watch.best;
  }
}

/** Options of {@link EarlyStopping}. */
export interface EarlyStoppingOptions {
  /** The value watched (default "val_loss"). */
  monitor?: string;
  /** The smallest change that counts as an improvement (default 0). */
  minDelta?: number;
  /** Epochs without improvement before stopping (default 0). */
  patience?: number;
  /** "auto" (default), "min" or "max". */
  mode?: MonitorMode;
  /** A value the monitored one must beat to count as improving (default none). */
  baseline?: number | null;
  /** When stopping, restore the weights of the best epoch (default false). */
  restoreBestWeights?: boolean;
  /** Epochs to wait before watching (default 0). */
  startFromEpoch?: number;
  /** 1: print a line when training stops (default 0). */
  verbose?: 0 | 1;
}

const EARLY_KEYS: OptionKeys = optionKeys<EarlyStoppingOptions>({
  monitor: true,
  minDelta: true,
  patience: true,
  mode: true,
  baseline: true,
  restoreBestWeights: true,
  startFromEpoch: true,
  verbose: true,
});

function nonNegativeInt(where: string, what: string, v: number): number {
  if (!(Number.isInteger(v) && v >= 0)) {
    throw new Error(`collapse: ${where}: ${what} must be an integer >= 0, got ${v}`);
  }
  return v;
}

/**
 * Stops training when the monitored value has not improved for `patience` epochs (Keras'
 * `EarlyStopping`), optionally restoring the weights of the best epoch.
 *
 * @example
 * ```ts ignore
 * await model.fit(x, y, {
 *   epochs: 100,
 *   validationSplit: 0.2,
 *   callbacks: [new EarlyStopping({ monitor: "val_loss", patience: 3, restoreBestWeights: true })],
 * });
 * ```
 */
export class EarlyStopping extends MonitorCallback {
  /** Epochs without improvement before stopping. */
  readonly patience: number;
  /** The value to beat first (null: none). */
  readonly baseline: number | null;
  /** Whether stopping restores the best epoch's weights. */
  readonly restoreBestWeights: boolean;
  /** The first epoch watched. */
  readonly startFromEpoch: number;
  /** 1: print when stopping. */
  readonly verbose: number;
  /** The 0-based epoch after which training stopped (-1: it did not stop early). */
  stoppedEpoch: number = -1;
  /** The 0-based epoch of the best value (-1 before any). */
  bestEpoch: number = -1;
  #wait = 0;
  #bestWeights: ArrayBufferView[] | null = null;

  /** Watches `monitor` (default "val_loss") with Keras' options; unknown keys are an error. */
  constructor(options: EarlyStoppingOptions = {}) {
    const where = "new EarlyStopping()";
    checkOptions(where, options, EARLY_KEYS);
    options ??= {};
    super(
      "EarlyStopping",
      options.monitor ?? "val_loss",
      options.mode ?? "auto",
      options.minDelta ?? 0,
    );
    this.patience = nonNegativeInt(where, "patience", options.patience ?? 0);
    this.startFromEpoch = nonNegativeInt(where, "startFromEpoch", options.startFromEpoch ?? 0);
    this.baseline = options.baseline ?? null;
    this.restoreBestWeights = options.restoreBestWeights ?? false;
    this.verbose = options.verbose ?? 0;
  }

  /** Resets the state for a new run. */
  onTrainBegin(): void {
    this.#wait = 0;
    this.stoppedEpoch = -1;
    this.bestEpoch = -1;
    this.#bestWeights = null;
    this.watch.reset(this.baseline);
  }

  /** Compares the epoch's value with the best; stops (and restores weights) after `patience`. */
  async onEpochEnd(epoch: number, logs: Logs, ctx: FitContext): Promise<void> {
    const v = this.watch.value(logs);
    if (epoch < this.startFromEpoch) return;
    this.#wait++;
    if (this.watch.improves(v)) {
      this.watch.best = v;
      this.bestEpoch = epoch;
      this.#wait = 0;
      if (this.restoreBestWeights) {
        this.#bestWeights = await readAll(ctx.model.weights().map((w) => w.value));
      }
      return;
    }
    if (this.#wait >= this.patience && epoch > 0) {
      this.stoppedEpoch = epoch;
      ctx.stopTraining = true;
      if (this.restoreBestWeights && this.#bestWeights) {
        const saved = this.#bestWeights;
        ctx.model.weights().forEach((w, i) => writeTensor(w.value, saved[i] as Float32Array));
      }
      say(
        this.verbose,
        `EarlyStopping: stopped after epoch ${epoch + 1}: ${this.monitor} did not improve on ` +
          `${this.best.toPrecision(5)} (epoch ${this.bestEpoch + 1}) for ${this.#wait} epochs` +
          (this.restoreBestWeights && this.#bestWeights ? "; best weights restored" : ""),
      );
    }
  }
}

/** Options of {@link ReduceLROnPlateau}. */
export interface ReduceLROnPlateauOptions {
  /** The value watched (default "val_loss"). */
  monitor?: string;
  /** Factor of each reduction, in (0, 1) (default 0.1). */
  factor?: number;
  /** Epochs without improvement before a reduction (default 10). */
  patience?: number;
  /** "auto" (default), "min" or "max". */
  mode?: MonitorMode;
  /** The smallest change that counts as an improvement (default 1e-4). */
  minDelta?: number;
  /** Epochs to wait after a reduction before watching again (default 0). */
  cooldown?: number;
  /** Lower bound of the learning rate (default 0). */
  minLr?: number;
  /** 1: print a line at each reduction (default 0). */
  verbose?: 0 | 1;
}

const PLATEAU_KEYS: OptionKeys = optionKeys<ReduceLROnPlateauOptions>({
  monitor: true,
  factor: true,
  patience: true,
  mode: true,
  minDelta: true,
  cooldown: true,
  minLr: true,
  verbose: true,
});

/**
 * Multiplies the learning rate by `factor` when the monitored value has stopped improving for
 * `patience` epochs (Keras' `ReduceLROnPlateau`), down to `minLr`. It scales the optimizer's
 * schedule (`optimizer.lrScale`), so a warmup or decay schedule keeps its shape.
 */
export class ReduceLROnPlateau extends MonitorCallback {
  /** Factor of each reduction. */
  readonly factor: number;
  /** Epochs without improvement before a reduction. */
  readonly patience: number;
  /** Epochs not watched after a reduction. */
  readonly cooldown: number;
  /** Lower bound of the learning rate. */
  readonly minLr: number;
  /** 1: print each reduction. */
  readonly verbose: number;
  /** Reductions made in the current run. */
  reductions: number = 0;
  #wait = 0;
  #cooldown = 0;

  /** Watches `monitor` (default "val_loss") with Keras' options; unknown keys are an error. */
  constructor(options: ReduceLROnPlateauOptions = {}) {
    const where = "new ReduceLROnPlateau()";
    checkOptions(where, options, PLATEAU_KEYS);
    options ??= {};
    super(
      "ReduceLROnPlateau",
      options.monitor ?? "val_loss",
      options.mode ?? "auto",
      options.minDelta ?? 1e-4,
    );
    this.factor = options.factor ?? 0.1;
    if (!(this.factor > 0 && this.factor < 1)) {
      throw new Error(`collapse: ${where}: factor must be in (0, 1), got ${this.factor}`);
    }
    this.patience = nonNegativeInt(where, "patience", options.patience ?? 10);
    this.cooldown = nonNegativeInt(where, "cooldown", options.cooldown ?? 0);
    this.minLr = options.minLr ?? 0;
    if (!(this.minLr >= 0)) throw new Error(`collapse: ${where}: minLr must be >= 0`);
    this.verbose = options.verbose ?? 0;
  }

  /** Resets the state for a new run. */
  onTrainBegin(): void {
    this.#wait = 0;
    this.#cooldown = 0;
    this.reductions = 0;
    this.watch.reset();
  }

  /** Lowers the learning rate after `patience` epochs without improvement. */
  onEpochEnd(epoch: number, logs: Logs, ctx: FitContext): void {
    const v = this.watch.value(logs);
    if (this.#cooldown > 0) {
      this.#cooldown--;
      this.#wait = 0;
    }
    if (this.watch.improves(v)) {
      this.watch.best = v;
      this.#wait = 0;
      return;
    }
    if (this.#cooldown > 0) return;
    this.#wait++;
    if (this.#wait < this.patience) return;
    const opt = ctx.optimizer;
    const old = Number.isFinite(opt.learningRate) ? opt.learningRate : logs.lr;
    if (old > this.minLr && old > 0) {
      const next = Math.max(old * this.factor, this.minLr);
      opt.lrScale *= next / old;
      this.reductions++;
      say(
        this.verbose,
        `ReduceLROnPlateau: epoch ${epoch + 1}: learning rate ${old.toPrecision(4)} -> ${
          next.toPrecision(4)
        }`,
      );
    }
    this.#cooldown = this.cooldown;
    this.#wait = 0;
  }
}

/** Options of {@link LearningRateScheduler}. */
export interface LearningRateSchedulerOptions {
  /** 1: print the learning rate of every epoch (default 0). */
  verbose?: 0 | 1;
}

const SCHEDULER_KEYS: OptionKeys = optionKeys<LearningRateSchedulerOptions>({ verbose: true });

/**
 * Sets the learning rate of every epoch from `schedule(epoch, lr)` (0-based epoch, the current
 * learning rate), as Keras' `LearningRateScheduler`; the optimizer's own schedule is set aside for
 * the run and put back when it ends.
 */
export class LearningRateScheduler implements Callback {
  /** (0-based epoch, current learning rate) => the epoch's learning rate. */
  readonly schedule: (epoch: number, lr: number) => number;
  /** 1: print every epoch's learning rate. */
  readonly verbose: number;
  #saved: Schedule | null = null;
  #lr = NaN;

  /** Sets each epoch's learning rate from `schedule(epoch, lr)`. */
  constructor(
    schedule: (epoch: number, lr: number) => number,
    options: LearningRateSchedulerOptions = {},
  ) {
    if (typeof schedule !== "function") {
      throw new Error(
        "collapse: new LearningRateScheduler(): the first argument is a function (epoch, lr) => lr",
      );
    }
    checkOptions("new LearningRateScheduler()", options, SCHEDULER_KEYS);
    this.schedule = schedule;
    this.verbose = options?.verbose ?? 0;
  }

  /** Sets the optimizer's schedule aside for the run. */
  onTrainBegin(ctx: FitContext): void {
    const opt = ctx.optimizer;
    this.#saved = opt.schedule;
    const saved = this.#saved;
    this.#lr = saved.lr(ctx.initialEpoch, 0) * opt.lrScale;
    opt.schedule = {
      lr: () => this.#lr / opt.lrScale,
      getConfig: () => ({ kind: "learning_rate_scheduler", replaces: saved.getConfig() }),
    };
  }

  /** Computes the epoch's learning rate. */
  onEpochBegin(epoch: number): void {
    const lr = this.schedule(epoch, this.#lr);
    if (typeof lr !== "number" || !(Number.isFinite(lr) && lr >= 0)) {
      throw new Error(
        `collapse: LearningRateScheduler: the schedule returned ${lr} for epoch ${epoch}`,
      );
    }
    this.#lr = lr;
    say(this.verbose, `LearningRateScheduler: epoch ${epoch + 1}: learning rate ${lr}`);
  }

  /** Puts the optimizer's schedule back. */
  onTrainEnd(_logs: Logs, ctx: FitContext): void {
    if (this.#saved) ctx.optimizer.schedule = this.#saved;
    this.#saved = null;
  }
}

/** Options of {@link ModelCheckpoint}. */
export interface ModelCheckpointOptions {
  /** The value that picks the best epoch (default "val_loss"). */
  monitor?: string;
  /** "auto" (default), "min" or "max". */
  mode?: MonitorMode;
  /** Save only when the monitored value improves (default false: every epoch). */
  saveBestOnly?: boolean;
  /**
   * Weights only (as `model.saveWeights`; default false: a full checkpoint with the optimizer
   * state and the epoch, which `loadCheckpoint` resumes from).
   */
  saveWeightsOnly?: boolean;
  /** 1: print a line at each save (default 0). */
  verbose?: 0 | 1;
}

const CHECKPOINT_KEYS: OptionKeys = optionKeys<ModelCheckpointOptions>({
  monitor: true,
  mode: true,
  saveBestOnly: true,
  saveWeightsOnly: true,
  verbose: true,
});

/**
 * Fills `{epoch}` (1-based, as Keras), `{epoch:03d}` and `{name}` / `{name:.4f}` of any log value
 * into a checkpoint path.
 */
export function formatCheckpointPath(template: string, epoch: number, logs: Logs): string {
  return template.replace(/\{([A-Za-z0-9_]+)(?::([^}]*))?\}/g, (whole, key: string, spec) => {
    const v = key === "epoch" ? epoch + 1 : logs[key];
    if (v === undefined) {
      throw new Error(
        `collapse: ModelCheckpoint: '${whole}' in the path names no logged value (logged: epoch, ${
          Object.keys(logs).join(", ")
        })`,
      );
    }
    const m = /^(0?)(\d*)(?:\.(\d+))?([df])?$/.exec(spec ?? "");
    if (!spec || !m) return String(v);
    const digits = m[3] !== undefined ? Number(m[3]) : undefined;
    const text = m[4] === "d"
      ? String(Math.round(v))
      : digits !== undefined
      ? v.toFixed(digits)
      : String(v);
    return m[2] ? text.padStart(Number(m[2]), m[1] ? "0" : " ") : text;
  });
}

/**
 * Saves the model after every epoch, or only when the monitored value improves (Keras'
 * `ModelCheckpoint`); the path may hold `{epoch:02d}` and log values such as `{val_loss:.3f}`.
 */
export class ModelCheckpoint extends MonitorCallback {
  /** The path template ({epoch:02d}, {val_loss:.3f}, ...). */
  readonly filepath: string;
  /** Save only on improvement of the monitored value. */
  readonly saveBestOnly: boolean;
  /** Weights only (else a full, resumable checkpoint). */
  readonly saveWeightsOnly: boolean;
  /** 1: print each save. */
  readonly verbose: number;
  /** Paths written in the current run, in order. */
  readonly saved: string[] = [];

  /** Saves to `filepath` (a template) after every epoch or on improvement. */
  constructor(filepath: string, options: ModelCheckpointOptions = {}) {
    if (typeof filepath !== "string" || !filepath) {
      throw new Error("collapse: new ModelCheckpoint(): the first argument is the file path");
    }
    checkOptions("new ModelCheckpoint()", options, CHECKPOINT_KEYS);
    options ??= {};
    super("ModelCheckpoint", options.monitor ?? "val_loss", options.mode ?? "auto", 0);
    this.filepath = filepath;
    this.saveBestOnly = options.saveBestOnly ?? false;
    this.saveWeightsOnly = options.saveWeightsOnly ?? false;
    this.verbose = options.verbose ?? 0;
  }

  /** Resets the state for a new run. */
  onTrainBegin(): void {
    this.saved.length = 0;
    this.watch.reset();
  }

  /** Writes the epoch's file (on improvement only with `saveBestOnly`). */
  async onEpochEnd(epoch: number, logs: Logs, ctx: FitContext): Promise<void> {
    if (this.saveBestOnly) {
      const v = this.watch.value(logs);
      if (!this.watch.improves(v)) return;
      this.watch.best = v;
    }
    const path = formatCheckpointPath(this.filepath, epoch, logs);
    const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : "";
    if (dir) await Deno.mkdir(dir, { recursive: true });
    const extra = { monitor: this.monitor, best: this.best, logs };
    if (this.saveWeightsOnly) {
      await saveCheckpoint(path, ctx.model, { epoch: epoch + 1, extra });
    } else await ctx.saveCheckpoint(path, epoch + 1, extra);
    this.saved.push(path);
    say(this.verbose, `ModelCheckpoint: epoch ${epoch + 1}: saved ${path}`);
  }
}

/**
 * Stops training cleanly on a NaN/Inf loss (Keras' `TerminateOnNaN`): `fit` then returns the
 * history so far instead of throwing its NaN guard's error (which names the epoch and step). The
 * weights are those of the failed step.
 */
export class TerminateOnNaN implements Callback {
  /** The NaN guard's error that ended the run, if any. */
  terminatedBy: unknown = null;
  /** The history of the run (set when training begins). */
  history: History | null = null;

  /** Keeps the run's history. */
  onTrainBegin(ctx: FitContext): void {
    this.terminatedBy = null;
    this.history = ctx.history;
  }

  /** Stops after an epoch whose loss is not finite. */
  onEpochEnd(epoch: number, logs: Logs, ctx: FitContext): void {
    if (!Number.isFinite(logs.loss)) {
      console.log(`TerminateOnNaN: epoch ${epoch + 1}: invalid loss ${logs.loss}, stopping`);
      ctx.stopTraining = true;
    }
  }

  /** Takes the NaN guard's error as the end of the run. */
  onTrainEnd(_logs: Logs, ctx: FitContext): void {
    const e = ctx.error as Error | undefined;
    if (e?.name === "NonFiniteLossError") {
      this.terminatedBy = e;
      console.log(`TerminateOnNaN: ${e.message.replace(/^collapse: fit: /, "")}; stopping`);
    }
  }
}
