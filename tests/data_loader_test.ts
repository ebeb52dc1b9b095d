import { assert, assertEquals, assertNotEquals, assertRejects } from "@std/assert";
import { Loader } from "../data/loader.ts";
import { InstanceSampler } from "../data/samplers.ts";
import { syntheticDataset } from "../data/synthetic.ts";
import { DATASET_STATS } from "../data/normalize.ts";
import { writeShards } from "../data/shards/writer.ts";
import type { AugmentSpec } from "../data/augment.ts";
import type { Batch } from "../data/types.ts";

const train = syntheticDataset({ nMax: 100, ratio: 0.1, size: 32, seed: 1 }).train; // 403 images
const AUG: AugmentSpec = { kind: "crop_flip", pad: 4, ...DATASET_STATS.synthetic };

async function collect(loader: Loader, epoch: number): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of loader.batches(epoch)) out.push(b);
  return out;
}

Deno.test("inline loader: shapes, drop-last, labels follow the sampler, deterministic", async () => {
  const loader = new Loader({ source: train, batchSize: 128, augment: AUG, seed: 4, workers: 0 });
  const batches = await collect(loader, 0);
  assertEquals(batches.map((b) => b.shape[0]), [128, 128, 128, 19]);
  assertEquals(batches[0].shape, [128, 32, 32, 3]);
  assertEquals(batches[0].images.length, 128 * 32 * 32 * 3);
  const order = new InstanceSampler(403, { seed: 4 }).epochIndices(0);
  const labels = batches.flatMap((b) => Array.from(b.labels));
  assertEquals(labels, Array.from(order, (i) => train.labels[i]));
  const again = await collect(loader, 0);
  assertEquals(again[2].images, batches[2].images);
  const other = await collect(loader, 1);
  assertNotEquals(other[0].labels, batches[0].labels);
  const dl = new Loader({
    source: train,
    batchSize: 128,
    augment: AUG,
    dropLast: true,
    workers: 0,
  });
  assertEquals((await collect(dl, 0)).length, 3);
  const cb = new Loader({
    source: train,
    batchSize: 100,
    augment: AUG,
    sampler: "class",
    epochLength: 1000,
    workers: 0,
  });
  const counts = new Array(10).fill(0);
  for (const b of await collect(cb, 0)) for (const y of b.labels) counts[y]++;
  assertEquals(counts, new Array(10).fill(100));
});

Deno.test("worker loader gives the same batches as the inline loader", async () => {
  const inline = new Loader({ source: train, batchSize: 50, augment: AUG, seed: 2, workers: 0 });
  using worker = new Loader({
    source: train,
    batchSize: 50,
    augment: AUG,
    seed: 2,
    workers: 1,
    prefetch: 3,
  });
  for (const epoch of [0, 3]) {
    const a = await collect(inline, epoch), b = await collect(worker, epoch);
    assertEquals(a.length, 9);
    assertEquals(b.length, 9);
    for (let i = 0; i < a.length; i++) {
      assertEquals(b[i].shape, a[i].shape);
      assertEquals(b[i].labels, a[i].labels);
      assertEquals(b[i].images, a[i].images);
    }
  }
  // Leaving an epoch early, then starting another, works.
  for await (const _ of worker.batches(5)) break;
  assertEquals((await collect(worker, 6)).length, 9);
});

Deno.test("shard folder sources: in memory and per-record give the same batches", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeShards(`${dir}/s`, train, { kind: "raw", numClasses: 10, recordsPerShard: 100 });
    const ref = await collect(
      new Loader({ source: train, batchSize: 64, augment: AUG, workers: 0 }),
      1,
    );
    const mem = await collect(
      new Loader({ source: `${dir}/s`, batchSize: 64, augment: AUG, workers: 0 }),
      1,
    );
    using per = new Loader({
      source: `${dir}/s`,
      batchSize: 64,
      augment: AUG,
      workers: 1,
      memoryLimitBytes: 0,
    });
    const rec = await collect(per, 1);
    for (let i = 0; i < ref.length; i++) {
      assertEquals(mem[i].images, ref[i].images);
      assertEquals(rec[i].images, ref[i].images);
      assertEquals(rec[i].labels, ref[i].labels);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "JPEG shards decoded with sharp, RandomResizedCrop, inline and in a worker",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const sharp = (await import("npm:sharp@^0.34.5")).default;
    const dir = await Deno.makeTempDir();
    try {
      const recs = [];
      for (let i = 0; i < 12; i++) {
        const w = 40 + 7 * i, h = 36 + 3 * i;
        const px = new Uint8Array(w * h * 3);
        for (let j = 0; j < px.length; j++) px[j] = (j * (i + 1)) & 255;
        const jpg = await sharp(px, { raw: { width: w, height: h, channels: 3 } }).jpeg()
          .toBuffer();
        recs.push({ label: i % 3, data: new Uint8Array(jpg) });
      }
      recs.push({ label: 1, data: recs[0].data.slice() }); // 13 records
      await writeShards(`${dir}/j`, recs, { kind: "encoded", numClasses: 3, recordsPerShard: 5 });
      const aug: AugmentSpec = { kind: "random_resized_crop", size: 24, ...DATASET_STATS.imagenet };
      const a = await collect(
        new Loader({ source: `${dir}/j`, batchSize: 4, augment: aug, workers: 0 }),
        0,
      );
      using wl = new Loader({ source: `${dir}/j`, batchSize: 4, augment: aug, workers: 1 });
      const b = await collect(wl, 0);
      assertEquals(a.map((x) => x.shape), [[4, 24, 24, 3], [4, 24, 24, 3], [4, 24, 24, 3], [
        1,
        24,
        24,
        3,
      ]]);
      for (let i = 0; i < a.length; i++) assertEquals(b[i].images, a[i].images);
      // A corrupt JPEG: the error names the record.
      await writeShards(`${dir}/bad`, [{ label: 0, data: new Uint8Array([1, 2, 3]) }], {
        kind: "encoded",
        numClasses: 1,
      });
      using bad = new Loader({ source: `${dir}/bad`, batchSize: 1, augment: aug, workers: 1 });
      const e = await assertRejects(() => collect(bad, 0), Error);
      assert(e.message.includes("record 0"), e.message);
      // Variable-size images need a cropping augmentation.
      const e2 = await assertRejects(
        () =>
          collect(new Loader({ source: `${dir}/j`, batchSize: 4, augment: AUG, workers: 0 }), 0),
        Error,
      );
      assert(e2.message.includes("cropping"), e2.message);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
