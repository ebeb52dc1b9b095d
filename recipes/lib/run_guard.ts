/**
 * Runs one recipe for a sweep (`recipes/paper_table.ts`) and ties its life to the sweep's: the
 * recipe is this process's child, its output goes to a log file, and when this process's stdin
 * closes (the sweep holds the other end of the pipe, so this happens when the sweep exits or is
 * killed, even with kill -9) the recipe is killed at once. A killed run loses at most its epoch in
 * flight (the recipe checkpoints every epoch) and the next sweep resumes it; no run goes on alone
 * and races a resumed copy of itself. Exits with the recipe's exit code.
 *
 *   deno run -A recipes/lib/run_guard.ts LOG_FILE RECIPE_FILE [RECIPE_ARGS...]
 *
 * @module
 */

if (import.meta.main) {
  const [log, recipe, ...args] = Deno.args;
  if (!log || !recipe) {
    console.error("usage: deno run -A recipes/lib/run_guard.ts LOG_FILE RECIPE_FILE [ARGS...]");
    Deno.exit(2);
  }
  const out = await Deno.open(log, { append: true, create: true, write: true });
  const err = await Deno.open(log, { append: true, create: true, write: true });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", recipe, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const piping = Promise.all([
    child.stdout.pipeTo(out.writable),
    child.stderr.pipeTo(err.writable),
  ]).catch(() => {});
  // The sweep's end of stdin: EOF means the sweep is gone.
  (async () => {
    try {
      for await (const _ of Deno.stdin.readable) { /* the sweep writes nothing */ }
    } catch { /* a broken pipe is an EOF too */ }
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
  })();
  const status = await child.status;
  await piping;
  Deno.exit(status.signal ? 128 + (status.signal === "SIGKILL" ? 9 : 15) : status.code);
}
