/**
 * Callbacks of `fit` (Keras-like hooks, called at epoch boundaries and at the trainer's periodic
 * statistic readbacks, never per step): the {@link Callback} interface and {@link FitContext},
 * {@link ProgressBarCallback} (images/s, loss, accuracy, lr, ETA), {@link JsonlLogger},
 * {@link CsvLogger} and {@link CheckpointCallback} (last + best by a monitored metric, the best
 * value surviving a resume). The NaN/Inf guard is built into `fit` itself (see fit.ts).
 * @module
 */
// deno-lint-ignore no-import-prefix -- library code uses full specifiers (importable by URL)
import { ProgressBar, type ProgressBarFormatter } from "jsr:@std/cli@^1.0.32/unstable-progress-bar";
import { parseSafetensorsHeader } from "../io/safetensors.ts";
import { checkChoice, checkOptions, type OptionKeys, optionKeys } from "../options.ts";
import type { Optimizer } from "../optimizers/optimizer.ts";
import type { Trainable } from "../types.ts";
import type { History, Logs } from "./history.ts";

/** What callbacks see of a running `fit`. */
export interface FitContext {
  model: Trainable;
  optimizer: Optimizer;
  /** Total epochs (the run ends after epoch `epochs - 1`). */
  epochs: number;
  initialEpoch: number;
  /** Steps of the current epoch when known (from the data, the option, or the previous epoch). */
  stepsPerEpoch: number | null;
  /** Images per step (set once the first batch is seen). */
  batchSize: number;
  /** Set to true to stop after the current epoch (like Keras' `model.stop_training`). */
  stopTraining: boolean;
  history: History;
  /** The error that ended training, seen by `onTrainEnd` (undefined on success). */
  error?: unknown;
  /**
   * Writes a full checkpoint: weights, optimizer state, `epoch` = epochs completed (resume with
   * `fit(..., {initialEpoch: epoch})`), seed, config, plus `extra` metadata (JSON).
   */
  saveCheckpoint(path: string, epoch: number, extra?: Record<string, unknown>): Promise<void>;
}

/** Hooks of a training run; every hook is optional and may be async. */
export interface Callback {
  onTrainBegin?(ctx: FitContext): void | Promise<void>;
  onEpochBegin?(epoch: number, ctx: FitContext): void | Promise<void>;
  /**
   * Called at each periodic readback of the GPU statistics (every `progressEvery` steps, not every
   * step): `step` is the number of steps done in this epoch; logs hold the running `loss`,
   * `accuracy`, `lr` and `images_per_sec`.
   */
  onProgress?(epoch: number, step: number, logs: Logs, ctx: FitContext): void | Promise<void>;
  /** After the epoch (and its validation): the epoch's logs as recorded in the history. */
  onEpochEnd?(epoch: number, logs: Logs, ctx: FitContext): void | Promise<void>;
  /** Always called last, also when training failed (`ctx.error`). */
  onTrainEnd?(logs: Logs, ctx: FitContext): void | Promise<void>;
}

function fmt(v: number | undefined, digits = 4): string {
  if (v === undefined || Number.isNaN(v)) return "-";
  if (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e5)) return v.toExponential(2);
  return v.toFixed(digits);
}

