/**
 * Where one ResNet-32 training step's time goes. For a step at `--batch` (default 128): (a) eager
 * mode: host ms to encode the step (autograd + kernel launches, before submit) and its dispatch
 * count; (b) captured replay: host ms to encode + submit one replay; (c) the whole step's wall
 * time until `sync`; (d) GPU time by kernel name: the recorded step's dispatches are grouped by
 * kernel name and each group is replayed alone (R times in one submission, then a sync; the cost
 * of an empty submit + sync is subtracted), giving launches, ms and % per step, and GFLOP/s for
 * the GEMM kernels (FLOPs from bench/flops.ts). Replaying a subset computes garbage values but does
 * the same work (no kernel's cost depends on the values). (e) Where the device has
 * `timestamp-query`: every dispatch's device time from timestamp queries (gpu/kernel_timer.ts; the
 * step replayed with one timed pass per dispatch, best of 3), by kernel name (and by GEMM grid),
 * against a 1024^3 matmul timed the same way. Also exports the setup the other benches
 * share ({@link buildTrainSetup}, {@link buildEvalSetup}). Imports no jsr:/npm: modules.
 *
 * Run: `deno run -A bench/step_profile.ts [--batch 128] [--steps 3] [--head etf|dense]
 * [--width 1] [--no-breakdown] [--by-shape] [--json] [--split-target N] [--max-splits N]`
 * (the last two override kernels/tuning.ts's split-K targets for an experiment).
 * @module
 */
import { adapterLabel, gpu, initDevice } from "../gpu/device.ts";
import "../gpu/ops/mod.ts"; // installs the autograd helpers backward() needs
import { type CapturedStep, engine } from "../gpu/engine.ts";
import { timeDispatches } from "../gpu/kernel_timer.ts";
import { TUNING } from "../gpu/kernels/tuning.ts";
import { matmul } from "../gpu/ops/matmul.ts";
import { tensor } from "../gpu/tensor.ts";
import type { Batch } from "../data/types.ts";
import { CrossEntropyLoss } from "../nn/losses/cross_entropy.ts";
import { DotRegressionLoss } from "../nn/losses/dot_regression.ts";
import { type ResNet32, resnet32 } from "../nn/models/resnet32.ts";
import { type ResNet50, resnet50 } from "../nn/models/resnet50.ts";
import { SGD } from "../nn/optimizers/sgd.ts";
import { EvalStep } from "../nn/training/evaluate.ts";
import { compile, trainingState } from "../nn/training/state.ts";
import { TrainStep } from "../nn/training/train_step.ts";
import { type ModelFlops, modelFlops } from "./flops.ts";

/** What {@link buildTrainSetup} takes. */
export interface SetupOptions {
  batch: number;
  /** "resnet32" (CIFAR, default) or "resnet50" (torchvision's; use `size: 224`, 1000 classes). */
  model?: "resnet32" | "resnet50";
  /** "etf": ETF head + DotRegressionLoss; "dense": learnable Dense head + cross-entropy. */
  head: "etf" | "dense";
  /** Image side (default 32). */
  size?: number;
  /** ResNet-32 width multiplier (default 1; ResNet-32 only). */
  width?: number;
  /** Classes (default 10). */
  numClasses?: number;
}

/** A compiled ResNet with its training step and one random batch. */
export interface TrainSetup {
  model: ResNet32 | ResNet50;
  step: TrainStep;
  batch: Batch;
  /** GEMM FLOPs per image. */
  flops: ModelFlops;
}

/** A deterministic pseudo-random batch (N(0,1)-ish pixels, labels cycling over the classes). */
export function randomBatch(n: number, size: number, numClasses: number): Batch {
  const images = new Float32Array(n * size * size * 3);
  let s = 12345;
  for (let i = 0; i < images.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    images[i] = (s / 2 ** 32) * 3.4 - 1.7;
  }
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = (i * 7 + 3) % numClasses;
  return { images, labels, shape: [n, size, size, 3] };
}

/**
 * ResNet-32 (CIFAR) or ResNet-50, compiled as the paper trains it (SGD lr 0.1, momentum 0.9, wd 2e-4), its
 * parameters packed, a {@link TrainStep} (the fit path: eager first run, then captured replays)
 * and a random batch already written into the step's inputs. Nothing has run yet.
 */
