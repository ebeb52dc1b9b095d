// Check script (not part of `deno task test`: it takes minutes): runs a short CIFAR-10-LT recipe
// and a short CUB recipe (JPEGs, decoded by sharp) many times in a row as real processes on the
// test fixtures and counts their exit statuses. A finished run must exit 0 every time; a crash at
// process teardown (a signal after "done:") is counted and shown.
//
//     deno run -A tests/exit_check.ts [--runs 20] [--recipes cifar10_lt,cub]
//
// Exits 0 when every run exited 0, 1 otherwise.
// deno-lint-ignore no-import-prefix -- a standalone script with full specifiers
import { parseArgs } from "jsr:@std/cli@^1.0.32/parse-args";
import { writeCifar10Fixture } from "./fixtures/cifar_fixture.ts";
import { writeCubFixture } from "./fixtures/cub_fixture.ts";
import { SUBPROCESS_ENV } from "./fast_compile.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const args = parseArgs(Deno.args, { string: ["runs", "recipes"] });
const runs = Number(args.runs ?? 20);
const recipes = String(args.recipes ?? "cifar10_lt,cub").split(",");

const TMP = await Deno.makeTempDir({ prefix: "collapse_exit_" });
const dec = new TextDecoder();

async function fixture(recipe: string): Promise<string[]> {
  const dir = `${TMP}/${recipe}_data`;
  await Deno.mkdir(dir, { recursive: true });
  if (recipe === "cifar10_lt") {
    await writeCifar10Fixture(`${dir}/cifar-10-binary.tar.gz`, 60, 40, 7);
    return ["--data-dir", dir, "--limit", "16", "--batch-size", "8", "--epochs", "1"];
  }
  if (recipe === "cub") {
    await writeCubFixture(`${dir}/CUB_200_2011.tgz`, false);
    return [
      "--data-dir",
      dir,
      "--image-size",
      "32",
      "--limit",
      "6",
      "--batch-size",
      "3",
      "--epochs",
      "1",
    ];
  }
  throw new Error(`exit_check: no fixture for ${recipe}`);
}

async function help(recipe: string): Promise<string> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}recipes/${recipe}.ts`, "--help"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return dec.decode(r.stdout);
}

let failures = 0;
for (const recipe of recipes) {
  const base = await fixture(recipe);
  // Fixtures are not the official release: say so where the recipe verifies archives.
  if ((await help(recipe)).includes("--no-verify")) base.push("--no-verify");
  const counts = new Map<string, number>();
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) {
    const out = `${TMP}/${recipe}_run${i}`;
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}recipes/${recipe}.ts`, ...base, "--out", out, "--workers", "0"],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
      env: SUBPROCESS_ENV,
    }).output();
    const stdout = dec.decode(r.stdout);
    const key = r.signal ? `signal ${r.signal}` : `exit ${r.code}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    const finished = stdout.includes("done: best top-1");
    console.log(
      `${recipe} run ${i + 1}/${runs}: ${key}${finished ? " (after its done line)" : ""}`,
    );
    if (r.code !== 0 || r.signal) {
      failures++;
      console.log(dec.decode(r.stderr).split("\n").slice(-8).join("\n"));
    }
    await Deno.remove(out, { recursive: true }).catch(() => {});
  }
  const secs = ((performance.now() - t0) / 1000).toFixed(0);
  console.log(
    `${recipe}: ${[...counts].map(([k, n]) => `${n} x ${k}`).join(", ")} (${runs} runs, ${secs} s)`,
  );
}
await Deno.remove(TMP, { recursive: true });
Deno.exit(failures === 0 ? 0 : 1);
