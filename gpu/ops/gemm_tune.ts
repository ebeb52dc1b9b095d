/**
 * Measured GEMM plans (autotuning, as cuDNN's benchmark mode does for convolutions):
 * {@link tuneGemms} records a piece of work (a training step) with each GEMM's candidate plans
 * (`gemmCandidates` in kernels/tuning.ts) dispatched beside it into scratch outputs, replays the
 * recording once with every dispatch timed by timestamp queries, and keeps each GEMM's fastest
 * plan; the dispatcher (gemm_run.ts) runs GEMMs with the kept plans from then on. The recorded
 * work itself runs once, with the model's plans: its results are those of a run without tuning.
 * @module
 */
import { gpu } from "../device.ts";
import { type Bindable, engine, type Launch, type Storage } from "../engine.ts";
import { timeDispatches } from "../kernel_timer.ts";
import { gemmLaunch } from "../kernels/matmul_launch.ts";
import { colSumLaunch } from "../kernels/matmul_reduce.ts";
import {
  fastCompile,
  gemmCandidates,
  type GemmPlan,
  gemmPlan,
  kernelMode,
  planLabel,
  type PlanOptions,
  TUNING,
} from "../kernels/tuning.ts";
import { empty } from "../tensor.ts";
import { type GemmJob, gemmSpecOf } from "./gemm_job.ts";

/** One GEMM of a {@link TuneReport}: its shape, the model's plan, the one kept, their times. */
export interface TunedGemm {
  /** The kernel name (e.g. "conv2d_bn", "matmul"). */
  name: string;
  /** Rows of the output (e.g. batch x output pixels of a conv). */
  M: number;
  /** Columns of the output (e.g. output channels). */
  N: number;
  /** The reduction length (e.g. kernel taps x input channels). */
  K: number;
  /** Independent GEMMs of the launch. */
  batch: number;
  /** Plans measured (the model's first). */
  candidates: number;
  /** The cost model's plan, in words. */
  model: string;
  /** The cost model's plan's best measured time (ms). */
  modelMs: number;
  /** The plan kept from now on, in words. */
  kept: string;
  /** The kept plan's best measured time (ms). */
  keptMs: number;
  /** The cost model's plan itself. */
  modelPlan: GemmPlan;
  /** The kept plan itself. */
  keptPlan: GemmPlan;
}

/** What {@link tuneGemms} measured and kept. */
export interface TuneReport {
  /** False where the device has no `timestamp-query` (nothing was measured; the work ran once). */
  available: boolean;
  /** Each GEMM with more than one candidate, in the order the work first ran it. */
  gemms: TunedGemm[];
  /** GEMMs whose kept plan is not the model's. */
  changed: number;
  /** Sum over `gemms` of the model's plans' times (ms, each GEMM once). */
  modelMs: number;
  /** Sum over `gemms` of the kept plans' times (ms, each GEMM once). */
  keptMs: number;
  /** Wall-clock seconds of the whole measurement, compiles included. */
  seconds: number;
}

/** Options of {@link tuneGemms}; defaults from `TUNING.autotuneOptions`. */
export interface TuneOptions {
  /** Plans measured per GEMM, the model's included. */
  candidates?: number;
  /** Timed runs of each plan (its fastest counts; the first run may include a compile). */
  reps?: number;
  /** A plan replaces the model's only when faster by more than this fraction. */
  margin?: number;
}

interface Trial {
  key: string;
  plan: number;
  /** The records [first, end) of this run of the plan. */
  first: number;
  end: number;
}

interface Session {
  candidates: number;
  reps: number;
  trials: Trial[];
  jobs: Map<string, { job: TunedGemm; plans: GemmPlan[] }>;
  scratch: Map<string, Storage>;
}

const kept = new Map<string, GemmPlan>();
let session: Session | null = null;

function keyOf(job: GemmJob, opts: PlanOptions): string {
  const fusion = typeof job.fusion === "function" ? "fn" : job.fusion?.key ?? "";
  return [
    kernelMode(),
    fastCompile() ? "fast" : "",
    job.name,
    job.a.key,
    job.b.key,
    job.M,
    job.N,
    job.K,
    job.batch,
    job.bias ? "bias" : "",
    job.relu ? "relu" : "",
    fusion,
    job.fusedEpilogue ? "epilogue" : "",
    job.out.half ? "half" : "",
    JSON.stringify(opts),
  ].join("|");
}

