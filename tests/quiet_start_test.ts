// A quiet start: on a fresh Deno cache, a CIFAR recipe's --help and an import of mod.ts fetch no
// sharp (it is loaded on the first JPEG only) and print no "Ignored build scripts" box; without
// XDG_RUNTIME_DIR, acquiring the adapter prints no Mesa/Wayland `error:` line; with a Vulkan
// driver installed, OpenGL's EGL is not loaded.
import { assert, assertEquals, assertStringIncludes } from "@std/assert";

const ROOT = new URL("..", import.meta.url).pathname;
const TMP = await Deno.makeTempDir({ prefix: "collapse_quiet_" });
const dec = new TextDecoder();

async function npmCache(): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output();
  return JSON.parse(dec.decode(out.stdout)).npmCache;
}

/**
 * A fresh DENO_DIR that holds only fflate (the one npm package the non-JPEG path needs), so the
 * test runs offline: fetching anything else shows as a download (or fails without network).
 */
async function freshDenoDir(): Promise<string> {
  const dir = `${TMP}/deno_dir`;
  const from = `${await npmCache()}/registry.npmjs.org/fflate`;
  const to = `${dir}/npm/registry.npmjs.org/fflate`;
  await Deno.mkdir(to, { recursive: true });
  const copy = async (a: string, b: string) => {
    for await (const e of Deno.readDir(a)) {
      if (e.isDirectory) {
        await Deno.mkdir(`${b}/${e.name}`, { recursive: true });
        await copy(`${a}/${e.name}`, `${b}/${e.name}`);
      } else if (e.isFile) await Deno.copyFile(`${a}/${e.name}`, `${b}/${e.name}`);
    }
  };
  await copy(from, to);
  return dir;
}

async function run(args: string[], env: Record<string, string>, clearEnv = false) {
  const r = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    clearEnv,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

Deno.test("a fresh cache: --help and importing mod.ts fetch no sharp, print no box", async () => {
  const denoDir = await freshDenoDir();
  // --no-lock: a fresh clone has no deno.lock (it is not committed); a local one lists every npm
  // package any test ever used, and Deno would install them all.
  const help = await run(["run", "--no-lock", "-A", "recipes/cifar10_lt.ts", "--help"], {
    DENO_DIR: denoDir,
  });
  assertEquals(help.code, 0, help.err);
  assertStringIncludes(help.out, "Usage: deno run -A recipes/cifar10_lt.ts");
  assertStringIncludes(help.out, "--no-verify");
  assert(!/sharp|Warning|Ignored build scripts/i.test(help.err), help.err);
  await Deno.writeTextFile(`${TMP}/import_mod.ts`, `import "${ROOT}mod.ts";\nconsole.log("ok");\n`);
  const imp = await run(["run", "--no-lock", "-A", `${TMP}/import_mod.ts`], { DENO_DIR: denoDir });
  assertEquals(imp.code, 0, imp.err);
  assertEquals(imp.out.trim(), "ok");
  assert(!/sharp|Warning|Ignored build scripts/i.test(imp.err), imp.err);
  const cached = await Array.fromAsync(Deno.readDir(`${denoDir}/npm/registry.npmjs.org`));
  assertEquals(cached.map((e) => e.name), ["fflate"]);
});

Deno.test("without XDG_RUNTIME_DIR the adapter comes up without an error line", async () => {
  const env = Deno.env.toObject();
  delete env.XDG_RUNTIME_DIR;
  delete env.DENO_WEBGPU_BACKEND;
  await Deno.writeTextFile(
    `${TMP}/init.ts`,
    `import { initDevice } from "${ROOT}gpu/device.ts";\nawait initDevice();\n` +
      `const d = Deno.env.get("XDG_RUNTIME_DIR")!;\n` +
      `const egl = Deno.readTextFileSync("/proc/self/maps").includes("libEGL");\n` +
      `console.log(d, (Deno.statSync(d).mode! & 0o777).toString(8), ` +
      `Deno.env.get("DENO_WEBGPU_BACKEND") ?? "-", egl);\n`,
  );
  const r = await run(["run", "-A", `${TMP}/init.ts`], env, true);
  assertEquals(r.code, 0, r.err);
  assert(!/error:/i.test(r.err), r.err);
  const [dir, mode, backend, egl] = r.out.trim().split(" ");
  assert(dir.startsWith("/"), r.out);
  assertEquals(mode, "700");
  // With a Vulkan driver, only the Vulkan backend: OpenGL's EGL (whose per-thread state corrupts
  // the heap when threads exit during process exit) is never loaded.
  const icds = await Array.fromAsync(Deno.readDir("/usr/share/vulkan/icd.d")).catch(() => []);
  if (Deno.build.os === "linux" && icds.some((e) => e.name.endsWith(".json"))) {
    assertEquals(backend, "vulkan");
    assertEquals(egl, "false", "libEGL is not loaded");
  }
});

Deno.test("quiet start: cleanup", async () => {
  await Deno.remove(TMP, { recursive: true });
});
