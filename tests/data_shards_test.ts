import { assert, assertEquals, assertRejects } from "@std/assert";
import { writeShards } from "../data/shards/writer.ts";
import {
  loadShardsToMemory,
  readManifest,
  readShardLabels,
  ShardReader,
  streamShards,
} from "../data/shards/reader.ts";
import { crc32, HEADER_BYTES } from "../data/shards/format.ts";
import { syntheticDataset } from "../data/synthetic.ts";
import { classCounts } from "../data/long_tail.ts";

const small = () => syntheticDataset({ testPerClass: 25, size: 16, seed: 3 }).test; // 250 images

Deno.test("raw shards round-trip: manifest, memory load, stream, random access", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = small();
    const m = await writeShards(`${dir}/s`, data, {
      kind: "raw",
      numClasses: 10,
      recordsPerShard: 64,
      classNames: data.classNames,
      meta: { dataset: "synthetic" },
    });
    assertEquals(m.total, 250);
    assertEquals(m.shape, [16, 16, 3]);
    assertEquals(m.shards.map((s) => s.records), [64, 64, 64, 58]);
    assertEquals(m.classCounts, classCounts(data.labels, 10));
    assertEquals(await readManifest(`${dir}/s`), m);
    for (const s of m.shards) {
      const bytes = await Deno.readFile(`${dir}/s/${s.file}`);
      assertEquals([bytes.length, crc32(bytes)], [s.bytes, s.crc32]);
    }
    const back = await loadShardsToMemory(`${dir}/s`);
    assertEquals(back.images, data.images);
    assertEquals(back.labels, data.labels);
    assertEquals(back.classNames, data.classNames);
    assertEquals(await readShardLabels(`${dir}/s`), data.labels);
    let n = 0;
    for await (const r of streamShards(`${dir}/s`)) {
      assertEquals(r.index, n);
      assertEquals(r.label, data.labels[n]);
      assertEquals(r.data, data.images.subarray(n * 768, (n + 1) * 768));
      n++;
    }
    assertEquals(n, 250);
    const reader = await ShardReader.open(`${dir}/s`, { cacheShards: 2 });
    for (const i of [249, 0, 130, 64, 63, 200, 5]) {
      const r = await reader.get(i);
      assertEquals(r.label, data.labels[i]);
      assertEquals(r.data, data.images.subarray(i * 768, (i + 1) * 768));
    }
    assertEquals((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name), ["s"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("encoded shards from an async iterable: variable-length records", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const recs = Array.from({ length: 23 }, (_, i) => ({
      label: i % 4,
      data: Uint8Array.from({ length: 10 + 37 * i }, (_, j) => (i * 7 + j) & 255),
    }));
    const gen = async function* () {
      const buf = new Uint8Array(1000);
      for (const r of recs) {
        buf.set(r.data); // the writer must copy: this buffer is reused
        yield { label: r.label, data: buf.subarray(0, r.data.length) };
      }
    };
    const m = await writeShards(`${dir}/e`, gen(), {
      kind: "encoded",
      numClasses: 4,
      recordsPerShard: 5,
    });
    assertEquals([m.kind, m.shape, m.total, m.shards.length], ["encoded", null, 23, 5]);
    const reader = await ShardReader.open(`${dir}/e`);
    for (let i = 22; i >= 0; i--) assertEquals(await reader.get(i), recs[i]);
    await assertRejects(() => loadShardsToMemory(`${dir}/e`), Error, 'only "raw"');
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writes are atomic: a failing source leaves nothing; existing folders need overwrite", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bad = async function* () {
      yield { label: 0, data: new Uint8Array(12) };
      throw new Error("source broke");
    };
    await assertRejects(
      () => writeShards(`${dir}/x`, bad(), { kind: "raw", shape: [2, 2, 3], numClasses: 1 }),
      Error,
      "source broke",
    );
    assertEquals(await Array.fromAsync(Deno.readDir(dir)), []);
    await writeShards(`${dir}/x`, small(), { kind: "raw", numClasses: 10 });
    await assertRejects(
      () => writeShards(`${dir}/x`, small(), { kind: "raw", numClasses: 10 }),
      Error,
      "exists",
    );
    await writeShards(`${dir}/x`, small(), { kind: "raw", numClasses: 10, overwrite: true });
    await assertRejects(
      () =>
        writeShards(`${dir}/y`, [{ label: 3, data: new Uint8Array(12) }], {
          kind: "raw",
          shape: [2, 2, 3],
          numClasses: 2,
        }),
      Error,
      "label 3",
    );
    assertEquals((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name), ["x"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("truncated or corrupted shards throw errors naming the file and record", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const m = await writeShards(`${dir}/s`, small(), {
      kind: "raw",
      numClasses: 10,
      recordsPerShard: 100,
    });
    const file = `${dir}/s/${m.shards[1].file}`;
    const good = await Deno.readFile(file);
    // Truncated: the end of shard 1 is missing.
    await Deno.writeFile(file, good.subarray(0, good.length - 500));
    let e = await assertRejects(() => loadShardsToMemory(`${dir}/s`), Error);
    assert(
      e.message.includes("shard-00001.bin") && /record \d+ \(global index 1\d\d\)/.test(e.message),
      e.message,
    );
    assert(e.message.includes("truncated"), e.message);
    const reader = await ShardReader.open(`${dir}/s`);
    e = await assertRejects(() => reader.get(199), Error);
    assert(
      e.message.includes("shard-00001.bin") && e.message.includes("global index 199"),
      e.message,
    );
    // One flipped byte inside a record's compressed data.
    const bad = good.slice();
    bad[HEADER_BYTES + 16 * 100 + 40] ^= 0x55;
    await Deno.writeFile(file, bad);
    e = await assertRejects(() => loadShardsToMemory(`${dir}/s`), Error);
    assert(
      e.message.includes("shard-00001.bin") && e.message.includes("record 0 (global index 100)"),
      e.message,
    );
    // A flipped label: records are intact, the file checksum catches it.
    const badLabel = good.slice();
    badLabel[HEADER_BYTES + 4] ^= 1;
    await Deno.writeFile(file, badLabel);
    e = await assertRejects(async () => {
      for await (const _ of streamShards(`${dir}/s`)) { /* drain */ }
    }, Error);
    assert(e.message.includes("shard-00001.bin") && e.message.includes("corrupted"), e.message);
    // A missing shard file.
    await Deno.remove(file);
    e = await assertRejects(() => loadShardsToMemory(`${dir}/s`), Error);
    assert(e.message.includes("shard-00001.bin") && e.message.includes("100..199"), e.message);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
