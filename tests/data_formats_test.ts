// Tests the official-format readers on fixtures written in each format by the tests themselves:
// CIFAR-10/100 binary tarballs (and extracted folders), SVHN .mat (compressed and plain), STL-10,
// CUB-200-2011 with real JPEGs (metadata before or after the images), ImageNet-LT lists, sharp.

import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import {
  cubImages,
  decodeImage,
  decodeResized,
  encodeJpeg,
  imageNetLtImages,
  mat5Variables,
  readCifar10,
  readCifar100,
  readCubMetadata,
  readMat5,
  readStl10,
  readSvhn,
  tarEntries,
} from "../data/formats/mod.ts";
import { writeCifar100Fixture, writeCifar10Fixture } from "./fixtures/cifar_fixture.ts";
import { makeMat5, svhnVars } from "./fixtures/mat5_writer.ts";
import { writeStl10Fixture } from "./fixtures/stl10_fixture.ts";
import { writeCubFixture } from "./fixtures/cub_fixture.ts";
import { gzip, makeTar } from "./fixtures/tar_writer.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function extract(archive: string, to: string): Promise<void> {
  for await (const e of tarEntries(archive)) {
    if (e.type !== "file") continue;
    const p = `${to}/${e.name}`;
    await Deno.mkdir(p.slice(0, p.lastIndexOf("/")), { recursive: true });
    await Deno.writeFile(p, await e.bytes());
  }
}

function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  assertEquals(a.length, b.length);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

Deno.test("CIFAR-10 binary tarball and extracted folder: exact HWC pixels and labels", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/cifar-10-binary.tar.gz`;
    const fx = await writeCifar10Fixture(path, 20, 15);
    await extract(path, `${dir}/x`);
    for (const src of [path, `${dir}/x`, `${dir}/x/cifar-10-batches-bin`]) {
      const train = await readCifar10(src, "train");
      assertEquals([train.height, train.width, train.channels, train.numClasses], [32, 32, 3, 10]);
      assertEquals(train.labels, fx.train.labels);
      assertEquals(train.images, fx.train.images);
      assertEquals(train.classNames, fx.classNames);
      const test = await readCifar10(src, "test");
      assertEquals(test.labels, fx.test.labels);
      assertEquals(test.images, fx.test.images);
    }
    // Pixel (0,0) of image 0 is the first byte of each colour plane.
    const t = await readCifar10(path, "test");
    assertEquals(t.images[1 * 3 + 0], fx.test.images[3]);
  });
});

Deno.test("CIFAR-100 binary tarball: fine and coarse labels, class names", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/cifar-100-binary.tar.gz`;
    const fx = await writeCifar100Fixture(path, 40, 12);
    const fine = await readCifar100(path, "train");
    assertEquals(fine.numClasses, 100);
    assertEquals(fine.labels, fx.train.labels);
    assertEquals(fine.images, fx.train.images);
    assertEquals(fine.classNames, fx.fine);
    const coarse = await readCifar100(path, "test", { labels: "coarse" });
    assertEquals(coarse.numClasses, 20);
    assertEquals(coarse.labels, fx.test.coarse);
    assertEquals(coarse.images, fx.test.images);
    assertEquals(coarse.classNames, fx.coarse);
  });
});

