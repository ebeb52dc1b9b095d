// Tests data/download.ts against a local HTTP server: good file, checksum mismatch, a transfer
// cut half way then resumed with Range, a 404, offline use of a verified local copy, and md5.

import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { ensureFile } from "../data/download.ts";
import { fetchDataset } from "../data/catalog.ts";
import { createHasher, hashFile } from "../data/archive/checksum.ts";

const SIZE = 300_000;
const content = new Uint8Array(SIZE).map((_, i) => (i * 31 + (i >> 9)) & 255);
const md5Of = (b: Uint8Array) => {
  const h = createHasher("md5");
  h.update(b);
  return h.hex();
};
const MD5 = md5Of(content);

interface Server {
  base: string;
  ranges: (string | null)[];
  close(): Promise<void>;
}

function serve(): Server {
  const ranges: (string | null)[] = [];
  let cutOnce = true;
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    (req) => {
      const url = new URL(req.url);
      const range = req.headers.get("range");
      ranges.push(range);
      if (url.pathname === "/missing.bin") return new Response("no", { status: 404 });
      const start = range ? Number(/bytes=(\d+)-/.exec(range)![1]) : 0;
      const body = content.subarray(start);
      const headers: Record<string, string> = { "content-length": String(body.length) };
      if (range) headers["content-range"] = `bytes ${start}-${SIZE - 1}/${SIZE}`;
      const status = range ? 206 : 200;
      if (url.pathname === "/cut.bin" && cutOnce) {
        cutOnce = false;
        const half = body.subarray(0, SIZE / 2);
        const stream = new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(half.slice());
          },
          pull(c) {
            c.close(); // fewer bytes than Content-Length: the client sees a cut transfer
          },
        });
        return new Response(stream, { status, headers });
      }
      if (url.pathname === "/norange.bin") {
        return new Response(content.slice(), { status: 200 });
      }
      return new Response(body.slice(), { status, headers });
    },
  );
  return {
    base: `http://127.0.0.1:${server.addr.port}`,
    ranges,
    close: async () => {
      ac.abort();
      await server.finished;
    },
  };
}

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}

/** assertRejects typed to Error. */
const rejects = (f: () => Promise<unknown>): Promise<Error> => assertRejects(f, Error);

const noNetwork: typeof fetch = () => Promise.reject(new TypeError("network disabled in test"));

