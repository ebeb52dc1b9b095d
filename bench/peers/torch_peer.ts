/**
 * Runs the PyTorch peer (`torch_cuda.py`, same directory) in a subprocess and parses its JSON lines:
 * one record per (model, batch, head, mode) case, measured, skipped with a reason, or failed.
 * Imports nothing outside Deno's runtime, so the bare-Deno GPU scripts can use it.
 * @module
 */

/** One case of the PyTorch peer, as torch_cuda.py prints it. */
export interface TorchCase {
  framework: "pytorch";
  model: string;
  batch: number;
  head: string;
  mode: string;
  what: "train" | "infer";
  torch?: string;
  device?: string;
  imagesPerSec?: number;
  msPerStep?: number;
  /** Process CPU ms per step (all threads). */
  cpuMsPerStep?: number;
  steps?: number;
  /** Why the case did not run (e.g. no torch.compile in this torch version). */
  skipped?: string;
  /** The exception of a case that failed. */
  error?: string;
}

/** Options of {@link runTorchPeer}: torch_cuda.py's flags. */
export interface TorchPeerOptions {
  /** The Python with torch (default `$COLLAPSE_TORCH_PYTHON`, else `python3` on the PATH). */
  python?: string;
  device?: "cuda" | "cpu";
  models?: string[];
  batches32?: number[];
  batches50?: number[];
  heads?: string[];
  heads50?: string[];
  modes?: string[];
  what?: "train" | "infer";
  minSeconds?: number;
  maxSteps?: number;
  quick?: boolean;
  /** Skip the remaining cases after this many seconds. */
  budgetSeconds?: number;
  /** CPU threads (torch.set_num_threads; default: every core). */
  threads?: number;
  /** Progress lines of the subprocess (its stderr); default: inherited. */
  quiet?: boolean;
}

/** The result: the cases, or why the peer could not run at all (no Python, no torch). */
export interface TorchPeerResult {
  cases: TorchCase[];
  /** Set when the script did not run or printed nothing (e.g. "No module named 'torch'"). */
  failure?: string;
}

function defaultPython(): string {
  return Deno.env.get("COLLAPSE_TORCH_PYTHON") ?? "python3";
}

/** Runs torch_cuda.py with `o` and returns its cases (never throws for a missing torch). */
export async function runTorchPeer(o: TorchPeerOptions = {}): Promise<TorchPeerResult> {
  const script = new URL("./torch_cuda.py", import.meta.url).pathname;
  const args = [script];
  const list = (flag: string, v?: (string | number)[]) => {
    if (v && v.length) args.push(`--${flag}`, v.join(","));
  };
  if (o.device) args.push("--device", o.device);
  list("models", o.models);
  list("batches32", o.batches32);
  list("batches50", o.batches50);
  list("heads", o.heads);
  list("heads50", o.heads50);
  list("modes", o.modes);
  if (o.what) args.push("--what", o.what);
  if (o.minSeconds !== undefined) args.push("--min-seconds", String(o.minSeconds));
  if (o.maxSteps !== undefined) args.push("--max-steps", String(o.maxSteps));
  if (o.quick) args.push("--quick");
  if (o.threads) args.push("--threads", String(o.threads));
  if (o.budgetSeconds) args.push("--budget-seconds", String(o.budgetSeconds));
  const python = o.python ?? defaultPython();
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(python, {
      args,
      stdout: "piped",
      stderr: o.quiet ? "piped" : "inherit",
    }).output();
  } catch (e) {
    return { cases: [], failure: `${python}: ${e instanceof Error ? e.message : e}` };
  }
  const cases: TorchCase[] = [];
  for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      cases.push(JSON.parse(line));
    } catch { /* not a result line */ }
  }
  if (cases.length === 0) {
    const err = o.quiet ? new TextDecoder().decode(out.stderr).trim().split("\n").pop() : "";
    return { cases, failure: `${python} torch_cuda.py exited ${out.code}${err ? `: ${err}` : ""}` };
  }
  return { cases };
}
