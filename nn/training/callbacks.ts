/**
 * Callbacks of `fit` (Keras-like hooks, called at epoch boundaries and at the trainer's periodic
 * statistic readbacks, never per step): the {@link Callback} interface and {@link FitContext},
 * {@link ProgressBarCallback} (steps, images/s, loss, accuracy, lr, ETA; "compiling kernels ..."
 * before the first readback), {@link JsonlLogger},
 * {@link CsvLogger} and {@link CheckpointCallback} (last + best by a monitored metric, the best
 * value surviving a resume). The NaN/Inf guard is built into `fit` itself (see fit.ts).
 * @module
 */
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
  /**
   * Steps of the current epoch when known (from the data, the option, or the previous epoch); in
   * `onEpochEnd`, the steps the epoch ran.
   */
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
   * Called at each readback of the GPU statistics (never every step: by default after the first
   * and second step of each epoch, then about every 2 s; or every `progressEvery` steps): `step`
   * is the number of steps done in this epoch; logs hold the running `loss` and `accuracy` of the
   * epoch, the `lr`, and `images_per_sec` since the previous readback of the epoch.
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
  /** Redraw interval in ms for the elapsed time and ETA between readbacks (default 1000). */
  interval?: number;
}

const LINE_CLEAR = "\r\u001b[K";

/**
 * One progress line per epoch, redrawn in place: steps done of the epoch's steps, images/s (since
 * the previous statistics readback), running loss and accuracy, learning rate and ETA. `fit` reads
 * the statistics back after the first and second step of every epoch and then about every 2 s, so
 * the line shows a step count and images/s from the first steps on; before the first readback of
 * a run it says "compiling kernels ..." (the first step compiles the GPU pipelines). At the epoch's
 * end the line is completed with the epoch's metrics (the same names as in the History: `loss`,
 * `accuracy`, `val_...`) and its duration.
 */
export class ProgressBarCallback implements Callback {
  readonly #opts: ProgressBarOptions;
  #writer: WritableStreamDefaultWriter<Uint8Array> | null = null;
  #timer: ReturnType<typeof setInterval> | undefined;
  #enc = new TextEncoder();
  #logs: Logs | null = null;
  #final: Logs | null = null;
  #step = 0;
  #epoch = 0;
  #epochs = 0;
  #steps: number | null = null;
  #start = 0;
  #seenProgress = false;
  #open = false;

  /** A progress bar drawing on `options.writable` (default stderr). */
  constructor(options: ProgressBarOptions = {}) {
    checkOptions("new ProgressBarCallback()", options, PROGRESS_KEYS);
    this.#opts = options ?? {};
  }

  #bar(): string {
    const len = this.#opts.barLength ?? 30;
    const max = this.#steps ?? Math.max(this.#step, 1);
    const filled = Math.min(len, Math.max(0, Math.floor((this.#step / Math.max(max, 1)) * len)));
    return "#".repeat(filled) + "-".repeat(len - filled);
  }

  /** The current line (without the carriage return). */
  #line(): string {
    const head = `epoch ${this.#epoch + 1}/${this.#epochs} [${this.#bar()}] ` +
      `${this.#step}/${this.#steps ?? "?"}`;
    const elapsed = Date.now() - this.#start;
    if (this.#final) {
      const l = this.#final;
      const vals = Object.entries(l)
        .filter(([k]) => k !== "lr" && k !== "images_per_sec")
        .map(([k, v]) => `${k} ${fmt(v)}`).join(" | ");
      return `${head} ${clock(elapsed)} | ${fmt(l.images_per_sec, 1)} img/s | ${vals} | ` +
        `lr ${fmt(l.lr, 5)}`;
    }
    if (!this.#seenProgress) return `${head} | compiling kernels ... ${clock(elapsed)}`;
    const l = this.#logs ?? {};
    const rate = l.images_per_sec;
    const eta = this.#steps !== null && rate > 0 && l.batch_size > 0
      ? ((this.#steps - this.#step) * l.batch_size / rate) * 1000 -
        (Date.now() - (l.time_ms ?? Date.now()))
      : NaN;
    return `${head} | ${fmt(rate, 1)} img/s | loss ${fmt(l.loss)} | accuracy ${
      fmt(l.accuracy)
    } | ` +
      `lr ${fmt(l.lr, 5)} | ETA ${clock(Math.max(eta, 0))}`;
  }

  async #draw(): Promise<void> {
    if (!this.#writer || !this.#open) return;
    try {
      await this.#writer.write(this.#enc.encode(LINE_CLEAR + this.#line()));
    } catch {
      // a closed stream: nothing to draw on
    }
  }

  /** Takes the output stream and notes the run's length. */
  onTrainBegin(ctx: FitContext): void {
    this.#writer = (this.#opts.writable ?? Deno.stderr.writable).getWriter();
    this.#seenProgress = false;
    this.#epochs = ctx.epochs;
  }

  /** Starts the epoch's line ("compiling kernels ..." before the run's first readback). */
  async onEpochBegin(epoch: number, ctx: FitContext): Promise<void> {
    this.#epoch = epoch;
    this.#epochs = ctx.epochs;
    this.#steps = ctx.stepsPerEpoch;
    this.#step = 0;
    this.#logs = null;
    this.#final = null;
    this.#start = Date.now();
    this.#open = true;
    clearInterval(this.#timer);
    const timer = setInterval(() => this.#draw(), this.#opts.interval ?? 1000);
    Deno.unrefTimer(timer);
    this.#timer = timer;
    await this.#draw();
  }

  /** Redraws the line with the readback's step, images/s, loss, accuracy and lr. */
  async onProgress(_epoch: number, step: number, logs: Logs, ctx: FitContext): Promise<void> {
    this.#seenProgress = true;
    this.#step = step;
    this.#logs = { ...logs, batch_size: ctx.batchSize, time_ms: Date.now() };
    if (ctx.stepsPerEpoch === null && this.#steps !== null && step > this.#steps) {
      this.#steps = null;
    }
    await this.#draw();
  }

  /** Completes the line with the epoch's metrics and duration, then a newline. */
  async onEpochEnd(_epoch: number, logs: Logs, ctx: FitContext): Promise<void> {
    clearInterval(this.#timer);
    this.#seenProgress = true;
    this.#final = logs;
    // fit sets the epoch's real step count before this hook.
    this.#steps = ctx.stepsPerEpoch ?? Math.max(this.#step, 1);
    this.#step = this.#steps;
    await this.#draw();
    await this.#finishLine();
  }

  async #finishLine(): Promise<void> {
    if (!this.#open) return;
    this.#open = false;
    try {
      await this.#writer?.write(this.#enc.encode("\n"));
    } catch {
      // closed
    }
  }

  /** Ends an open line (a failed epoch) and releases the stream. */
  async onTrainEnd(): Promise<void> {
    clearInterval(this.#timer);
    await this.#finishLine();
    this.#writer?.releaseLock();
    this.#writer = null;
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