function clock(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "--:--";
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const mm = String(m).padStart(2, "0"), ss = String(sec).padStart(2, "0");
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** Options of {@link ProgressBarCallback}. */
export interface ProgressBarOptions {
  /** Where to draw (default stderr). */
  writable?: WritableStream<Uint8Array>;
  /** Bar width in characters (default 30). */
  barLength?: number;
  /** Redraw interval in ms (default 1000). */
  interval?: number;
}

/**
 * One progress bar per epoch (`@std/cli` ProgressBar): steps done, images/s, running loss and
 * accuracy, learning rate and ETA; at the epoch's end the line is completed with the validation
 * metrics and the epoch's duration.
 */
export class ProgressBarCallback implements Callback {
  #bar: ProgressBar | null = null;
  #logs: Logs = {};
  #final: Logs | null = null;
  #epoch = 0;
  #start = 0;
  readonly #opts: ProgressBarOptions;

  constructor(options: ProgressBarOptions = {}) {
    checkOptions("new ProgressBarCallback()", options, PROGRESS_KEYS);
    this.#opts = options ?? {};
  }

  #format(ctx: FitContext): (f: ProgressBarFormatter) => string {
    return (f) => {
      const head = `epoch ${this.#epoch + 1}/${ctx.epochs}`;
      const elapsed = Date.now() - this.#start;
      if (this.#final) {
        const l = this.#final;
        const vals = Object.entries(l)
          .filter(([k]) => k !== "lr" && k !== "images_per_sec")
          .map(([k, v]) => `${k} ${fmt(v)}`).join(" | ");
        return `${head} [${f.progressBar}] ${f.value}/${f.max} ${clock(elapsed)} | ` +
          `${fmt(l.images_per_sec, 1)} img/s | ${vals} | lr ${fmt(l.lr, 5)}`;
      }
      const l = this.#logs;
      const eta = f.value > 0 ? (elapsed / f.value) * (f.max - f.value) : NaN;
      return `${head} [${f.progressBar}] ${f.value}/${ctx.stepsPerEpoch ?? "?"} | ` +
        `${fmt(l.images_per_sec, 1)} img/s | loss ${fmt(l.loss)} | acc ${fmt(l.accuracy)} | ` +
        `lr ${fmt(l.lr, 5)} | ETA ${clock(eta)}`;
    };
  }

  onEpochBegin(epoch: number, ctx: FitContext): void {
    this.#epoch = epoch;
    this.#logs = {};
    this.#final = null;
    this.#start = Date.now();
    this.#bar = new ProgressBar({
      max: Math.max(1, ctx.stepsPerEpoch ?? 1),
      writable: this.#opts.writable,
      barLength: this.#opts.barLength ?? 30,
      interval: this.#opts.interval ?? 1000,
      formatter: this.#format(ctx),
    });
  }

  onProgress(_epoch: number, step: number, logs: Logs, ctx: FitContext): void {
    this.#logs = logs;
    if (!this.#bar) return;
    if (ctx.stepsPerEpoch === null && step >= this.#bar.max) this.#bar.max = step + 1;
    this.#bar.value = step;
  }

  async onEpochEnd(_epoch: number, logs: Logs, ctx: FitContext): Promise<void> {
    if (!this.#bar) return;
    this.#final = logs;
    // Known epoch length: the bar is already sized; unknown: what was counted (at least 1).
    if (ctx.stepsPerEpoch === null) this.#bar.max = Math.max(this.#bar.value, 1);
    this.#bar.value = this.#bar.max;
    await this.#bar.stop();
    this.#bar = null;
  }

  async onTrainEnd(): Promise<void> {
    if (this.#bar) await this.#bar.stop();
    this.#bar = null;
  }
}

/** Options of the file loggers. */
export interface LoggerOptions {
  /**
   * Append to an existing file instead of starting a new one. Default: append when resuming
   * (`initialEpoch > 0`), truncate otherwise.
   */
  append?: boolean;
}

const PROGRESS_KEYS: OptionKeys = optionKeys<ProgressBarOptions>({
  writable: true,
  barLength: true,
  interval: true,
});
const LOGGER_KEYS: OptionKeys = optionKeys<LoggerOptions>({ append: true });
const CHECKPOINT_KEYS: OptionKeys = optionKeys<CheckpointOptions>({
  dir: true,
  monitor: true,
  mode: true,
  saveLast: true,
  saveBest: true,
});

/** Writes one JSON object per epoch ({epoch, ...logs, time}) to a `.jsonl` file. */
export class JsonlLogger implements Callback {
  #t0 = 0;
  constructor(readonly path: string, readonly options: LoggerOptions = {}) {
    checkOptions("new JsonlLogger()", options, LOGGER_KEYS);
  }

  async onTrainBegin(ctx: FitContext): Promise<void> {
    this.#t0 = Date.now();
    if (!(this.options.append ?? ctx.initialEpoch > 0)) await Deno.writeTextFile(this.path, "");
  }

  async onEpochEnd(epoch: number, logs: Logs): Promise<void> {
    const rec = { epoch, ...logs, time: (Date.now() - this.#t0) / 1000 };
    const line = JSON.stringify(
      rec,
      (_k, v) => typeof v === "number" && !Number.isFinite(v) ? null : v,
    );
    await Deno.writeTextFile(this.path, line + "\n", { append: true });
  }
}

/**
 * Writes one CSV row per epoch (Keras' CSVLogger): `epoch` then the metrics in the order first
 * seen; a header is written when the file is new or empty.
 */
export class CsvLogger implements Callback {
  #keys: string[] | null = null;
  constructor(readonly path: string, readonly options: LoggerOptions = {}) {
    checkOptions("new CsvLogger()", options, LOGGER_KEYS);
  }

  async onTrainBegin(ctx: FitContext): Promise<void> {
    this.#keys = null;
    const append = this.options.append ?? ctx.initialEpoch > 0;
    if (!append) await Deno.writeTextFile(this.path, "");
    else {
      try {
        const text = await Deno.readTextFile(this.path);
        const header = text.split("\n")[0];
        if (header) this.#keys = header.split(",").slice(1);
      } catch {
        // no file yet: a header is written with the first row
      }
    }
  }

  async onEpochEnd(epoch: number, logs: Logs): Promise<void> {
    let head = "";
    if (!this.#keys) {
      this.#keys = Object.keys(logs);
      head = ["epoch", ...this.#keys].join(",") + "\n";
    }
    const row = [String(epoch), ...this.#keys.map((k) => k in logs ? String(logs[k]) : "")];
    await Deno.writeTextFile(this.path, head + row.join(",") + "\n", { append: true });
  }
}

/** Options of {@link CheckpointCallback}. */
export interface CheckpointOptions {
  /** Directory of `last.safetensors` and `best.safetensors` (created if missing). */
  dir: string;
  /** Metric that picks the best checkpoint (default "val_accuracy"). */
  monitor?: string;
  /** "max", "min", or "auto" (min for names containing "loss", else max). Default "auto". */
  mode?: "max" | "min" | "auto";
  /** Write `last.safetensors` after every epoch (default true). */
  saveLast?: boolean;
  /** Write `best.safetensors` when the monitored metric improves (default true). */
  saveBest?: boolean;
}

/**
 * Saves `last.safetensors` after each epoch and `best.safetensors` when the monitored metric
 * improves (atomically; the best value is kept in the file's metadata, so a resumed run only
 * replaces the best checkpoint with a better one).
 */
export class CheckpointCallback implements Callback {
  readonly dir: string;
  readonly monitor: string;
  readonly mode: "max" | "min";
  readonly saveLast: boolean;
  readonly saveBest: boolean;
  /** Best monitored value so far (NaN before any). */
  best = NaN;
  /** Epoch (0-based) of the best value. */
  bestEpoch = -1;
  #warned = false;

  constructor(options: CheckpointOptions) {
    checkOptions("new CheckpointCallback()", options, CHECKPOINT_KEYS, { required: ["dir"] });
    this.dir = options.dir;
    this.monitor = options.monitor ?? "val_accuracy";
    const mode = checkChoice(
      "new CheckpointCallback()",
      "mode",
      options.mode ?? "auto",
      [
        "auto",
        "min",
        "max",
      ] as const,
    );
    this.mode = mode === "auto" ? (this.monitor.includes("loss") ? "min" : "max") : mode;
    this.saveLast = options.saveLast ?? true;
    this.saveBest = options.saveBest ?? true;
  }

  /** Path of the last-epoch checkpoint. */
  get lastPath(): string {
    return `${this.dir}/last.safetensors`;
  }

  /** Path of the best checkpoint. */
  get bestPath(): string {
    return `${this.dir}/best.safetensors`;
  }

  async onTrainBegin(ctx: FitContext): Promise<void> {
    await Deno.mkdir(this.dir, { recursive: true });
    this.best = NaN;
    this.bestEpoch = -1;
    if (ctx.initialEpoch === 0 || !this.saveBest) return;
    try {
      const meta = parseSafetensorsHeader(await Deno.readFile(this.bestPath)).metadata;
      const extra = JSON.parse(meta.extra ?? "{}");
      if (extra.monitor === this.monitor && typeof extra.best === "number") {
        this.best = extra.best;
        this.bestEpoch = extra.bestEpoch ?? -1;
      }
    } catch {
      // no earlier best checkpoint
    }
  }

  #better(v: number): boolean {
    if (!Number.isFinite(v)) return false;
    if (Number.isNaN(this.best)) return true;
    return this.mode === "max" ? v > this.best : v < this.best;
  }

  async onEpochEnd(epoch: number, logs: Logs, ctx: FitContext): Promise<void> {
    const v = logs[this.monitor];
    if (this.saveBest) {
      if (v === undefined) {
        if (!this.#warned) {
          console.warn(
            `collapse: CheckpointCallback: metric '${this.monitor}' is not logged ` +
              `(have: ${Object.keys(logs).join(", ")}); no best checkpoint is kept`,
          );
          this.#warned = true;
        }
      } else if (this.#better(v)) {
        this.best = v;
        this.bestEpoch = epoch;
        await ctx.saveCheckpoint(this.bestPath, epoch + 1, {
          monitor: this.monitor,
          best: v,
          bestEpoch: epoch,
          logs,
        });
      }
    }
    if (this.saveLast) {
      await ctx.saveCheckpoint(this.lastPath, epoch + 1, {
        monitor: this.monitor,
        best: this.best,
        bestEpoch: this.bestEpoch,
        logs,
      });
    }
  }
}
