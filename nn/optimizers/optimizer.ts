/**
 * The optimizer contract of the trainer: an optimizer owns a learning-rate schedule and the GPU
 * learning-rate tensor f32[1] (written by the host once per step, before the step runs, never a
 * uniform), binds to a {@link ParamArena} (all trainable parameters in one flat buffer), updates it
 * with one dispatch per step (capturable), decides per parameter whether weight decay applies, and
 * saves/restores its state per parameter name (independent of the arena layout).
 * @module
 */
import { keep } from "../../gpu/scope.ts";
import type { ParamArena } from "../../gpu/param_arena.ts";
import { readAll, type Tensor, tensor, writeTensor } from "../../gpu/tensor.ts";
import { ConstantSchedule, type Schedule } from "../schedules.ts";
import { type OptionKeys, optionKeys } from "../options.ts";
import type { Weight } from "../types.ts";

/** One saved state array: a per-parameter slice or a scalar. */
export interface OptimizerStateEntry {
  shape: number[];
  data: Float32Array | Int32Array;
}

/** Options common to every optimizer. */
export interface OptimizerOptions {
  /**
   * A fixed learning rate or a schedule (evaluated once per step). Default: the optimizer's own
   * (Keras': SGD 0.01, AdamW 1e-3).
   */
  learningRate?: number | Schedule;
  /** Weight decay coefficient (coupled L2 for SGD, decoupled for AdamW). */
  weightDecay?: number;
  /**
   * Parameters excluded from weight decay by name (exact names, or a RegExp tested on the dotted
   * name), on top of each weight's own `decay` flag.
   */
  excludeFromWeightDecay?: string[] | RegExp;
}

/** The allowed keys of {@link OptimizerOptions}. */
export const OPTIMIZER_OPTION_KEYS: OptionKeys = optionKeys<OptimizerOptions>({
  learningRate: true,
  weightDecay: true,
  excludeFromWeightDecay: true,
});

/** Base class: learning rate tensor, schedule, decay selection, state save/restore. */
export abstract class Optimizer {
  /** Kind used in configs and checkpoints ("sgd", "adamw"). */
  abstract readonly kind: string;
  /**
   * The learning-rate schedule, evaluated once per step. Callbacks may replace it for a run
   * (`LearningRateScheduler`).
   */
  schedule: Schedule;
  /**
   * A factor on the schedule's learning rate (default 1), lowered by `ReduceLROnPlateau`. Not
   * saved in checkpoints.
   */
  lrScale = 1;
  readonly weightDecay: number;
  readonly #exclude: string[] | RegExp | undefined;
  #arena: ParamArena | null = null;
  #lr: Tensor | null = null;
  #lrValue = NaN;
  #pending: Record<string, OptimizerStateEntry> | null = null;

  /** `defaultLr` is the learning rate when the options give none. */
  constructor(options: OptimizerOptions, defaultLr: number) {
    const lr = options.learningRate ?? defaultLr;
    if (typeof lr === "number" && !(Number.isFinite(lr) && lr >= 0)) {
      throw new Error(`collapse: ${this.constructor.name}: invalid learningRate ${lr}`);
    }
    if (typeof lr !== "number" && typeof (lr as Schedule)?.lr !== "function") {
      throw new Error(
        `collapse: ${this.constructor.name}: learningRate must be a number or a Schedule, got ${
          JSON.stringify(lr)
        }`,
      );
    }
    this.schedule = typeof lr === "number" ? new ConstantSchedule(lr) : lr;
    this.weightDecay = options.weightDecay ?? 0;
    if (!(Number.isFinite(this.weightDecay) && this.weightDecay >= 0)) {
      throw new Error(
        `collapse: ${this.constructor.name}: invalid weightDecay ${options.weightDecay}`,
      );
    }
    this.#exclude = options.excludeFromWeightDecay;
  }

  /** Whether weight decay applies to `w` (its own flag and the exclusion option). */
  decays(w: Weight): boolean {
    if (!w.decay) return false;
    const ex = this.#exclude;
    if (!ex) return true;
    return Array.isArray(ex) ? !ex.includes(w.name) : !ex.test(w.name);
  }

  /** The arena this optimizer updates (null until {@link attach}). */
  get arena(): ParamArena | null {
    return this.#arena;
  }

