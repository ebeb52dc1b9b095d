// README.md's TypeScript blocks, as printed: Deno's doc-test runner (`deno test --doc README.md`)
// runs every block not marked `ignore` from a folder that holds tiny stand-ins for the dataset
// files the blocks read (a CIFAR-10 archive of 100 + 15 images in the official layout), with
// EPOCHS=1 so the main example (ResNet-32, ETF head, DR loss, summary, fit, evaluate) trains one
// epoch, with the small register tiles of TUNING.fastCompile. Blocks marked `ignore` (those that
// need a real download) are type-checked.
import { assert, assertStringIncludes } from "@std/assert";
import { writeCifar10Fixture } from "./fixtures/cifar_fixture.ts";
import { SUBPROCESS_ENV } from "./fast_compile.ts";

const root = decodeURIComponent(new URL("../", import.meta.url).pathname);
const readme = await Deno.readTextFile(`${root}README.md`);

interface Block {
  info: string;
  code: string;
}

/** The fenced blocks of a markdown text whose language is TypeScript. */
function typescriptBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  for (const m of markdown.matchAll(/^```([^\n]*)\n([\s\S]*?)^```$/gm)) {
    const info = m[1].trim();
    if (/^(ts|typescript)(\s|$)/.test(info)) blocks.push({ info, code: m[2] });
  }
  return blocks;
}

const blocks = typescriptBlocks(readme);
const run = blocks.filter((b) => !b.info.split(/\s+/).includes("ignore"));
const ignored = blocks.filter((b) => b.info.split(/\s+/).includes("ignore"));

async function deno(args: string[], cwd: string, env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    env: { ...SUBPROCESS_ENV, ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { ok: out.success, text };
}

Deno.test("README: the library example is a runnable block with summary, fit and evaluate", () => {
  const main = run.find((b) => b.code.includes("resnet32(") && b.code.includes("model.summary()"));
  assert(main, "README.md has no runnable block with resnet32(...) and model.summary()");
  assertStringIncludes(main.code, "model.fit(");
  assertStringIncludes(main.code, "model.evaluate(");
});

Deno.test("README: every TypeScript block runs as printed (deno test --doc README.md)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "collapse-readme-" });
  try {
    await writeCifar10Fixture(`${dir}/cifar-10-binary.tar.gz`);
    const r = await deno(
      ["test", "--doc", "-A", "--config", `${root}deno.json`, `${root}README.md`],
      dir,
      { EPOCHS: "1" },
    );
    assert(r.ok, r.text);
    assertStringIncludes(r.text, `ok | ${run.length} passed | 0 failed`);
    // The parameter count the main example's comment states is the one summary() prints.
    for (const b of run) {
      const claim = b.code.match(/model\.summary\(\); \/\/ (Trainable params: [\d,]+)/);
      if (claim) assertStringIncludes(r.text, claim[1]);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("README: blocks marked ignore type-check", async () => {
  if (ignored.length === 0) return;
  const dir = await Deno.makeTempDir({ prefix: "collapse-readme-check-" });
  try {
    const mod = new URL("../mod.ts", import.meta.url).href;
    const files = ignored.map((b, i) => {
      const path = `${dir}/block_${i}.ts`;
      Deno.writeTextFileSync(path, b.code.replaceAll('"./mod.ts"', JSON.stringify(mod)));
      return path;
    });
    const r = await deno(["check", "--config", `${root}deno.json`, ...files], root);
    assert(r.ok, r.text);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
