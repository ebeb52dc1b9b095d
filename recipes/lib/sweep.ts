/**
 * Runs the runs of a grid as recipe subprocesses, `parallel` at a time, each in its own folder
 * under the sweep root and each through `run_guard.ts` (its output in `<root>/logs/<run>.log`; the
 * run dies with the sweep). Resumable: a finished run (every epoch in its metrics.jsonl, its
 * report written) is never started again, a started one is continued with `--resume` from its
 * last checkpoint, so a sweep killed at any moment loses at most the epoch in flight of each run
 * in flight. The settings every run shares are kept in `<root>/sweep.json` and must not change
 * between invocations (the filters may).
 *
 * @module
 */

// deno-lint-ignore no-import-prefix -- library code uses full specifiers (importable by URL)
import { join } from "jsr:@std/path@^1/join";
import { writeFileAtomic } from "../../nn/io/atomic_file.ts";
import {
  type GridRun,
  recipeOf,
  recipesTakeBackbone,
  runArgs,
  runName,
  runState,
  type SweepSettings,
} from "./paper_grid.ts";

/** File of the sweep's shared settings under the root. */
export const SWEEP_FILE = "sweep.json";

/** How one run of a sweep ended (or why it was not started). */
export interface RunOutcome {
  run: GridRun;
  name: string;
  status: "finished-before" | "finished" | "failed" | "unavailable";
  /** Exit code of a failed run; the reason of an unavailable one. */
  detail?: string;
  seconds?: number;
}

/** Options of {@link runSweep}. */
export interface SweepOptions {
  root: string;
  runs: readonly GridRun[];
  settings: SweepSettings;
  dataDir?: string;
  /** Recipe processes at once (default 1). */
  parallel?: number;
  /** Progress lines. */
  log?: (line: string) => void;
  /** Called after each run that ended (e.g. to rewrite the table). */
  onRunEnd?: (o: RunOutcome) => Promise<void> | void;
}

/**
 * Checks `<root>/sweep.json` against `settings` (writing it on the first invocation unless
 * `dryRun`); returns a message when the root holds a sweep made with other settings.
 */
export async function checkSweepSettings(
  root: string,
  settings: SweepSettings,
  options: { dryRun?: boolean } = {},
): Promise<string | undefined> {
  const path = join(root, SWEEP_FILE);
  const want = {
    epochs: settings.epochs ?? null,
    limit: settings.limit ?? null,
    batchSize: settings.batchSize ?? null,
    evalEvery: settings.evalEvery ?? null,
  };
  let have: Record<string, unknown> | undefined;
  try {
    have = JSON.parse(await Deno.readTextFile(path)).settings;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (have) {
    const diff = Object.entries(want).filter(([k, v]) => (have![k] ?? null) !== v);
    if (diff.length) {
      return `${root} holds a sweep made with ` +
        diff.map(([k, v]) => `${k} ${have![k] ?? "default"} (now ${v ?? "default"})`).join(", ") +
        "; rerun it with the same settings, or choose another --out";
    }
    return undefined;
  }
  if (options.dryRun) return undefined;
  await Deno.mkdir(root, { recursive: true });
  await writeFileAtomic(
    path,
    JSON.stringify({ createdAt: new Date().toISOString(), settings: want }, null, 2) + "\n",
  );
  return undefined;
}

const GUARD = new URL("./run_guard.ts", import.meta.url);
const RECIPES_DIR = new URL("../", import.meta.url);

/** Runs the sweep; resolves when every run has ended. */
export async function runSweep(o: SweepOptions): Promise<RunOutcome[]> {
  const log = o.log ?? (() => {});
  const logs = join(o.root, "logs");
  await Deno.mkdir(logs, { recursive: true });
  const outcomes: RunOutcome[] = [];
  const queue: { run: GridRun; resume: boolean }[] = [];
  for (const run of o.runs) {
    const name = runName(run);
    const spec = recipeOf(run.dataset);
    if (run.backbone !== "resnet32" && !recipesTakeBackbone(spec)) {
      outcomes.push({
        run,
        name,
        status: "unavailable",
        detail: `recipes/${spec.name}.ts has no --backbone flag in this checkout`,
      });
      continue;
    }
    const state = await runState(join(o.root, name));
    if (state.status === "finished") outcomes.push({ run, name, status: "finished-before" });
    else queue.push({ run, resume: state.status === "started" });
  }
  const total = queue.length;
  log(
    `collapse: paper_table: ${o.runs.length} runs; ${
      outcomes.filter((x) => x.status === "finished-before").length
    } finished earlier, ${total} to run (${queue.filter((q) => q.resume).length} resumed), ${
      o.parallel ?? 1
    } at a time`,
  );
  let started = 0;
  const worker = async () => {
    while (queue.length) {
      const { run, resume } = queue.shift()!;
      const name = runName(run);
      const i = ++started;
      const spec = recipeOf(run.dataset);
      const args = runArgs(run, join(o.root, name), o.settings, o.dataDir);
      if (resume) args.push("--resume");
      log(`[${i}/${total}] ${name}: ${resume ? "resuming" : "starting"}`);
      const t0 = performance.now();
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          GUARD.href,
          join(logs, `${name}.log`),
          new URL(`${spec.name}.ts`, RECIPES_DIR).href,
          ...args,
        ],
        stdin: "piped", // held open: the guard kills the run when this process is gone
        stdout: "null",
        stderr: "null",
      }).spawn();
      const status = await child.status;
      try {
        await child.stdin.close();
      } catch { /* already closed */ }
      const seconds = (performance.now() - t0) / 1000;
      const outcome: RunOutcome = status.success
        ? { run, name, status: "finished", seconds }
        : { run, name, status: "failed", detail: `exit code ${status.code}`, seconds };
      log(
        `[${i}/${total}] ${name}: ${
          status.success ? "finished" : `FAILED (${outcome.detail}; see logs/${name}.log)`
        } in ${seconds.toFixed(1)} s`,
      );
      outcomes.push(outcome);
      await o.onRunEnd?.(outcome);
    }
  };
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(o.parallel ?? 1, total || 1)) }, worker),
  );
  return outcomes;
}
