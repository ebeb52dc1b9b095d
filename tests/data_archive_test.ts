// Tests data/archive: tar parsing (ustar, GNU long names, pax paths, directories, empty and
// odd-sized members), gzip auto-detection, skipping unread content, error reporting on
// truncated/corrupt archives, and bounded memory while streaming a ~300 MB .tar.gz.

import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { tarEntries } from "../data/archive/tar_stream.ts";
import { ByteReader, forEachRecord } from "../data/archive/byte_reader.ts";
import { Gzip } from "npm:fflate@^0.8.2";
import { gzip, makeTar, type TarFile, tarHeader, writeTarFile } from "./fixtures/tar_writer.ts";

const enc = new TextEncoder();
const bytes = (n: number, seed: number) => new Uint8Array(n).map((_, i) => (i * seed + 7) & 255);

const FILES: TarFile[] = [
  { name: "root/", typeflag: "5" },
  { name: "root/empty.txt", data: new Uint8Array(0) },
  { name: "root/a.bin", data: bytes(511, 3) },
  { name: "root/b.bin", data: bytes(512, 5) },
  { name: "root/c.bin", data: bytes(70_001, 11) },
  { name: "root/" + "long_directory_name/".repeat(6) + "file.jpg", data: bytes(1000, 13) },
  { name: "root/pax/" + "p".repeat(120) + ".txt", data: enc.encode("pax named"), pax: true },
];

async function collect(src: string | ReadableStream<Uint8Array>) {
  const out: { name: string; type: string; data: Uint8Array }[] = [];
  for await (const e of tarEntries(src)) {
    out.push({ name: e.name, type: e.type, data: await e.bytes() });
  }
  return out;
}