Deno.test("CIFAR: truncated or incomplete archives name the file and member", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/cifar-10-binary.tar.gz`;
    await writeCifar10Fixture(path, 4, 3);
    // Drop data_batch_5 by rebuilding the archive without it.
    const kept = [];
    for await (const e of tarEntries(path)) {
      if (e.type === "file" && !e.name.endsWith("data_batch_5.bin")) {
        kept.push({ name: e.name, data: await e.bytes() });
      }
    }
    await Deno.writeFile(`${dir}/missing.tar.gz`, gzip(makeTar(kept)));
    const e1 = await assertRejects(() => readCifar10(`${dir}/missing.tar.gz`, "train"), Error);
    assertStringIncludes(e1.message, "data_batch_5.bin");
    // A batch whose size is not a whole number of records.
    const odd = kept.map((k) =>
      k.name.endsWith("test_batch.bin") ? { ...k, data: k.data.subarray(0, 3073 * 2 + 100) } : k
    );
    await Deno.writeFile(`${dir}/odd.tar.gz`, gzip(makeTar(odd)));
    const e2 = await assertRejects(() => readCifar10(`${dir}/odd.tar.gz`, "test"), Error);
    assertStringIncludes(e2.message, "cifar-10-batches-bin/test_batch.bin");
    // A cut gzip stream.
    const gz = await Deno.readFile(path);
    await Deno.writeFile(`${dir}/cut.tar.gz`, gz.subarray(0, gz.length >> 1));
    const e3 = await assertRejects(() => readCifar10(`${dir}/cut.tar.gz`, "train"), Error);
    assertStringIncludes(e3.message, `${dir}/cut.tar.gz`);
  });
});

function svhnData(n: number) {
  const images = new Uint8Array(n * 3072).map((_, i) => (i * 7 + (i >> 11) * 13) & 255);
  const labels = new Int32Array(n).map((_, i) => i % 10);
  return { images, labels };
}

Deno.test("SVHN .mat (zlib-compressed and plain, double or uint8-stored y): exact", async () => {
  await withDir(async (dir) => {
    const { images, labels } = svhnData(37);
    const junk = {
      name: "junk",
      classId: 6,
      dims: [1, 3],
      dataType: 9,
      data: new Uint8Array(new Float64Array([1, 2, 3]).buffer),
    };
    const cases = [
      { file: "train_32x32.mat", compressed: true, y: "double" as const },
      { file: "test_32x32.mat", compressed: false, y: "uint8-storage" as const },
      { file: "extra_32x32.mat", compressed: true, y: "uint8-storage" as const },
    ];
    for (const c of cases) {
      const p = `${dir}/${c.file}`;
      await Deno.writeFile(p, makeMat5([junk, ...svhnVars(images, labels, c.y)], c.compressed));
      const s = await readSvhn(p);
      assertEquals([s.height, s.width, s.channels, s.numClasses], [32, 32, 3, 10]);
      assertEquals(s.labels, labels);
      assertEquals(s.images, images);
    }
  });
});

Deno.test("MAT v5: variables, small elements, stored types, truncation errors", async () => {
  await withDir(async (dir) => {
    const vars = [
      { name: "y", classId: 6, dims: [2, 1], dataType: 2, data: new Uint8Array([10, 3]) },
      {
        name: "weights",
        classId: 7,
        dims: [1, 3],
        dataType: 7,
        data: new Uint8Array(new Float32Array([0.5, -1, 2]).buffer),
      },
    ];
    for (const compressed of [false, true]) {
      const p = `${dir}/v${compressed}.mat`;
      await Deno.writeFile(p, makeMat5(vars, compressed));
      const got = await readMat5(p);
      assertEquals([...got.keys()], ["y", "weights"]);
      assertEquals(got.get("y")!.className, "double");
      assertEquals(got.get("y")!.dims, [2, 1]);
      assertEquals(Array.from(got.get("y")!.data as Uint8Array), [10, 3]);
      assertEquals(Array.from(got.get("weights")!.data as Float32Array), [0.5, -1, 2]);
      const names: string[] = [];
      for await (const v of mat5Variables(p)) {
        names.push(v.name);
        if (v.name === "y") assertEquals(Array.from(await v.toFloat64()), [10, 3]);
      }
      assertEquals(names, ["y", "weights"]);
    }
    const { images, labels } = svhnData(20);
    for (const compressed of [false, true]) {
      const whole = makeMat5(svhnVars(images, labels, "double"), compressed);
      const p = `${dir}/cut${compressed}.mat`;
      await Deno.writeFile(p, whole.subarray(0, Math.floor(whole.length * 0.6)));
      const e = await assertRejects(() => readSvhn(p), Error);
      assertStringIncludes(e.message, p);
    }
    await Deno.writeTextFile(`${dir}/bad.mat`, "MATLAB 7.3 MAT-file".padEnd(128, " "));
    const e = await assertRejects(() => readSvhn(`${dir}/bad.mat`), Error);
    assertStringIncludes(e.message, "v7.3");
  });
});

Deno.test("STL-10 binary tarball: column-major planes to HWC, labels 1..10 to 0..9", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/stl10_binary.tar.gz`;
    const fx = await writeStl10Fixture(path, 6, 4);
    const train = await readStl10(path, "train");
    assertEquals([train.height, train.width, train.channels, train.numClasses], [96, 96, 3, 10]);
    assertEquals(train.labels, fx.train.labels);
    assertEquals(train.images, fx.train.images);
    assertEquals(train.classNames, fx.names);
    const test = await readStl10(path, "test");
    assertEquals(test.labels, fx.test.labels);
    assertEquals(test.images, fx.test.images);
  });
});