export function buildTrainSetup(o: SetupOptions): TrainSetup {
  const size = o.size ?? 32;
  const numClasses = o.numClasses ?? 10;
  const model = o.model === "resnet50"
    ? resnet50({ numClasses, head: o.head })
    : resnet32({ numClasses, head: o.head, widthMultiplier: o.width ?? 1 });
  const shape: [number, number, number, number] = [o.batch, size, size, 3];
  model.build(shape);
  compile(model, {
    optimizer: new SGD({ learningRate: 0.1, momentum: 0.9, weightDecay: 2e-4 }),
    loss: o.head === "etf" ? new DotRegressionLoss() : new CrossEntropyLoss(),
  });
  const state = trainingState(model);
  state.ensureArena();
  state.optimizer.applySchedule(0, 0);
  const step = new TrainStep(state, shape);
  const batch = randomBatch(o.batch, size, numClasses);
  step.write(batch);
  return { model, step, batch, flops: modelFlops(model) };
}

/** An evaluation step (forward only, accuracy accumulators; captured after its first run). */
export function buildEvalSetup(model: ResNet32 | ResNet50, batch: Batch): EvalStep {
  return new EvalStep(model, batch.shape, false, null, true);
}

/** Per-kernel-name GPU time of a recorded step. */
export interface KernelRow {
  name: string;
  launches: number;
  ms: number;
  /**
   * This process's CPU ms per replay (Linux; NaN elsewhere). On a software adapter the work runs
   * on the process's own threads, so this is the figure to compare on a loaded machine.
   */
  cpuMs: number;
  /** GEMM FLOPs per step, where known. */
  flops: number | null;
}

type RecordLike = CapturedStep["records"][number];