Deno.test("tar: members, long names, pax paths, plain and gzipped, file or stream", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeTarFile(`${dir}/x.tar.gz`, FILES, true);
    await writeTarFile(`${dir}/x.tar`, FILES, false);
    for (
      const src of [
        `${dir}/x.tar.gz`,
        `${dir}/x.tar`,
        ReadableStream.from([makeTar(FILES)]),
      ]
    ) {
      const got = await collect(src);
      assertEquals(got.map((g) => g.name), FILES.map((f) => f.name));
      assertEquals(got[0].type, "directory");
      for (let i = 1; i < FILES.length; i++) {
        assertEquals(got[i].type, "file");
        assertEquals(got[i].data, FILES[i].data);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tar: unread or partly read members are skipped", async () => {
  const stream = ReadableStream.from([makeTar(FILES)]);
  const seen: string[] = [];
  for await (const e of tarEntries(stream)) {
    seen.push(e.name);
    if (e.name.endsWith("c.bin")) {
      for await (const c of e.chunks()) {
        assert(c.length > 0);
        break; // read one piece only
      }
    }
    if (e.name.endsWith("file.jpg")) assertEquals(await e.bytes(), FILES[5].data);
    if (e.name.endsWith("a.bin")) {
      assertEquals(await new Response(e.readable).bytes(), FILES[2].data);
    }
  }
  assertEquals(seen.length, FILES.length);
});

Deno.test("tar: truncated and corrupt archives name the file and the member", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const tar = makeTar(FILES);
    // Cut inside c.bin.
    await Deno.writeFile(`${dir}/cut.tar`, tar.subarray(0, 5000));
    let err = await assertRejects(() => collect(`${dir}/cut.tar`), Error);
    assertStringIncludes(err.message, `${dir}/cut.tar`);
    assertStringIncludes(err.message, "root/c.bin");
    assertStringIncludes(err.message, "truncated");
    // Cut exactly at a header boundary: no end-of-archive marker.
    await Deno.writeFile(`${dir}/cut2.tar`, tar.subarray(0, 512 * 3));
    err = await assertRejects(() => collect(`${dir}/cut2.tar`), Error);
    assertStringIncludes(err.message, "truncated");
    // A truncated gzip stream.
    const gz = gzip(tar);
    await Deno.writeFile(`${dir}/cut.tar.gz`, gz.subarray(0, gz.length - 100));
    err = await assertRejects(() => collect(`${dir}/cut.tar.gz`), Error);
    assertStringIncludes(err.message, `${dir}/cut.tar.gz`);
    // A corrupted header checksum.
    const bad = tar.slice();
    bad[512 * 2 + 10] ^= 0x55; // inside the empty.txt header
    await Deno.writeFile(`${dir}/bad.tar`, bad);
    err = await assertRejects(() => collect(`${dir}/bad.tar`), Error);
    assertStringIncludes(err.message, "corrupt tar header");
    assertStringIncludes(err.message, `${dir}/bad.tar`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ByteReader and forEachRecord split arbitrary chunking exactly", async () => {
  const data = bytes(10_000, 7);
  const pieces = [1, 2, 3, 500, 4000, 1, 5493].reduce<{ o: number; p: Uint8Array[] }>(
    (acc, n) => ({ o: acc.o + n, p: [...acc.p, data.subarray(acc.o, acc.o + n)] }),
    { o: 0, p: [] },
  ).p;
  const r = new ByteReader(ReadableStream.from(pieces), "mem");
  assertEquals(await r.readExact(5), data.subarray(0, 5));
  await r.skip(1000);
  assertEquals(await r.readExact(3000), data.subarray(1005, 4005));
  await assertRejects(() => r.readExact(6000, "the tail"), Error, "mem: truncated");
  const recs: number[] = [];
  const n = await forEachRecord(ReadableStream.from(pieces), 100, (rec, i) => {
    assertEquals(rec, data.subarray(i * 100, i * 100 + 100));
    recs.push(i);
  });
  assertEquals(n, 100);
  await assertRejects(
    () => forEachRecord(ReadableStream.from(pieces), 300, () => {}, "f.bin"),
    Error,
    "f.bin: truncated",
  );
  // A header-only tar header helper sanity check.
  assertEquals(tarHeader("x", 0).length, 512);
});

Deno.test("tar.gz of ~300 MB streams with bounded memory", async () => {
  const dir = await Deno.makeTempDir();
  const MB = 1 << 20;
  const sizes = [200 * MB + 123, 64 * MB, 36 * MB + 7];
  try {
    // Cheap pseudo-random content: one 1 MB random block, re-stamped per MB with its index.
    const block = new Uint8Array(MB);
    for (let o = 0; o < MB; o += 65536) crypto.getRandomValues(block.subarray(o, o + 65536));
    const path = `${dir}/big.tar.gz`;
    // Stored (level 0) gzip via fflate's streaming Gzip: realistic ratio ~1, cheap to make.
    const file = await Deno.open(path, { write: true, create: true });
    const pending: Uint8Array[] = [];
    const gz = new Gzip({ level: 0 }, (chunk) => void pending.push(chunk));
    const flush = async () => {
      for (const c of pending.splice(0)) {
        let w = 0;
        while (w < c.length) w += await file.write(c.subarray(w));
      }
    };
    for (let m = 0; m < sizes.length; m++) {
      gz.push(tarHeader(`big/member_${m}.bin`, sizes[m]));
      for (let o = 0; o < sizes[m]; o += MB) {
        const c = block.slice(0, Math.min(MB, sizes[m] - o));
        c[0] = (o / MB) & 255;
        gz.push(c);
        await flush();
      }
      gz.push(new Uint8Array((512 - (sizes[m] % 512)) % 512));
    }
    gz.push(new Uint8Array(1024), true);
    await flush();
    file.close();

    // Stream it in a fresh process so its RSS reflects only the reader.
    const t0 = performance.now();
    const probe = new URL("./fixtures/stream_probe.ts", import.meta.url).pathname;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "--v8-flags=--expose-gc", probe, path],
      stdout: "piped",
    }).output();
    assert(out.success, "stream probe failed");
    const r = JSON.parse(new TextDecoder().decode(out.stdout));
    const secs = (performance.now() - t0) / 1000;
    const m = r.members;
    assertEquals(r.bytes, sizes.reduce((a, b) => a + b, 0));
    assertEquals(m, sizes.length);
    const growth = (r.peak - r.rss0) / MB;
    console.log(`streamed 300 MB in ${secs.toFixed(2)} s, RSS growth ${growth.toFixed(1)} MB`);
    assert(growth < 64, `RSS grew by ${growth.toFixed(1)} MB (bound 64 MB)`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