Deno.test("md5/sha256 digests match known vectors", async () => {
  assertEquals(md5Of(new TextEncoder().encode("abc")), "900150983cd24fb0d6963f7d28e17f72");
  assertEquals(md5Of(new Uint8Array(0)), "d41d8cd98f00b204e9800998ecf8427e");
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/abc`, "abc");
    assertEquals(
      await hashFile(`${dir}/abc`, "sha256"),
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dataDir: option, then $COLLAPSE_DATA_DIR, then ~/.cache/collapse", async () => {
  // In a subprocess: test files run in parallel in one process, which shares its environment.
  const module = new URL("../data/download.ts", import.meta.url).href;
  const inherited = Deno.env.toObject();
  delete inherited.COLLAPSE_DATA_DIR;
  const dataDirIn = async (env: Record<string, string>, arg?: string) => {
    const code = `import { dataDir } from ${JSON.stringify(module)};` +
      `console.log(dataDir(${arg === undefined ? "" : JSON.stringify(arg)}));`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--no-lock", code],
      env: { ...inherited, ...env },
      clearEnv: true,
      stdout: "piped",
      stderr: "inherit",
    }).output();
    assert(out.success);
    return new TextDecoder().decode(out.stdout).trim();
  };
  const home = { HOME: "/home/someone" };
  assertEquals(
    await dataDirIn({ ...home, COLLAPSE_DATA_DIR: "/somewhere/data" }),
    "/somewhere/data",
  );
  assertEquals(
    await dataDirIn({ ...home, COLLAPSE_DATA_DIR: "/somewhere/data" }, "/explicit"),
    "/explicit",
  );
  assertEquals(await dataDirIn(home), "/home/someone/.cache/collapse");
});

Deno.test("ensureFile: download, verify, reuse offline, mismatch, 404, cut+resume", async (t) => {
  const srv = serve();
  const dir = await Deno.makeTempDir();
  try {
    await t.step("good file is downloaded, verified and renamed", async () => {
      const dest = await ensureFile({
        url: `${srv.base}/good.bin`,
        md5: MD5,
        size: SIZE,
        cacheDir: dir,
        progress: false,
      });
      assertEquals(dest, `${dir}/good.bin`);
      assertEquals(await Deno.readFile(dest), content);
      assert(!(await exists(`${dest}.part`)));
    });

    await t.step("a verified local copy is used without network", async () => {
      const dest = await ensureFile({
        url: `${srv.base}/good.bin`,
        md5: MD5,
        cacheDir: dir,
        fetch: noNetwork,
      });
      assertEquals(dest, `${dir}/good.bin`);
    });

    await t.step("checksum mismatch leaves nothing at dest and says what to do", async () => {
      const url = `${srv.base}/other.bin`;
      const err = await rejects(() =>
        ensureFile({ url, md5: "0".repeat(32), cacheDir: dir, progress: false })
      );
      assertStringIncludes(err.message, "md5");
      assertStringIncludes(err.message, url);
      assertStringIncludes(err.message, `${dir}/other.bin`);
      assert(!(await exists(`${dir}/other.bin`)));
      assert(!(await exists(`${dir}/other.bin.part`)));
    });

    await t.step("404 names the URL and destination, leaves no file", async () => {
      const url = `${srv.base}/missing.bin`;
      const err = await rejects(() =>
        ensureFile({ url, md5: MD5, cacheDir: dir, progress: false })
      );
      assertStringIncludes(err.message, "404");
      assertStringIncludes(err.message, url);
      assertStringIncludes(err.message, `put it at ${dir}/missing.bin`);
      assert(!(await exists(`${dir}/missing.bin`)));
      assert(!(await exists(`${dir}/missing.bin.part`)));
    });

    await t.step("offline names the file to fetch by hand", async () => {
      const err = await rejects(() =>
        ensureFile({
          url: "http://example.invalid/x/data.tgz",
          md5: MD5,
          cacheDir: dir,
          fetch: noNetwork,
        })
      );
      assertStringIncludes(err.message, "http://example.invalid/x/data.tgz");
      assertStringIncludes(err.message, `${dir}/data.tgz`);
    });

    await t.step("a transfer cut half way is resumed with Range", async () => {
      const url = `${srv.base}/cut.bin`;
      const n = srv.ranges.length;
      const err = await rejects(() =>
        ensureFile({ url, md5: MD5, size: SIZE, cacheDir: dir, progress: false })
      );
      assertStringIncludes(err.message, "resume");
      assert(!(await exists(`${dir}/cut.bin`)));
      const partial = (await Deno.stat(`${dir}/cut.bin.part`)).size;
      assert(partial > 0 && partial < SIZE, `partial ${partial}`);
      const dest = await ensureFile({ url, md5: MD5, size: SIZE, cacheDir: dir, progress: false });
      assertEquals(srv.ranges.slice(n), [null, `bytes=${partial}-`]);
      assertEquals(await Deno.readFile(dest), content);
      assert(!(await exists(`${dest}.part`)));
    });

    await t.step("a server ignoring Range (200) restarts the file", async () => {
      await Deno.writeFile(`${dir}/norange.bin.part`, content.subarray(0, 1000).map((x) => ~x));
      const dest = await ensureFile({
        url: `${srv.base}/norange.bin`,
        md5: MD5,
        cacheDir: dir,
        progress: false,
      });
      assertEquals(await Deno.readFile(dest), content);
    });

    await t.step("a wrong file at dest is moved aside and replaced", async () => {
      await Deno.writeTextFile(`${dir}/good.bin`, "not it");
      const dest = await ensureFile({
        url: `${srv.base}/good.bin`,
        md5: MD5,
        cacheDir: dir,
        progress: false,
      });
      assertEquals(await Deno.readFile(dest), content);
      assertEquals(await Deno.readTextFile(`${dest}.bad`), "not it");
    });

    await t.step("catalog entries without a URL explain the manual step", async () => {
      const err = await rejects(() => fetchDataset("imagenet-lt-train", { cacheDir: dir }));
      assertStringIncludes(err.message, `${dir}/ImageNet_LT_train.txt`);
      assertStringIncludes(err.message, "OLTR");
    });
  } finally {
    await srv.close();
    await Deno.remove(dir, { recursive: true });
  }
});
