/**
 * Check script (not part of `deno task test`: it takes minutes): runs short recipe runs on
 * fixtures many times in a row, each in a fresh process, and reports every exit status, so a crash
 * at process teardown (a signal after "done:") cannot hide. Exits 1 if any run did not exit 0.
 *
 *     deno run -A tests/repeat_runs_check.ts [--runs 20] [--recipes cifar10_lt,cub]
 *
 * The CIFAR-10 run never loads sharp; the CUB run decodes its JPEGs with sharp in the loader's
 * worker and resizes them with sharp in the main thread while preparing the shards (the first run;
 * later runs reuse the shards, so `--fresh` prepares them again every time).
 *
 * @module
 */

// deno-lint-ignore no-import-prefix -- scripts use full specifiers like the library
import { parseArgs } from "jsr:@std/cli@^1.0.32/parse-args";
import { writeCifar10Fixture } from "./fixtures/cifar_fixture.ts";
import { writeCubFixture } from "./fixtures/cub_fixture.ts";

const args = parseArgs(Deno.args, {
  string: ["runs", "recipes"],
  boolean: ["fresh"],
  default: { runs: "20", recipes: "cifar10_lt,cub" },
});
const runs = Number(args.runs);
const recipes = String(args.recipes).split(",");
const ROOT = new URL("..", import.meta.url).pathname;
const TMP = await Deno.makeTempDir({ prefix: "collapse_repeat_" });
const data = `${TMP}/data`;
await Deno.mkdir(data);
await writeCifar10Fixture(`${data}/cifar-10-binary.tar.gz`, 60, 40, 7);
await writeCubFixture(`${data}/CUB_200_2011.tgz`, false);

const flags: Record<string, string[]> = {
  cifar10_lt: ["--limit", "32", "--batch-size", "16"],
  cub: ["--limit", "6", "--batch-size", "3", "--image-size", "32"],
};
let bad = 0;
for (const recipe of recipes) {
  const codes: string[] = [];
  for (let i = 0; i < runs; i++) {
    if (args.fresh) await Deno.remove(`${data}/prepared`, { recursive: true }).catch(() => {});
    const out = `${TMP}/${recipe}_${i}`;
    const r = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${ROOT}recipes/${recipe}.ts`,
        ...["--data-dir", data, "--out", out, "--epochs", "1", "--no-verify"],
        ...(flags[recipe] ?? []),
      ],
      env: { COLLAPSE_TUNING: "fast-compile", NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const done = new TextDecoder().decode(r.stdout).includes("done: best top-1");
    codes.push(r.signal ? `${r.signal}` : String(r.code));
    if (r.code !== 0 || !done) {
      bad++;
      console.error(`${recipe} run ${i + 1}: exit ${r.code}${r.signal ? ` (${r.signal})` : ""}`);
      console.error(new TextDecoder().decode(r.stderr).split("\n").slice(-8).join("\n"));
    }
    await Deno.remove(out, { recursive: true }).catch(() => {});
  }
  console.log(`${recipe}: ${runs} runs, exit statuses ${codes.join(" ")}`);
}
await Deno.remove(TMP, { recursive: true });
if (bad) {
  console.log(`${bad} run(s) did not exit 0`);
  Deno.exit(1);
}
console.log("every run exited 0");
