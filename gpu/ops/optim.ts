/**
 * Optimizer steps over a {@link ParamArena}: SGD (momentum, dampening, Nesterov, weight decay) and
 * AdamW, each one dispatch over the whole flat parameter buffer, in place, with PyTorch semantics.
 * Per-step values (learning rate, AdamW step counter) are GPU tensors, so the steps replay inside
 * captured training steps.
 * @module
 */
import { gpu } from "../device.ts";
import { engine } from "../engine.ts";
import { adamwLaunch, stepIncrementLaunch } from "../kernels/adamw.ts";
import { sgdLaunch, sgdMarkStartedLaunch } from "../kernels/sgd.ts";
import type { ParamArena } from "../param_arena.ts";
import { type Tensor, viewOf } from "../tensor.ts";

/** Options of {@link sgdStep_}. */
export interface SgdOptions {
  /** Learning rate, f32[1] (written by the caller each step). */
  lr: Tensor;
  /** Momentum factor (0 for plain SGD). */
  momentum: number;
  /** L2 penalty added to the gradient (coupled, as torch's SGD). */
  weightDecay: number;
  /** Nesterov momentum (default false). */
  nesterov?: boolean;
  /** Dampening of the momentum buffer update (default 0). */
  dampening?: number;
}

/** Options of {@link adamwStep_}. */
export interface AdamwOptions {
  /** Learning rate, f32[1]. */
  lr: Tensor;
  /** Decay of the first-moment average (default 0.9). */
  beta1?: number;
  /** Decay of the second-moment average (default 0.999). */
  beta2?: number;
  /** Added to the bias-corrected root of the second moment (default 1e-8). */
  eps?: number;
  /** Decoupled weight decay factor (default 0.01). */
  weightDecay?: number;
  /**
   * Step counter, f32[1]: the number of steps taken so far (create it as zeros([1]), like torch's
   * `state["step"]`). Each call first increments it on the GPU, then uses the new (1-based) value
   * for bias correction.
   */
  step: Tensor;
}

let chunkOverride: number | null = null;

/** Caps the elements one optimizer dispatch binds (tests; null restores the device limit). */
export function setOptimizerChunkElements(n: number | null): void {
  chunkOverride = n;
}

/**
 * Element ranges [start, length) covering the arena, each small enough to bind: a flat buffer may
 * exceed `maxStorageBufferBindingSize` (128 MiB on lavapipe; ResNet-50 with the widened layer4 has
 * 63M parameters), so the update runs as one dispatch per range. Starts are 64-element (256-byte)
 * aligned, as binding offsets must be.
 */
function ranges(total: number): [number, number][] {
  const limit = chunkOverride ?? gpu().device.limits.maxStorageBufferBindingSize / 4;
  const step = Math.max(64, Math.floor(limit / 64) * 64);
  const out: [number, number][] = [];
  for (let s = 0; s < total; s += step) out.push([s, Math.min(step, total - s)]);
  return out;
}

function part(t: Tensor, start: number, length: number): Tensor {
  return start === 0 && length === t.size ? t : viewOf(t.storage, start, [length]);
}

function checkScalar(t: Tensor, what: string, op: string): void {
  if (t.size !== 1 || t.dtype !== "f32") {
    throw new Error(
      `collapse: ${op}: ${what} must be an f32 tensor of one element, got ${t.describe()}`,
    );
  }
}

function checkNumber(v: number, what: string, op: string, lo = 0): void {
  if (!Number.isFinite(v) || v < lo) throw new Error(`collapse: ${op}: invalid ${what} ${v}`);
}

/**
 * One SGD step over all of the arena's parameters, from its gradient buffer, exactly as
 * torch.optim.SGD: g += wd * p (decayed parameters only); buf = momentum * buf + (1 - dampening) * g
 * (buf = g on the first step); p -= lr * (nesterov ? g + momentum * buf : buf).
 */
export function sgdStep_(arena: ParamArena, opts: SgdOptions): void {
  const op = "sgdStep_";
  checkScalar(opts.lr, "lr", op);
  const { momentum, weightDecay } = opts;
  const dampening = opts.dampening ?? 0;
  const nesterov = opts.nesterov ?? false;
  checkNumber(momentum, "momentum", op);
  checkNumber(weightDecay, "weightDecay", op);
  checkNumber(dampening, "dampening", op);
  if (nesterov && (momentum <= 0 || dampening !== 0)) {
    throw new Error(`collapse: ${op}: Nesterov momentum requires a momentum and zero dampening`);
  }
  if (arena.total === 0) return;
  const useBuf = momentum !== 0;
  const flag = useBuf && dampening !== 0;
  const e = engine();
  for (const [s, n] of ranges(arena.total)) {
    e.dispatch(
      sgdLaunch(
        part(arena.flatParams, s, n),
        part(arena.flatGrads, s, n),
        opts.lr,
        useBuf ? part(arena.state1, s, n) : null,
        flag ? arena.sgdStarted : null,
        {
          decayCount: Math.min(Math.max(arena.decayCount - s, 0), n),
          momentum,
          weightDecay,
          dampening,
          nesterov,
        },
      ),
    );
  }
  if (flag) e.dispatch(sgdMarkStartedLaunch(arena.sgdStarted));
}

/**
 * One AdamW step over all of the arena's parameters, exactly as torch.optim.AdamW (amsgrad off):
 * step += 1; p *= 1 - lr * wd (decayed parameters only); m = b1 m + (1 - b1) g;
 * v = b2 v + (1 - b2) g^2; p -= lr / (1 - b1^step) * m / (sqrt(v) / sqrt(1 - b2^step) + eps).
 * Defaults: beta1 0.9, beta2 0.999, eps 1e-8, weightDecay 1e-2 (torch's).
 */
export function adamwStep_(arena: ParamArena, opts: AdamwOptions): void {
  const op = "adamwStep_";
  checkScalar(opts.lr, "lr", op);
  checkScalar(opts.step, "step", op);
  const beta1 = opts.beta1 ?? 0.9, beta2 = opts.beta2 ?? 0.999;
  const eps = opts.eps ?? 1e-8, weightDecay = opts.weightDecay ?? 1e-2;
  if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) {
    throw new Error(`collapse: ${op}: betas must lie in [0, 1), got ${beta1}, ${beta2}`);
  }
  checkNumber(eps, "eps", op);
  checkNumber(weightDecay, "weightDecay", op);
  const v = arena.ensureState2();
  const e = engine();
  e.dispatch(stepIncrementLaunch(opts.step));
  if (arena.total === 0) return;
  for (const [s, n] of ranges(arena.total)) {
    e.dispatch(
      adamwLaunch(
        part(arena.flatParams, s, n),
        part(arena.flatGrads, s, n),
        part(arena.state1, s, n),
        part(v, s, n),
        opts.lr,
        opts.step,
        {
          decayCount: Math.min(Math.max(arena.decayCount - s, 0), n),
          beta1,
          beta2,
          eps,
          weightDecay,
        },
      ),
    );
  }
}