  /** The GPU learning-rate tensor f32[1] (allocated by {@link attach}). */
  get lrTensor(): Tensor {
    if (!this.#lr) throw new Error(`collapse: ${this.kind}: optimizer is not attached to an arena`);
    return this.#lr;
  }

  /** The learning rate last written to the GPU (NaN before the first). */
  get learningRate(): number {
    return this.#lrValue;
  }

  /**
   * Binds the optimizer to an arena and allocates its GPU state (outside any captured step).
   * State loaded earlier with {@link loadState} is written now.
   */
  attach(arena: ParamArena): void {
    if (this.#arena === arena) return;
    this.#arena = arena;
    this.#lr ??= keep(tensor(new Float32Array([0]), [1]));
    this.#lrValue = NaN;
    this.allocateState(arena);
    if (this.#pending) {
      const p = this.#pending;
      this.#pending = null;
      this.loadState(p);
    }
  }

  /** Writes the learning rate for the next step (a host write; skipped when unchanged). */
  setLearningRate(lr: number): void {
    if (!Number.isFinite(lr)) throw new Error(`collapse: ${this.kind}: learning rate ${lr}`);
    const t = this.lrTensor;
    if (Math.fround(lr) === Math.fround(this.#lrValue)) return;
    writeTensor(t, new Float32Array([lr]));
    this.#lrValue = lr;
  }

  /**
   * Sets the learning rate from the schedule at (epoch, progress in [0, 1)), times
   * {@link Optimizer.lrScale}; returns it.
   */
  applySchedule(epoch: number, progress: number): number {
    const lr = this.schedule.lr(epoch, progress) * this.lrScale;
    this.setLearningRate(lr);
    return lr;
  }

  /** One in-place update of every parameter from the arena's gradients (capturable). */
  abstract step(): void;

  /** Allocates the optimizer's GPU state for `arena` (zeroed). */
  protected abstract allocateState(arena: ParamArena): void;

  /** Flat per-parameter state buffers by state name (e.g. momentum_buffer -> arena.state1). */
  protected abstract flatState(): Record<string, Tensor>;

  /** Scalar state tensors by name (e.g. AdamW's step counter). */
  protected abstract scalarState(): Record<string, Tensor>;

  /** The optimizer's configuration (JSON). */
  getConfig(): Record<string, unknown> {
    return {
      kind: this.kind,
      schedule: this.schedule.getConfig(),
      weightDecay: this.weightDecay,
      excludeFromWeightDecay: this.#exclude instanceof RegExp
        ? { regexp: this.#exclude.source, flags: this.#exclude.flags }
        : this.#exclude ?? null,
    };
  }

  /**
   * Reads the state back (one round trip): `"<state>.<param name>"` per parameter slice (torch's
   * names: momentum_buffer, exp_avg, exp_avg_sq) and scalars by name (e.g. "step").
   */
  async saveState(): Promise<Record<string, OptimizerStateEntry>> {
    const arena = this.#arena;
    if (!arena) return this.#pending ? { ...this.#pending } : {};
    const flat = Object.entries(this.flatState());
    const scal = Object.entries(this.scalarState());
    const host = await readAll([...flat.map(([, t]) => t), ...scal.map(([, t]) => t)]);
    const out: Record<string, OptimizerStateEntry> = {};
    flat.forEach(([key], k) => {
      const all = host[k] as Float32Array;
      for (const s of arena.slots) {
        out[`${key}.${s.name}`] = {
          shape: [...s.shape],
          data: all.slice(s.offset, s.offset + s.size),
        };
      }
    });
    scal.forEach(([key, t], k) => {
      const v = host[flat.length + k];
      out[key] = {
        shape: [...t.shape],
        data: v instanceof Float32Array ? v.slice() : Int32Array.from(v),
      };
    });
    return out;
  }

  /**
   * Restores state saved by {@link saveState}. Before {@link attach} it is kept and written on
   * attach. Throws naming every missing, unexpected or mis-shaped entry.
   */
  loadState(state: Record<string, OptimizerStateEntry>): void {
    const arena = this.#arena;
    if (!arena) {
      this.#pending = { ...state };
      return;
    }
    const flat = Object.entries(this.flatState());
    const scal = Object.entries(this.scalarState());
    const want = new Map<string, readonly number[]>();
    for (const [key] of flat) for (const s of arena.slots) want.set(`${key}.${s.name}`, s.shape);
    for (const [key, t] of scal) want.set(key, t.shape);
    const problems: string[] = [];
    for (const [name, shape] of want) {
      const e = state[name];
      if (!e) problems.push(`missing '${name}'`);
      else if (e.shape.length !== shape.length || e.shape.some((d, i) => d !== shape[i])) {
        problems.push(`'${name}' has shape [${e.shape}], expected [${shape}]`);
      }
    }
    for (const name of Object.keys(state)) {
      if (!want.has(name)) problems.push(`unexpected '${name}'`);
    }
    if (problems.length) {
      throw new Error(
        `collapse: ${this.kind} optimizer state does not match: ${problems.join("; ")}`,
      );
    }
    for (const [key, t] of flat) {
      const all = new Float32Array(t.size);
      for (const s of arena.slots) all.set(state[`${key}.${s.name}`].data, s.offset);
      writeTensor(t, all);
    }
    for (const [key, t] of scal) {
      const d = state[key].data;
      writeTensor(
        t,
        t.dtype === "f32"
          ? Float32Array.from(d)
          : t.dtype === "i32"
          ? Int32Array.from(d)
          : Uint32Array.from(d),
      );
    }
  }

  /** Frees the learning-rate tensor and optimizer-owned scalars (the arena owns the buffers). */
  dispose(): void {
    this.#lr?.dispose();
    this.#lr = null;
    this.#arena = null;
  }
}
