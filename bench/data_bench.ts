/**
 * Data pipeline throughput. One iteration = one batch, so images/s = batch size / time per iteration.
 * - 32x32 crop + flip + normalise, batch 128, in-memory source: the augmenter alone, the loader
 *   inline (workers 0) and the loader with a prefetching worker (workers 1; measures how fast
 *   batches arrive when the consumer does nothing else).
 * - 224x224 from JPEG shards (about 500x375 images): sharp decode + RandomResizedCrop + flip +
 *   ColorJitter + normalise, batch 32, workers 0 and 1.
 * Run: deno bench -A bench/data_bench.ts
 * @module
 */

import { Loader } from "../data/loader.ts";
import { makeAugmenter } from "../data/augment.ts";
import { DATASET_STATS } from "../data/normalize.ts";
import { writeShards } from "../data/shards/writer.ts";
import { Rng } from "../gpu/rng.ts";
import type { AugmentSpec } from "../data/augment.ts";
import type { Batch, ImageArray } from "../data/types.ts";

const N = 10000;
const rng = new Rng(1);
const images = new Uint8Array(N * 32 * 32 * 3);
for (let i = 0; i < images.length; i++) images[i] = rng.nextU32() & 255;
const labels = new Int32Array(N);
for (let i = 0; i < N; i++) labels[i] = i % 10;
const cifar: ImageArray = { images, labels, height: 32, width: 32, channels: 3, numClasses: 10 };
const CROP: AugmentSpec = { kind: "crop_flip", pad: 4, ...DATASET_STATS.cifar10 };

/** Endless batch stream over epochs. */
async function* forever(loader: Loader): AsyncGenerator<Batch> {
  for (let e = 0;; e++) yield* loader.batches(e);
}

const loaders: Loader[] = [];
function stream(opts: ConstructorParameters<typeof Loader>[0]): AsyncGenerator<Batch> {
  const l = new Loader(opts);
  loaders.push(l);
  return forever(l);
}
globalThis.addEventListener("unload", () => loaders.forEach((l) => l.close()));

const aug = makeAugmenter(CROP);
const out = new Float32Array(128 * 3072);
Deno.bench("augment only: crop+flip+normalise 32x32, 128 images", {
  group: "32x32",
  n: 200,
  warmup: 20,
}, () => {
  for (let k = 0; k < 128; k++) {
    aug.apply(images.subarray(k * 3072, (k + 1) * 3072), 32, 32, 3, out, k * 3072, rng);
  }
});

const inline32 = stream({ source: cifar, batchSize: 128, augment: CROP, workers: 0 });
Deno.bench(
  "loader workers=0: batch 128 of 32x32",
  { group: "32x32", n: 200, warmup: 20 },
  async () => {
    await inline32.next();
  },
);

const worker32 = stream({ source: cifar, batchSize: 128, augment: CROP, workers: 1, prefetch: 4 });
await worker32.next(); // start the worker outside the timing
Deno.bench(
  "loader workers=1: batch 128 of 32x32",
  { group: "32x32", n: 200, warmup: 20 },
  async () => {
    await worker32.next();
  },
);

// 224x224 from JPEG shards.
let sharpOk = true;
const dir = await Deno.makeTempDir();
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
try {
  const sharp = (await import("npm:sharp@^0.34.5")).default;
  const recs = [];
  const w = 500, h = 375, px = new Uint8Array(w * h * 3);
  for (let i = 0; i < 64; i++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const q = (y * w + x) * 3;
        px[q] = (x * (i + 1) + y) & 255;
        px[q + 1] = (128 + 100 * Math.sin((x + y * i) / 17)) & 255;
        px[q + 2] = (rng.nextU32() & 63) + 3 * i;
      }
    }
    const jpg = await sharp(px, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 90 })
      .toBuffer();
    recs.push({ label: i % 10, data: new Uint8Array(jpg) });
  }
  await writeShards(`${dir}/jpeg`, recs, { kind: "encoded", numClasses: 10, recordsPerShard: 16 });
} catch (e) {
  sharpOk = false;
  console.error(`sharp unavailable, skipping the JPEG benches: ${(e as Error).message}`);
}

const RRC: AugmentSpec = { kind: "random_resized_crop", size: 224, ...DATASET_STATS.imagenet };
if (sharpOk) {
  const inline224 = stream({ source: `${dir}/jpeg`, batchSize: 32, augment: RRC, workers: 0 });
  Deno.bench(
    "loader workers=0: batch 32 of 224x224 from JPEG",
    { group: "224", n: 15, warmup: 2 },
    async () => {
      await inline224.next();
    },
  );
  const worker224 = stream({ source: `${dir}/jpeg`, batchSize: 32, augment: RRC, workers: 1 });
  await worker224.next();
  Deno.bench(
    "loader workers=1: batch 32 of 224x224 from JPEG",
    { group: "224", n: 15, warmup: 2 },
    async () => {
      await worker224.next();
    },
  );
}
