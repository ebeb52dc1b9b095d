import { assert, assertAlmostEquals, assertEquals, assertNotEquals } from "@std/assert";
import { colorJitter, makeAugmenter, randomResizedCropWindow } from "../data/augment.ts";
import { DATASET_STATS, datasetStats } from "../data/normalize.ts";
import { Rng } from "../gpu/rng.ts";

const C10 = DATASET_STATS.cifar10;

function randomImage(h: number, w: number, c: number, seed: number): Uint8Array {
  const r = new Rng(seed), img = new Uint8Array(h * w * c);
  for (let i = 0; i < img.length; i++) img[i] = r.int(256);
  return img;
}

/** Straightforward reference: zero-pad by p, crop at (oy+p, ox+p), maybe flip, normalise. */
function referenceCropFlip(
  src: Uint8Array,
  h: number,
  w: number,
  c: number,
  p: number,
  rng: Rng,
): Float32Array {
  const oy = rng.int(2 * p + 1) - p, ox = rng.int(2 * p + 1) - p, flip = rng.next() < 0.5;
  const out = new Float32Array(h * w * c);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const sx = (flip ? w - 1 - x : x) + ox, sy = y + oy;
      for (let ch = 0; ch < c; ch++) {
        const v = sy >= 0 && sy < h && sx >= 0 && sx < w ? src[(sy * w + sx) * c + ch] : 0;
        out[(y * w + x) * c + ch] = Math.fround((v / 255 - C10.mean[ch]) / C10.std[ch]);
      }
    }
  }
  return out;
}

Deno.test("crop_flip matches a reference implementation (fast RGB path and generic path)", () => {
  for (const c of [3, 1]) {
    const img = randomImage(32, 32, c, 1);
    const aug = makeAugmenter({ kind: "crop_flip", pad: 4, ...C10 });
    for (let seed = 0; seed < 30; seed++) {
      const out = new Float32Array(32 * 32 * c + 5);
      aug.apply(img, 32, 32, c, out, 5, new Rng(seed));
      assertEquals(out.subarray(5), referenceCropFlip(img, 32, 32, c, 4, new Rng(seed)));
    }
  }
});

Deno.test("crop_flip is deterministic for a seed and pads with -mean/std", () => {
  const img = new Uint8Array(32 * 32 * 3).fill(200);
  const aug = makeAugmenter({ kind: "crop_flip", pad: 4, ...C10 });
  const a = new Float32Array(3072), b = new Float32Array(3072);
  let padded = 0;
  for (let seed = 0; seed < 20; seed++) {
    aug.apply(img, 32, 32, 3, a, 0, new Rng(seed));
    aug.apply(img, 32, 32, 3, b, 0, new Rng(seed));
    assertEquals(a, b);
    for (let i = 0; i < 3072; i += 3) {
      if (Math.abs(a[i] - -C10.mean[0] / C10.std[0]) < 1e-6) padded++;
    }
  }
  assert(padded > 0, "some crops reach into the zero padding");
});

Deno.test("normalize kind is the per-channel (x/255 - mean)/std", () => {
  const img = randomImage(4, 5, 3, 2);
  const out = new Float32Array(60);
  makeAugmenter({ kind: "normalize", ...datasetStats("CIFAR-100") }).apply(
    img,
    4,
    5,
    3,
    out,
    0,
    new Rng(0),
  );
  const s = DATASET_STATS.cifar100;
  for (let i = 0; i < 60; i++) {
    assertAlmostEquals(out[i], (img[i] / 255 - s.mean[i % 3]) / s.std[i % 3], 1e-6);
  }
});