/**
 * The plan a job runs with: the kept one where {@link tuneGemms} measured the job, else the cost
 * model's. Inside a measurement, a job not measured yet first dispatches its candidates' trial
 * runs (before the real run: a fusion function's last call is the one its caller keeps).
 */
export function planFor(job: GemmJob, opts: PlanOptions): GemmPlan {
  if (!session && kept.size === 0) return gemmPlan(job.M, job.N, job.K, job.batch, opts);
  const key = keyOf(job, opts);
  const plan = kept.get(key);
  if (plan) return plan;
  if (session && !session.jobs.has(key)) dispatchTrials(session, key, job, opts);
  return gemmPlan(job.M, job.N, job.K, job.batch, opts);
}

/** Number of GEMMs with a kept plan. */
export function keptPlanCount(): number {
  return kept.size;
}

/** Kept plans as data (JSON-serialisable), for {@link importKeptPlans} in a later run. */
export interface KeptPlans {
  /** The adapter they were measured on (`GPUAdapterInfo.description`, else vendor/architecture). */
  adapter: string;
  /** [GEMM key, plan] pairs. */
  plans: [string, GemmPlan][];
}

function adapterName(): string {
  const a = gpu().adapter;
  return a.description || `${a.vendor} ${a.architecture}`.trim();
}

/** The plans kept so far, to save (e.g. as JSON beside a run) and import into a later run. */
export function exportKeptPlans(): KeptPlans {
  return { adapter: adapterName(), plans: [...kept].map(([k, p]) => [k, structuredClone(p)]) };
}

/**
 * Keeps the plans of an {@link exportKeptPlans} result, so the GEMMs it measured are not measured
 * again. Plans measured on another adapter are not imported (returns 0); else the number
 * imported.
 */
export function importKeptPlans(saved: KeptPlans): number {
  if (saved.adapter !== adapterName()) return 0;
  for (const [key, plan] of saved.plans) kept.set(key, structuredClone(plan));
  return saved.plans.length;
}

/** Forgets every kept plan (GEMMs go back to the cost model's plans). */
export function clearKeptPlans(): void {
  kept.clear();
}

/** Indices of the storage bindings a WGSL module declares `read_write`. */
export function writableBindings(code: string): Set<number> {
  const out = new Set<number>();
  for (const m of code.matchAll(/@binding\((\d+)\)\s*var<storage\s*,\s*read_write\s*>/g)) {
    out.add(Number(m[1]));
  }
  return out;
}

/**
 * `launch` with each binding it writes replaced by session scratch of the same size and format,
 * so a trial run changes nothing the work reads (outputs, running statistics, error words).
 */
function redirectWrites(s: Session, launch: Launch): Launch {
  const writable = writableBindings(launch.code);
  const bindings = launch.bindings.map((b, i): Bindable => {
    if (!writable.has(i)) return b;
    const bytes = b.byteLength ?? b.storage.byteLength;
    const id = `${bytes}|${b.half ? "half" : "f32"}`;
    let st = s.scratch.get(id);
    if (!st) {
      st = engine().alloc(bytes, "gemm_trial_scratch");
      st.half = !!b.half;
      s.scratch.set(id, st);
    }
    return { storage: st, byteLength: bytes, half: b.half };
  });
  return { ...launch, bindings };
}

function dispatchTrials(s: Session, key: string, job: GemmJob, opts: PlanOptions): void {
  const plans = gemmCandidates(job.M, job.N, job.K, job.batch, opts, s.candidates);
  s.jobs.set(key, {
    job: {
      name: job.name,
      M: job.M,
      N: job.N,
      K: job.K,
      batch: job.batch,
      candidates: plans.length,
      model: planLabel(plans[0]),
      modelMs: NaN,
      kept: planLabel(plans[0]),
      keptMs: NaN,
      modelPlan: plans[0],
      keptPlan: plans[0],
    },
    plans,
  });
  if (plans.length < 2) return;
  const e = engine();
  for (let rep = 0; rep < s.reps; rep++) {
    plans.forEach((plan, p) => {
      const first = e.capturedRecords;
      const spec = gemmSpecOf(job, plan);
      if (plan.splits === 1) {
        e.dispatch(redirectWrites(s, gemmLaunch({ ...spec, out: job.out.binding })));
      } else {
        // The reduction is timed too (a deferred one runs later in another kernel's rider).
        const MN = job.M * job.N;
        const partial = empty([plan.splits, MN], "f32", "gemm_trial_partial");
        e.dispatch(redirectWrites(s, gemmLaunch({ ...spec, out: partial.binding })));
        e.dispatch(redirectWrites(s, colSumLaunch(partial, job.out, plan.splits, MN, plan.splits)));
        partial.dispose();
      }
      s.trials.push({ key, plan: p, first, end: e.capturedRecords });
    });
  }
}