/** Milliseconds of an empty submit + sync (the floor every measurement below pays once). */
export async function syncFloorMs(reps = 3): Promise<number> {
  const e = engine();
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    e.replay([]);
    await e.sync();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

/** This process's user + system CPU time in ms (Linux /proc; NaN elsewhere). */
export function cpuMs(): number {
  try {
    const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return NaN;
  }
}

/**
 * Times `records` replayed `reps` times in one submission: wall ms per replay (floor subtracted)
 * and process CPU ms per replay.
 */
async function timeRecords(
  records: RecordLike[],
  reps: number,
  floor: number,
): Promise<{ ms: number; cpu: number }> {
  const e = engine();
  const all: RecordLike[] = [];
  for (let i = 0; i < reps; i++) all.push(...records);
  const c0 = cpuMs(), t0 = performance.now();
  e.replay(all);
  await e.sync();
  return {
    ms: Math.max(0, performance.now() - t0 - floor) / reps,
    cpu: (cpuMs() - c0) / reps,
  };
}

/**
 * GEMM FLOPs per step for a kernel name (conv and head matmuls, fused or not), or null. A strided
 * conv's backward-data is its dense "_cols" GEMM.
 */
export function kernelFlops(name: string, f: ModelFlops, batch: number): number | null {
  const convs = f.layers.filter((l) => l.kind === "conv2d");
  const mats = f.layers.filter((l) => l.kind !== "conv2d");
  const s = (ls: typeof convs, k: "forward" | "backwardInput" | "backwardWeight") =>
    ls.reduce((a, l) => a + l[k], 0) * batch;
  const base = name.replace(/^conv2d_bn/, "conv2d");
  if (base === "conv2d") return s(convs, "forward");
  if (base === "conv2d_backward_input") return s(convs.filter((l) => !l.strided), "backwardInput");
  if (base === "conv2d_backward_input_cols") {
    return s(convs.filter((l) => l.strided), "backwardInput");
  }
  if (base === "conv2d_backward_filter") return s(convs, "backwardWeight");
  if (name === "matmul") {
    return s(mats, "forward") + s(mats, "backwardInput") + s(mats, "backwardWeight");
  }
  return null;
}

/**
 * Replays each group of a recorded step's dispatches (grouped by `key`) alone and returns the
 * rows sorted by time. Groups faster than ~100 ms are repeated to reach about that.
 */
export async function kernelBreakdown(
  records: readonly RecordLike[],
  key: (r: RecordLike & { kind: "dispatch" }) => string,
  flopsOf: (name: string) => number | null,
): Promise<KernelRow[]> {
  const floor = await syncFloorMs();
  const groups = new Map<string, RecordLike[]>();
  for (const r of records) {
    const k = r.kind === "dispatch" ? key(r) : "(buffer copies)";
    let g = groups.get(k);
    if (!g) groups.set(k, g = []);
    g.push(r);
  }
  const rows: KernelRow[] = [];
  for (const [name, recs] of groups) {
    let t = await timeRecords(recs, 1, floor);
    if (t.ms < 200) {
      const reps = Math.min(20, Math.max(2, Math.ceil(200 / Math.max(t.ms, 1))));
      t = await timeRecords(recs, reps, floor);
    }
    // The launches' own FLOPs where they carry them (GEMMs), else the model-level count.
    const own = recs.reduce((a, r) => a + (r.kind === "dispatch" ? r.flops ?? 0 : 0), 0);
    rows.push({
      name,
      launches: recs.length,
      ms: t.ms,
      cpuMs: t.cpu,
      flops: own > 0 ? own : flopsOf(name),
    });
  }
  return rows.sort((a, b) => b.ms - a.ms);
}

/**
 * Every dispatch's device time from timestamp queries (gpu/kernel_timer.ts): the records replayed
 * `reps` times with every dispatch timed, each dispatch's best time kept (in dispatch order).
 * Null where the device has no `timestamp-query`.
 */
export async function dispatchTimes(
  records: readonly RecordLike[],
  reps = 3,
): Promise<number[] | null> {
  let best: number[] | null = null;
  for (let i = 0; i < reps; i++) {
    const t = await timeDispatches(records);
    if (!t) return null;
    best = best ? best.map((b, j) => Math.min(b, t[j].ms)) : t.map((x) => x.ms);
  }
  return best;
}

/**
 * Groups per-dispatch times ({@link dispatchTimes}, in dispatch order) by `key` into rows sorted
 * by time (`cpuMs` NaN); dispatches `key` maps to null are left out.
 */
export function groupDispatchTimes(
  records: readonly RecordLike[],
  times: readonly number[],
  key: (r: RecordLike & { kind: "dispatch" }) => string | null,
  flopsOf: (name: string) => number | null,
): KernelRow[] {
  const groups = new Map<string, KernelRow>();
  let j = 0;
  for (const r of records) {
    if (r.kind !== "dispatch") continue;
    const ms = times[j++], k = key(r);
    if (k === null) continue;
    let g = groups.get(k);
    if (!g) groups.set(k, g = { name: k, launches: 0, ms: 0, cpuMs: NaN, flops: 0 });
    g.launches++;
    g.ms += ms;
    g.flops! += r.flops ?? 0;
  }
  const rows = [...groups.values()];
  for (const g of rows) if (!g.flops) g.flops = flopsOf(g.name);
  return rows.sort((a, b) => b.ms - a.ms);
}

/**
 * A 1024^3 matmul's GFLOP/s from timestamp queries (best of `reps`), or null without them: the
 * reference for {@link timestampBreakdown}'s rows.
 */
export async function matmulTimestampGflops(reps = 3): Promise<number | null> {
  const n = 1024;
  const a = tensor(new Float32Array(n * n).map((_, i) => Math.sin(i) * 0.5), [n, n]);
  const { step, result } = engine().capture(() => matmul(a, a));
  let best = Infinity;
  for (let i = 0; i <= reps; i++) {
    const t = await timeDispatches(step.records);
    if (!t) break;
    if (i > 0) best = Math.min(best, t.reduce((s, x) => s + x.ms, 0));
  }
  result.dispose();
  step.dispose();
  a.dispose();
  return Number.isFinite(best) ? 2 * n ** 3 / best / 1e6 : null;
}

/** A reference rate: wall GFLOP/s and GFLOP per CPU-second (e.g. the same run's matmul). */
export interface RateRef {
  gflops: number;
  cpuGflops: number;
}

/**
 * Prints a breakdown as a fixed-width table (% of `stepMs`; with `ref`, each row's GFLOP/s and
 * GFLOP per CPU-second as fractions of the reference's).
 */
export function printBreakdown(
  rows: KernelRow[],
  stepMs: number,
  title: string,
  ref?: RateRef,
): void {
  const total = rows.reduce((a, r) => a + r.ms, 0);
  console.log(`\n${title}`);
  console.log(
    `${"kernel".padEnd(52)} ${"launches".padStart(8)} ${"ms/step".padStart(9)} ${
      "% step".padStart(7)
    } ${"cpu ms".padStart(8)} ${"GFLOP/s".padStart(8)}${
      ref ? ` ${"x matmul".padStart(8)} ${"(cpu)".padStart(6)}` : ""
    }`,
  );
  for (const r of rows) {
    const g = r.flops && r.ms > 0 ? r.flops / r.ms / 1e6 : null;
    const gc = r.flops && r.cpuMs > 0 ? r.flops / r.cpuMs / 1e6 : null;
    const frac = ref && g !== null
      ? ` ${(g / ref.gflops).toFixed(2).padStart(8)} ${
        gc !== null ? (gc / ref.cpuGflops).toFixed(2).padStart(6) : "".padStart(6)
      }`
      : "";
    console.log(
      `${r.name.padEnd(52)} ${String(r.launches).padStart(8)} ${r.ms.toFixed(1).padStart(9)} ${
        (100 * r.ms / stepMs).toFixed(1).padStart(7)
      } ${(Number.isNaN(r.cpuMs) ? "" : r.cpuMs.toFixed(0)).padStart(8)} ${
        (g === null ? "" : g.toFixed(2)).padStart(8)
      }${frac}`,
    );
  }
  console.log(
    `${"sum of the parts".padEnd(52)} ${
      String(rows.reduce((a, r) => a + r.launches, 0)).padStart(8)
    } ${total.toFixed(1).padStart(9)} ${(100 * total / stepMs).toFixed(1).padStart(7)} ${
      (rows.some((r) => Number.isNaN(r.cpuMs))
        ? ""
        : rows.reduce((a, r) => a + r.cpuMs, 0).toFixed(0))
        .padStart(8)
    }`,
  );
}

/**
 * A 1024^3 matmul with the adapter's GEMM variant: GFLOP/s (best of `reps`, after a warm-up) and
 * GFLOP per CPU-second (process CPU time of those runs).
 */
export async function matmulReference(reps = 3): Promise<RateRef> {
  const n = 1024;
  const a = tensor(new Float32Array(n * n).map((_, i) => Math.sin(i) * 0.5), [n, n]);
  let best = Infinity, cpu = 0;
  for (let i = 0; i <= reps; i++) {
    const c0 = cpuMs(), t0 = performance.now();
    matmul(a, a).dispose();
    await engine().sync();
    if (i > 0) {
      best = Math.min(best, performance.now() - t0);
      cpu += cpuMs() - c0;
    }
  }
  a.dispose();
  const flops = 2 * n ** 3;
  return { gflops: flops / best / 1e6, cpuGflops: flops / (cpu / reps) / 1e6 };
}

/** Eager and replay timings of one step. */
export interface StepTimings {
  batch: number;
  /** Eager: host ms encoding the step (autograd + launches), median. */
  eagerEncodeMs: number;
  /** Eager: host ms of the submit. */
  eagerSubmitMs: number;
  /** Eager: wall ms from step start until sync returned. */
  eagerStepMs: number;
  eagerDispatches: number;
  /** Replay: host ms to encode + submit one replay, median. */
  replayHostMs: number;
  /** Replay: wall ms from start until sync returned (the step's device time + one sync). */
  replayStepMs: number;
  /** Replay: this process's CPU ms per step (see {@link cpuMs}). */
  replayCpuMs: number;
  replayDispatches: number;
  submitsPerReplay: number;
  /** GEMM GFLOP per training image. */
  gflopPerImage: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Measures a training setup: `steps` eager steps (after one warm-up that compiles) and `steps`
 * replays of a capture (the TrainStep's own after its capture run). Returns the timings and the
 * recorded step for breakdowns (a separate capture of the same body).
 */
export async function measureStep(
  s: TrainSetup,
  steps: number,
): Promise<{ timings: StepTimings; recorded: CapturedStep }> {
  const e = engine();
  const B = s.step.batchSize;
  // Warm-up: eager (compiles every pipeline, sizes the pools).
  s.step.run();
  await e.sync();
  const enc: number[] = [], sub: number[] = [], wall: number[] = [];
  let eagerDispatches = 0;
  for (let i = 0; i < steps; i++) {
    const d0 = e.stats().dispatches;
    const t0 = performance.now();
    s.step.body();
    const t1 = performance.now();
    e.flush();
    const t2 = performance.now();
    await e.sync();
    const t3 = performance.now();
    eagerDispatches = e.stats().dispatches - d0;
    enc.push(t1 - t0);
    sub.push(t2 - t1);
    wall.push(t3 - t0);
  }
  // The step's own capture (its second run), then timed replays.
  s.step.run();
  await e.sync();
  const host: number[] = [], rwall: number[] = [], rcpu: number[] = [];
  let submits = 0;
  for (let i = 0; i < steps; i++) {
    const st0 = e.stats().submits;
    const c0 = cpuMs(), t0 = performance.now();
    s.step.run();
    const t1 = performance.now();
    await e.sync();
    const t2 = performance.now();
    submits = e.stats().submits - st0;
    host.push(t1 - t0);
    rwall.push(t2 - t0);
    rcpu.push(cpuMs() - c0);
  }
  const { step: recorded } = e.capture(() => s.step.body());
  return {
    timings: {
      batch: B,
      eagerEncodeMs: median(enc),
      eagerSubmitMs: median(sub),
      eagerStepMs: median(wall),
      eagerDispatches,
      replayHostMs: median(host),
      replayStepMs: median(rwall),
      replayCpuMs: median(rcpu),
      replayDispatches: s.step.dispatchCount,
      submitsPerReplay: submits,
      gflopPerImage: s.flops.train / 1e9,
    },
    recorded,
  };
}

function argValue(args: string[], name: string, def: string): string {
  const i = args.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < args.length) return args[i + 1];
  const eq = args.find((a) => a.startsWith(`--${name}=`));
  return eq ? eq.slice(name.length + 3) : def;
}

async function main(): Promise<void> {
  const args = Deno.args;
  const batch = Number(argValue(args, "batch", "128"));
  const steps = Number(argValue(args, "steps", "3"));
  const head = argValue(args, "head", "etf") as "etf" | "dense";
  const width = Number(argValue(args, "width", "1"));
  if (!(batch >= 1 && steps >= 1) || (head !== "etf" && head !== "dense")) {
    throw new Error("usage: step_profile.ts [--batch N] [--steps N] [--head etf|dense]");
  }
  // Experiment knobs (not defaults): split-K target workgroups and the most splits.
  const splitTarget = argValue(args, "split-target", "");
  const maxSplits = argValue(args, "max-splits", "");
  if (splitTarget) TUNING.minGroups = { cpu: Number(splitTarget), gpu: Number(splitTarget) };
  if (maxSplits) TUNING.maxSplits = Number(maxSplits);
  await initDevice();
  const a = gpu().adapter;
  console.log(
    `adapter: ${adapterLabel(a)}; features: ${[...gpu().device.features].join(", ") || "none"}`,
  );
  console.log(`ResNet-32 (width ${width}), ${head} head, batch ${batch}, 32x32, ${steps} steps`);
  const s = buildTrainSetup({ batch, head, width });
  const f = s.flops;
  console.log(
    `GEMM FLOPs per image: forward ${(f.forward / 1e9).toFixed(4)} G, backward-input ${
      (f.backwardInput / 1e9).toFixed(4)
    } G, backward-weight ${(f.backwardWeight / 1e9).toFixed(4)} G, training ${
      (f.train / 1e9).toFixed(4)
    } G`,
  );
  const t0 = performance.now();
  const { timings: t, recorded } = await measureStep(s, steps);
  console.log(`(measured in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  const imgs = (ms: number) => (batch / (ms / 1000)).toFixed(2);
  const gfs = (ms: number) => (f.train * batch / ms / 1e6).toFixed(2);
  console.log(
    `\n(a) eager step:   encode ${t.eagerEncodeMs.toFixed(1)} ms host + submit ${
      t.eagerSubmitMs.toFixed(1)
    } ms, ${t.eagerDispatches} dispatches; step until sync ${t.eagerStepMs.toFixed(0)} ms (${
      imgs(t.eagerStepMs)
    } img/s)`,
  );
  console.log(
    `(b) replay:       encode + submit ${
      t.replayHostMs.toFixed(2)
    } ms host, ${t.replayDispatches} ` +
      `dispatches, ${t.submitsPerReplay} submit(s)`,
  );
  console.log(
    `(c) replayed step until sync: ${t.replayStepMs.toFixed(0)} ms = ${imgs(t.replayStepMs)} ` +
      `img/s, ${gfs(t.replayStepMs)} GFLOP/s (GEMM FLOPs); ${t.replayCpuMs.toFixed(0)} ms of ` +
      `process CPU = ${gfs(t.replayCpuMs)} GFLOP per CPU-s; load average ${
        Deno.loadavg()[0].toFixed(1)
      }`,
  );
  const floor = await syncFloorMs();
  console.log(`    (an empty submit + sync costs ${floor.toFixed(1)} ms)`);
  const out: Record<string, unknown> = {
    adapter: a.description || a.device,
    ...t,
    syncFloorMs: floor,
  };
  if (!args.includes("--no-breakdown")) {
    const mm = await matmulReference();
    console.log(
      `    (matmul 1024^3 in this run: ${mm.gflops.toFixed(2)} GFLOP/s, ${
        mm.cpuGflops.toFixed(2)
      } GFLOP per CPU-s): the step at ${
        (f.train * batch / t.replayStepMs / 1e6 / mm.gflops).toFixed(2)
      } of it (wall), ${(f.train * batch / t.replayCpuMs / 1e6 / mm.cpuGflops).toFixed(2)} (CPU)`,
    );
    out.matmulGflops = mm;
    const rows = await kernelBreakdown(
      recorded.records,
      (r) => r.name,
      (n) => kernelFlops(n, f, batch),
    );
    printBreakdown(rows, t.replayStepMs, "(d) GPU time by kernel (each group replayed alone)", mm);
    out.kernels = rows;
    if (args.includes("--by-shape")) {
      const gemm = recorded.records.filter((r) =>
        r.kind === "dispatch" && /^conv2d|^matmul|gemm/.test(r.name)
      );
      const shapeRows = await kernelBreakdown(
        gemm,
        (r) => `${r.name} [${r.x},${r.y},${r.z}] ${((r.flops ?? 0) / 1e6).toFixed(0)} MF`,
        () => null,
      );
      printBreakdown(shapeRows, t.replayStepMs, "GEMM launches by workgroup grid and FLOPs", mm);
      out.gemmByGrid = shapeRows;
    }
    // (e) The same, per dispatch, from timestamp queries (device time, no sync in it).
    const tsMatmul = await matmulTimestampGflops();
    const times = await dispatchTimes(recorded.records);
    if (times && tsMatmul) {
      const tsRows = groupDispatchTimes(
        recorded.records,
        times,
        (r) => r.name,
        (n) => kernelFlops(n, f, batch),
      );
      const tsStep = tsRows.reduce((a, r) => a + r.ms, 0);
      console.log(
        `\n(e) timestamp queries: the step's dispatches take ${tsStep.toFixed(1)} ms of device ` +
          `time = ${(f.train * batch / tsStep / 1e6).toFixed(2)} GFLOP/s; matmul 1024^3 ${
            tsMatmul.toFixed(2)
          } GFLOP/s: the step at ${(f.train * batch / tsStep / 1e6 / tsMatmul).toFixed(2)} of it`,
      );
      const ref = { gflops: tsMatmul, cpuGflops: NaN };
      printBreakdown(tsRows, tsStep, "(e) GPU time by kernel (timestamp queries, best of 3)", ref);
      out.timestampKernels = tsRows;
      out.timestampMatmulGflops = tsMatmul;
      if (args.includes("--by-shape")) {
        const shapeRows = groupDispatchTimes(
          recorded.records,
          times,
          (r) =>
            (r.flops ?? 0) > 0
              ? `${r.name} [${r.x},${r.y},${r.z}] ${((r.flops ?? 0) / 1e6).toFixed(0)} MF`
              : null,
          () => null,
        );
        printBreakdown(shapeRows, tsStep, "(e) GEMM launches by grid (timestamp queries)", ref);
        out.timestampGemmByGrid = shapeRows;
      }
    } else {
      console.log("\n(e) no timestamp-query on this device: no per-dispatch GPU times");
    }
  }
  recorded.dispose();
  s.step.dispose();
  if (args.includes("--json")) console.log(JSON.stringify(out));
}

if (import.meta.main) await main();