Deno.test("CUB-200-2011 tgz: metadata before or after images, splits, JPEG pixels", async () => {
  await withDir(async (dir) => {
    for (const metadataFirst of [true, false]) {
      const path = `${dir}/CUB_200_2011_${metadataFirst}.tgz`;
      const fx = await writeCubFixture(path, metadataFirst);
      const meta = await readCubMetadata(path);
      assertEquals(meta.classNames, fx.classes);
      assertEquals(meta.images.length, fx.images.length);
      for (const split of ["train", "test"] as const) {
        const want = fx.images.filter((m) => m.isTrain === (split === "train"));
        const got = [];
        for await (const im of cubImages(path, { split })) got.push(im);
        assertEquals(got.map((g) => g.name), want.map((w) => w.path));
        for (let i = 0; i < got.length; i++) {
          assertEquals(got[i].label, want[i].label);
          const dec = await decodeImage(got[i].bytes, got[i].name);
          assertEquals([dec.width, dec.height], [want[i].width, want[i].height]);
          const d = meanAbsDiff(dec.data, want[i].rgb);
          assert(d < 3, `${got[i].name}: mean abs diff ${d}`);
        }
      }
      let all = 0;
      for await (const _ of cubImages(path, { split: "all", metadata: meta })) all++;
      assertEquals(all, fx.images.length);
    }
  });
});

Deno.test("ImageNet-LT: split list + image folder, missing files named", async () => {
  await withDir(async (dir) => {
    const rgb = new Uint8Array(20 * 16 * 3).fill(128);
    const jpg = await encodeJpeg(rgb, 20, 16);
    const entries = [
      ["train/n01440764/n01440764_10026.JPEG", 0],
      ["train/n01443537/n01443537_1.JPEG", 1],
      ["train/n01443537/n01443537_2.JPEG", 1],
    ] as const;
    for (const [p] of entries) {
      await Deno.mkdir(`${dir}/root/${p.slice(0, p.lastIndexOf("/"))}`, { recursive: true });
      await Deno.writeFile(`${dir}/root/${p}`, jpg);
    }
    const list = `${dir}/ImageNet_LT_train.txt`;
    await Deno.writeTextFile(list, entries.map(([p, l]) => `${p} ${l}`).join("\n") + "\n");
    const got = [];
    for await (const im of imageNetLtImages(list, `${dir}/root`, { concurrency: 2 })) got.push(im);
    assertEquals(got.map((g) => [g.name, g.label]), entries.map(([p, l]) => [p, l]));
    assertEquals(got[2].bytes, jpg);
    await Deno.writeTextFile(list, "train/n09999999/missing.JPEG 5\n", { append: true });
    const e = await assertRejects(async () => {
      for await (const _ of imageNetLtImages(list, `${dir}/root`)) { /* consume */ }
    }, Error);
    assertStringIncludes(e.message, "missing.JPEG");
  });
});

Deno.test("jpeg: sharp decode + resize modes give exact shapes and close colours", async () => {
  const w = 64, h = 40;
  const rgb = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) rgb.set([200, 100, 50], i * 3);
  const jpg = await encodeJpeg(rgb, w, h, 95);
  const full = await decodeImage(jpg);
  assertEquals([full.width, full.height, full.data.length], [w, h, w * h * 3]);
  assert(meanAbsDiff(full.data, rgb) < 3);
  const cover = await decodeResized(jpg, { width: 32, height: 32 });
  assertEquals([cover.width, cover.height, cover.data.length], [32, 32, 32 * 32 * 3]);
  const fill = await decodeResized(jpg, { width: 24, height: 30, fit: "fill" });
  assertEquals([fill.width, fill.height, fill.data.length], [24, 30, 24 * 30 * 3]);
  const crop = await decodeResized(jpg, { width: 28, height: 28, resizeShorter: 32 });
  assertEquals([crop.width, crop.height, crop.data.length], [28, 28, 28 * 28 * 3]);
  for (const img of [cover, fill, crop]) {
    const ref = new Uint8Array(img.data.length).map((_, i) => [200, 100, 50][i % 3]);
    assert(meanAbsDiff(img.data, ref) < 3);
  }
  await assertRejects(() => decodeImage(new Uint8Array([1, 2, 3]), "junk.jpg"), Error, "junk.jpg");
});