/**
 * Measures the candidate plans of every GEMM that `fn` runs and keeps the fastest of each: `fn`
 * is recorded (as by `engine().capture`) with trial runs of each candidate writing into scratch,
 * the recording is replayed once with each dispatch timed, and GEMMs dispatched from then on use
 * the kept plans (a plan replaces the model's only when faster by more than `margin`). `fn`'s work
 * runs once, with the model's plans, so its results are those of an untuned run; it must not
 * upload host data (like any captured step). Where the device has no `timestamp-query`, `fn`'s
 * work runs once and nothing is kept (`available: false`).
 *
 * @example Tune a matmul's plans, then run it with them
 * ```ts
 * import { assert } from "@std/assert";
 * import { initDevice, matmul, randomUniform, Rng, tuneGemms } from "../mod.ts";
 *
 * await initDevice();
 * const a = randomUniform([64, 48], new Rng(1), -1, 1);
 * const b = randomUniform([48, 32], new Rng(2), -1, 1);
 * const report = await tuneGemms(() => void matmul(a, b), { candidates: 3, reps: 2 });
 * if (report.available) assert(report.gemms.every((g) => g.keptMs <= g.modelMs));
 * const c = await matmul(a, b).data(); // with the kept plan
 * assert(c.length === 64 * 32);
 * ```
 */
export function tuneGemms(fn: () => void, options: TuneOptions = {}): Promise<TuneReport> {
  // Thrown here, not as a rejection: the nested call's promise is usually not awaited.
  if (session) throw new Error("collapse: tuneGemms inside tuneGemms");
  return measure(fn, { ...TUNING.autotuneOptions, ...options });
}

async function measure(fn: () => void, o: Required<TuneOptions>): Promise<TuneReport> {
  const t0 = performance.now();
  const e = engine();
  const s: Session = {
    candidates: Math.max(1, Math.floor(o.candidates)),
    reps: Math.max(1, Math.floor(o.reps)),
    trials: [],
    jobs: new Map(),
    scratch: new Map(),
  };
  session = s;
  let captured;
  try {
    captured = e.capture(fn).step;
  } finally {
    session = null;
  }
  const step = captured;
  try {
    const timings = await timeDispatches(step.records);
    if (!timings) {
      step.run();
      await e.sync();
      return summarise(s, false, t0);
    }
    const ms = new Float64Array(step.records.length);
    for (const t of timings) ms[t.index] = t.ms;
    const best = new Map<string, number[]>();
    for (const t of s.trials) {
      let sum = 0;
      for (let i = t.first; i < t.end; i++) sum += ms[i];
      const times = best.get(t.key) ?? [];
      times[t.plan] = Math.min(times[t.plan] ?? Infinity, sum);
      best.set(t.key, times);
    }
    for (const [key, { job, plans }] of s.jobs) {
      const times = best.get(key);
      if (!times) {
        kept.set(key, plans[0]);
        continue;
      }
      let pick = 0;
      for (let p = 1; p < plans.length; p++) if (times[p] < times[pick]) pick = p;
      if (times[pick] >= times[0] * (1 - o.margin)) pick = 0;
      kept.set(key, plans[pick]);
      job.modelMs = times[0];
      job.kept = planLabel(plans[pick]);
      job.keptMs = times[pick];
      job.keptPlan = plans[pick];
    }
    return summarise(s, true, t0);
  } finally {
    for (const st of s.scratch.values()) e.release(st);
    step.dispose();
  }
}

function summarise(s: Session, available: boolean, t0: number): TuneReport {
  const gemms = [...s.jobs.values()].map((j) => j.job).filter((g) => g.candidates > 1);
  const measured = gemms.filter((g) => Number.isFinite(g.modelMs));
  return {
    available,
    gemms,
    changed: measured.filter((g) => g.kept !== g.model).length,
    modelMs: measured.reduce((a, g) => a + g.modelMs, 0),
    keptMs: measured.reduce((a, g) => a + g.keptMs, 0),
    seconds: (performance.now() - t0) / 1000,
  };
}