Deno.test("RandomResizedCrop window: area, aspect and bounds as torchvision", () => {
  const rng = new Rng(3);
  for (let t = 0; t < 2000; t++) {
    const w = randomResizedCropWindow(300, 400, [0.08, 1], [3 / 4, 4 / 3], rng);
    assert(w.top >= 0 && w.left >= 0 && w.top + w.height <= 300 && w.left + w.width <= 400);
    const frac = (w.height * w.width) / (300 * 400);
    assert(frac > 0.07 && frac <= 1.0001, `area fraction ${frac}`);
    const r = w.width / w.height;
    assert(r > 0.7 && r < 1.4, `aspect ${r}`);
  }
  // Impossible ratios fall back to a center crop with the ratio clamped.
  assertEquals(randomResizedCropWindow(100, 1000, [1, 1], [1, 1], new Rng(0)), {
    top: 0,
    left: 450,
    height: 100,
    width: 100,
  });
});

Deno.test("RandomResizedCrop with full scale and ratio 1 on a same-size image is the identity", () => {
  const img = randomImage(16, 16, 3, 4);
  const aug = makeAugmenter({
    kind: "random_resized_crop",
    size: 16,
    scale: [1, 1],
    ratio: [1, 1],
    flip: false,
    jitter: 0,
    ...C10,
  });
  const out = new Float32Array(16 * 16 * 3);
  aug.apply(img, 16, 16, 3, out, 0, new Rng(9));
  for (let i = 0; i < out.length; i++) {
    assertAlmostEquals(out[i], (img[i] / 255 - C10.mean[i % 3]) / C10.std[i % 3], 1e-5);
  }
  assertEquals(aug.outputShape(100, 50, 3), [16, 16, 3]);
});

Deno.test("RandomResizedCrop 224 + flip + jitter: shape, determinism, variety", () => {
  const img = randomImage(180, 240, 3, 5);
  const aug = makeAugmenter({ kind: "random_resized_crop", size: 224, ...DATASET_STATS.imagenet });
  const a = new Float32Array(224 * 224 * 3), b = new Float32Array(224 * 224 * 3);
  aug.apply(img, 180, 240, 3, a, 0, new Rng(1));
  aug.apply(img, 180, 240, 3, b, 0, new Rng(1));
  assertEquals(a, b);
  aug.apply(img, 180, 240, 3, b, 0, new Rng(2));
  assertNotEquals(a, b);
  for (const v of a) assert(Number.isFinite(v) && v > -2.2 && v < 2.7);
});

Deno.test("ColorJitter: saturation/contrast keep grey images grey; factors bounded", () => {
  const img = new Float32Array(3 * 10).fill(0.5);
  colorJitter(img, 10, 0.4, new Rng(1));
  for (let i = 0; i < 30; i += 3) {
    assertAlmostEquals(img[i], img[i + 1], 1e-6);
    assertAlmostEquals(img[i], img[i + 2], 1e-6);
    assert(img[i] >= 0.5 * 0.6 - 1e-6 && img[i] <= 0.5 * 1.4 + 1e-6);
  }
});

Deno.test("center_crop: resize shorter side then crop the middle (exact at scale 1)", () => {
  const img = randomImage(256, 320, 3, 6);
  const aug = makeAugmenter({ kind: "center_crop", size: 224, resize: 256, ...C10 });
  const out = new Float32Array(224 * 224 * 3);
  aug.apply(img, 256, 320, 3, out, 0, new Rng(0));
  for (const [y, x] of [[0, 0], [100, 37], [223, 223]]) {
    for (let c = 0; c < 3; c++) {
      const v = img[((y + 16) * 320 + x + 48) * 3 + c];
      assertAlmostEquals(out[(y * 224 + x) * 3 + c], (v / 255 - C10.mean[c]) / C10.std[c], 1e-5);
    }
  }
  // Downscaling: a constant image stays constant.
  const flat = new Uint8Array(500 * 375 * 3).fill(77);
  aug.apply(flat, 375, 500, 3, out, 0, new Rng(0));
  for (let i = 0; i < out.length; i += 997) {
    assertAlmostEquals(out[i], (77 / 255 - C10.mean[i % 3]) / C10.std[i % 3], 1e-5);
  }
});
