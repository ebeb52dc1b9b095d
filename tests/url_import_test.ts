// mod.ts imported by URL from a static file server, as the README describes: with `.ts` served as
// `application/typescript` a bare `deno eval` loads the library; with the type Python's
// `http.server` gives `.ts` from Debian's MIME table (`text/vnd.trolltech.linguist`, Qt Linguist
// files) Deno refuses the module.
import { assert, assertStringIncludes } from "@std/assert";

const root = decodeURIComponent(new URL("../", import.meta.url).pathname);

/** Serves the repository on a free port; `.ts` files get `tsType`. */
function serveRepo(tsType: string): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    if (path.includes("..")) return new Response("bad path", { status: 400 });
    try {
      const body = await Deno.readFile(`${root}${path.slice(1)}`);
      const type = path.endsWith(".ts") ? tsType : "application/octet-stream";
      return new Response(body, { headers: { "content-type": type } });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
}

/**
 * A Deno cache folder whose remote-module cache starts empty (so every module comes from the
 * server) and that shares the npm cache of this process's Deno folder (no downloads).
 */
async function freshRemoteCache(): Promise<string> {
  const info = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output();
  const { npmCache } = JSON.parse(new TextDecoder().decode(info.stdout)) as { npmCache: string };
  const dir = await Deno.makeTempDir({ prefix: "collapse-url-import-" });
  await Deno.symlink(npmCache, `${dir}/npm`);
  return dir;
}

async function importByUrl(url: string): Promise<{ ok: boolean; text: string }> {
  const code = `const m = await import(${JSON.stringify(url)});\n` +
    "console.log(m.VERSION, m.exponentialCounts(5000, 10, 0.01).at(-1));";
  const denoDir = await freshRemoteCache();
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--allow-import", code],
      cwd: denoDir,
      env: { NO_COLOR: "1", DENO_DIR: denoDir },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { ok: out.success, text: dec.decode(out.stdout) + dec.decode(out.stderr) };
  } finally {
    await Deno.remove(denoDir, { recursive: true });
  }
}

Deno.test("URL import: mod.ts served with .ts as application/typescript loads", async () => {
  const server = serveRepo("application/typescript; charset=utf-8");
  try {
    const r = await importByUrl(`http://127.0.0.1:${server.addr.port}/mod.ts`);
    assert(r.ok, r.text);
    assertStringIncludes(r.text, "0.1.0 50");
  } finally {
    await server.shutdown();
  }
});

Deno.test("URL import: .ts served with another content type is refused", async () => {
  const server = serveRepo("text/vnd.trolltech.linguist");
  try {
    const r = await importByUrl(`http://127.0.0.1:${server.addr.port}/mod.ts`);
    assert(!r.ok, r.text);
    assertStringIncludes(r.text, "Expected a JavaScript or TypeScript module");
  } finally {
    await server.shutdown();
  }
});
