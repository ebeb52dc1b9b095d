// Test files run in parallel in one process (`deno test --parallel`), which has one environment:
// a variable one file sets reaches every other file running then or later. No test file sets or
// deletes one; a test that needs another environment runs a subprocess with it (`env:` of
// Deno.Command), and tuning for a test file goes through TUNING (tests/fast_compile.ts).
import { assertEquals } from "@std/assert";
import { fromFileUrl, join } from "jsr:@std/path@^1";

const TESTS = fromFileUrl(new URL(".", import.meta.url));
const SETS_ENV = /Deno\.env\.(set|delete)\s*\(/;

async function testSources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const path = join(dir, e.name);
    if (e.isDirectory) out.push(...await testSources(path));
    else if (e.name.endsWith(".ts")) out.push(path);
  }
  return out.sort();
}

Deno.test("tests: no test file changes the shared process environment", async () => {
  const offenders: string[] = [];
  for (const path of await testSources(TESTS)) {
    if (path.endsWith("shared_env_test.ts")) continue;
    const lines = (await Deno.readTextFile(path)).split("\n");
    lines.forEach((line, i) => {
      if (SETS_ENV.test(line)) {
        offenders.push(`${path.slice(TESTS.length)}:${i + 1}: ${line.trim()}`);
      }
    });
  }
  assertEquals(offenders, []);
});
