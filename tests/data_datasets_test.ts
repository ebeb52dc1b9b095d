// loadDataset on fixtures in each dataset's official format (CIFAR-10/100 binary tarballs, SVHN
// .mat, STL-10 tarball, CUB tgz, ImageNet-LT lists + JPEG folder): ready loaders and dataset info;
// the official SVHN protocol (n_max = len(split) / K per split, capped classes keep all they have,
// no label shift), CIFAR-100's official normalisation, ImageNet-LT re-indexed by count with both
// groupings, the kept last partial batch; MD5 verification (fixtures refused, pinned copies
// accepted, every bit flip caught before a shard is written, --no-verify still checks CRCs, also
// after the members a reader stops at); the prepared cache keyed by its sources and rebuilt when a
// shard fails its CRC; stale temporaries; a batch larger than the data refused before writing.
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import {
  DATASET_STATS,
  DatasetOptionsError,
  DataUnavailableError,
  DataVerificationError,
  fileIdentity,
  loadDataset,
  type LoadDatasetOptions,
  loadShardsToMemory,
  prepareDataset,
  SVHN_LABEL_NOTE,
} from "../data/mod.ts";
import type { DatasetId } from "../data/datasets/registry.ts";
import { hashFile } from "../data/archive/checksum.ts";
import { writeCifar100Fixture, writeCifar10Fixture } from "./fixtures/cifar_fixture.ts";
import { writeCubFixture } from "./fixtures/cub_fixture.ts";
import { FIXTURE_WNIDS, writeImageNetLtFixture } from "./fixtures/imagenet_lt_fixture.ts";
import { makeMat5, svhnVars } from "./fixtures/mat5_writer.ts";
import { writeStl10Fixture } from "./fixtures/stl10_fixture.ts";

const TMP = await Deno.makeTempDir({ prefix: "collapse_datasets_" });
const opts = { sanitizeOps: false, sanitizeResources: false };
let dirs = 0;

async function freshDir(): Promise<string> {
  const d = `${TMP}/d${dirs++}`;
  await Deno.mkdir(d, { recursive: true });
  return d;
}

/** Every manifest.json under `dir` (a written shard folder). */
async function manifests(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      if (e.isDirectory) await walk(`${d}/${e.name}`);
      else if (e.name === "manifest.json") out.push(`${d}/${e.name}`);
    }
  };
  await walk(dir).catch(() => {});
  return out;
}

function quiet(logs: string[] = []): Pick<LoadDatasetOptions, "log"> {
  return { log: (l) => logs.push(l) };
}

/** A .mat SVHN split with `counts[c]` images of digit c; each image's pixels encode (c, mark). */
function svhnMat(counts: readonly number[], mark: number): Uint8Array {
  const labels: number[] = [];
  const most = Math.max(...counts);
  for (let j = 0; j < most; j++) for (let c = 0; c < 10; c++) if (j < counts[c]) labels.push(c);
  const images = new Uint8Array(labels.length * 3072);
  labels.forEach((c, i) => images.fill(c * 20 + mark, i * 3072, (i + 1) * 3072));
  return makeMat5(svhnVars(images, Int32Array.from(labels), "double"), true);
}

const SVHN_TRAIN = [5, 12, 12, 12, 12, 12, 12, 12, 12, 12]; // 113 images: n_max 11.3
const SVHN_EXTRA = [3, 20, 20, 20, 20, 20, 20, 20, 20, 20]; // 183 images: n_max 18.3

async function svhnData(dir: string): Promise<void> {
  await Deno.writeFile(`${dir}/train_32x32.mat`, svhnMat(SVHN_TRAIN, 0));
  await Deno.writeFile(`${dir}/extra_32x32.mat`, svhnMat(SVHN_EXTRA, 5));
  await Deno.writeFile(`${dir}/test_32x32.mat`, svhnMat(new Array(10).fill(2), 10));
}

Deno.test("loadDataset: every recipe dataset from its official-format files", opts, async () => {
  const d = await freshDir();
  await writeCifar10Fixture(`${d}/cifar-10-binary.tar.gz`, 20, 15, 1);
  await writeCifar100Fixture(`${d}/cifar-100-binary.tar.gz`, 40, 12, 2);
  await svhnData(d);
  await writeStl10Fixture(`${d}/stl10_binary.tar.gz`, 12, 8, 3);
  await writeCubFixture(`${d}/CUB_200_2011.tgz`, true);
  await writeImageNetLtFixture(d, [3, 3, 3], 1);
  const cases: [DatasetId, LoadDatasetOptions, number, [number, number, number], number][] = [
    ["cifar10", { ratio: 1 }, 10, [32, 32, 3], 100],
    ["cifar100", { ratio: 1 }, 100, [32, 32, 3], 40],
    ["svhn", { ratio: 0.1 }, 10, [32, 32, 3], 91],
    ["stl10", { ratio: 1 }, 10, [96, 96, 3], 12],
    ["cub", { ratio: 1, imageSize: 32 }, 3, [32, 32, 3], 6],
    ["imagenet_lt", { ratio: 1, imageSize: 32 }, 1000, [32, 32, 3], 9],
  ];
  for (const [id, o, k, shape, trainSize] of cases) {
    const ds = await loadDataset(id, {
      ...o,
      dataDir: d,
      verify: false,
      batchSize: 4,
      workers: 0,
      ...quiet(),
    });
    try {
      const { info } = ds;
      assertEquals(info.id, id);
      assertEquals(info.numClasses, k, id);
      assertEquals(info.inputShape, shape, id);
      assertEquals(info.trainSize, trainSize, id);
      assertEquals(info.trainCounts.reduce((a, b) => a + b), trainSize, id);
      assert(info.sources.length >= 1 && info.sources.every((s) => s.md5 || s.kind === "folder"));
      assertEquals(info.groups, info.groupings[0].rule);
      assertEquals(ds.train.classCounts(), info.trainCounts, id);
      // The last partial batch is kept (the official loader's default).
      assertEquals(ds.train.batchesPerEpoch(), Math.ceil(trainSize / 4), id);
      const sizes: number[] = [];
      for await (const b of ds.train.batches(0)) {
        assertEquals(b.shape.slice(1), shape, id);
        sizes.push(b.shape[0]);
      }
      assertEquals(sizes.length, Math.ceil(trainSize / 4), id);
      assertEquals(sizes.reduce((a, b) => a + b), trainSize, id);
      let seen = 0;
      for await (const b of ds.test.batches(0)) seen += b.shape[0];
      assertEquals(seen, info.testSize, id);
    } finally {
      ds.close();
    }
  }
  // dropLast: true drops it.
  using ds = await loadDataset("cifar10", {
    ratio: 1,
    dataDir: d,
    verify: false,
    batchSize: 16,
    dropLast: true,
    workers: 0,
  });
  assertEquals(ds.train.batchesPerEpoch(), 6);
  // Options are checked by name.
  const bad = await assertRejects(
    () => loadDataset("cifar10", { dataDir: d, batchsize: 3 } as LoadDatasetOptions),
    DatasetOptionsError,
  );
  assertStringIncludes(bad.message, `unknown option "batchsize"`);
  assertStringIncludes(bad.message, "batchSize");
});

Deno.test(
  "SVHN: the official protocol (train + extra, n_max = len/K, capped classes)",
  opts,
  async () => {
    const d = await freshDir();
    await svhnData(d);
    const info = await prepareDataset("svhn", {
      dataDir: d,
      ratio: 0.1,
      verify: false,
      ...quiet(),
    });
    // floor(11.3 * 0.1^(i/9)) capped at what each class has, plus the same for extra (n_max 18.3).
    const train = [5, 8, 6, 5, 4, 3, 2, 1, 1, 1];
    const extra = [3, 14, 10, 8, 6, 5, 3, 3, 2, 1];
    assertEquals(info.trainCounts, train.map((n, c) => n + extra[c]));
    assertEquals(info.sources.map((s) => s.id), ["svhn-train", "svhn-extra", "svhn-test"]);
    assert(info.notes.includes(SVHN_LABEL_NOTE));
    assert(
      info.notes.some((n) => n.includes("train_32x32.mat class 0: 5 of 11")),
      info.notes.join(),
    );
    assert(info.notes.some((n) => n.includes("extra_32x32.mat class 0: 3 of 18")));
    // No label shift: every image keeps its own label (pixels encode it), train part then extra.
    const a = await loadShardsToMemory(info.trainDir);
    for (let i = 0; i < a.labels.length; i++) {
      const v = a.images[i * 3072];
      assertEquals(Math.floor(v / 20), a.labels[i], `image ${i}`);
      assertEquals(v % 20, i < 36 ? 0 : 5, `image ${i} from ${i < 36 ? "train" : "extra"}`);
    }
    // extra: false drops extra_32x32.mat.
    const only = await prepareDataset("svhn", {
      dataDir: d,
      ratio: 0.1,
      extra: false,
      verify: false,
      ...quiet(),
    });
    assertEquals(only.trainCounts, train);
    assertEquals(only.sources.map((s) => s.id), ["svhn-train", "svhn-test"]);
    // Every missing file is named at once.
    const empty = await freshDir();
    const e = await assertRejects(
      () => prepareDataset("svhn", { dataDir: empty, download: false, ...quiet() }),
      DataUnavailableError,
    );
    for (const f of ["train_32x32.mat", "extra_32x32.mat", "test_32x32.mat"]) {
      assertStringIncludes(e.message, f);
    }
    assertStringIncludes(e.message, "3 files are missing");
  },
);

Deno.test("CIFAR-100 is normalised with the CIFAR-10 statistics unless asked", opts, async () => {
  const d = await freshDir();
  const fx = await writeCifar100Fixture(`${d}/cifar-100-binary.tar.gz`, 40, 12, 2);
  for (const [stats, want] of [[undefined, "cifar10"], ["dataset", "cifar100"]] as const) {
    using ds = await loadDataset("cifar100", {
      dataDir: d,
      verify: false,
      batchSize: 4,
      workers: 0,
      ...(stats ? { stats } : {}),
    });
    const s = DATASET_STATS[want];
    assertEquals(ds.info.stats, s);
    assertEquals(ds.info.statsChoice, stats ?? "official");
    assertEquals((ds.info.testAugment as { mean: readonly number[] }).mean, s.mean);
    const first = (await ds.test.batches(0).next()).value!;
    const px = fx.test.images[0];
    const expect = (px / 255 - s.mean[0]) / s.std[0];
    assert(Math.abs(first.images[0] - expect) < 1e-5, `${first.images[0]} vs ${expect}`);
  }
});

Deno.test("ImageNet-LT: classes re-indexed by training count, both groupings", opts, async () => {
  const d = await freshDir();
  await writeImageNetLtFixture(d, [1, 3, 2], 1);
  const info = await prepareDataset("imagenet_lt", {
    dataDir: d,
    imageSize: 32,
    verify: false,
    ...quiet(),
  });
  assertEquals(info.trainCounts.slice(0, 4), [3, 2, 1, 0]);
  assertEquals(info.classNames.slice(0, 3), [FIXTURE_WNIDS[1], FIXTURE_WNIDS[2], FIXTURE_WNIDS[0]]);
  assertEquals(info.groupings.map((g) => g.name), ["index ranges", "train count"]);
  assertEquals(info.groups, {
    kind: "ranges",
    head: [0, 389],
    medium: [390, 834],
    tail: [835, 999],
  });
  const byCount = info.groupings[1].rule;
  assert(byCount.kind === "train-count" && byCount.trainCounts[0] === 3 && byCount.many === 100);
  const test = await loadShardsToMemory(info.testDir).catch(() => null);
  assertEquals(test, null, "encoded shards hold JPEGs");
});

Deno.test(
  "verification: fixtures refused, pinned copies accepted, bit flips caught",
  opts,
  async () => {
    const d = await freshDir();
    await writeCifar10Fixture(`${d}/cifar-10-binary.tar.gz`, 20, 15, 1);
    const archive = `${d}/cifar-10-binary.tar.gz`;
    // In the official format, but not the official release: refused, naming --no-verify.
    const e = await assertRejects(
      () => prepareDataset("cifar10", { dataDir: d }),
      DataVerificationError,
    );
    assertStringIncludes(e.message, archive);
    assertStringIncludes(e.message, "--no-verify");
    assertEquals(await manifests(d), [], "nothing written");
    // --no-verify: accepted with one warning line.
    const logs: string[] = [];
    const ok = await prepareDataset("cifar10", { dataDir: d, verify: false, ...quiet(logs) });
    assertEquals(logs.filter((l) => l.includes("warning")).length, 1);
    assertEquals(ok.sources[0].official, false);
    assert(ok.notes.some((n) => n.includes("not the official release")));
    // The digest is cached next to the file, keyed by size and mtime.
    const md5 = await hashFile(archive, "md5");
    assertEquals((await fileIdentity(archive)).cached, true);
    assertEquals(JSON.parse(await Deno.readTextFile(`${archive}.verified.json`)).md5, md5);
    // Pinned to its own MD5, the copy is verified like an official file.
    const pinned = await prepareDataset("cifar10", {
      dataDir: d,
      md5: { cifar10: md5 },
      ...quiet(),
    });
    assertEquals(pinned.sources[0].official, true);

    // A bit flip anywhere (gzip header, deflate data, trailer) is caught before any shard.
    const good = await Deno.readFile(archive);
    const positions = [4, 9, 40, Math.floor(good.length / 3), Math.floor(good.length * 0.77)];
    positions.push(good.length - 9, good.length - 1);
    for (const pos of positions) {
      const dd = await freshDir();
      const flipped = good.slice();
      flipped[pos] ^= 1 << (pos % 8);
      await Deno.writeFile(`${dd}/cifar-10-binary.tar.gz`, flipped);
      await assertRejects(
        () => prepareDataset("cifar10", { dataDir: dd, md5: { cifar10: md5 }, ...quiet() }),
        DataVerificationError,
        undefined,
        `flip at ${pos}`,
      );
      assertEquals(await manifests(dd), [], `flip at ${pos}: nothing written`);
      // Without verification the CRC / structure checks still catch a flip in the data.
      if (pos > 40 && pos < good.length - 8) {
        const err = await assertRejects(
          () => prepareDataset("cifar10", { dataDir: dd, verify: false, ...quiet() }),
          Error,
        );
        assertStringIncludes(err.message, `${dd}/cifar-10-binary.tar.gz`, `flip at ${pos}`);
        assertEquals(await manifests(dd), [], `flip at ${pos}, --no-verify: nothing written`);
      }
    }
  },
);

Deno.test("STL-10: a corrupt gzip stream after the split's members is caught", opts, async () => {
  const d = await freshDir();
  await writeStl10Fixture(`${d}/stl10_binary.tar.gz`, 12, 8, 3);
  const good = await Deno.readFile(`${d}/stl10_binary.tar.gz`);
  const bad = good.slice();
  bad[bad.length - 20] ^= 0x10; // in the deflate data of unlabeled_X.bin, the last member
  await Deno.writeFile(`${d}/stl10_binary.tar.gz`, bad);
  const e = await assertRejects(
    () => prepareDataset("stl10", { dataDir: d, verify: false, ...quiet() }),
    Error,
  );
  assertStringIncludes(e.message, `${d}/stl10_binary.tar.gz`);
  assertEquals(await manifests(d), []);
  await Deno.writeFile(`${d}/stl10_binary.tar.gz`, good);
  const info = await prepareDataset("stl10", { dataDir: d, verify: false, ...quiet() });
  assertEquals(info.trainSize, 12);
});

Deno.test(
  "prepared cache: keyed by its sources, rebuilt after a bad shard, temps cleaned",
  opts,
  async () => {
    const d = await freshDir();
    const archive = `${d}/cifar-10-binary.tar.gz`;
    await writeCifar10Fixture(archive, 20, 15, 1);
    const o = { dataDir: d, verify: false, ratio: 0.1 };
    const first = await prepareDataset("cifar10", { ...o, ...quiet() });
    assertEquals(first.reused, false);
    assertEquals((await prepareDataset("cifar10", { ...o, ...quiet() })).reused, true);

    // A replaced archive (other images, other counts) is not ignored.
    await writeCifar10Fixture(archive, 30, 15, 9);
    const logs: string[] = [];
    const second = await prepareDataset("cifar10", { ...o, ...quiet(logs) });
    assertEquals(second.reused, false);
    assert(logs.some((l) => l.includes("changed since the shards were made")), logs.join("\n"));
    assertEquals(second.trainSize, (await loadShardsToMemory(second.trainDir)).labels.length);

    // A shard that fails its CRC is rebuilt instead of stopping the run.
    const shard = `${second.trainDir}/shard-00000.bin`;
    const bytes = await Deno.readFile(shard);
    bytes[bytes.length - 3] ^= 0xff;
    await Deno.writeFile(shard, bytes);
    logs.length = 0;
    const third = await prepareDataset("cifar10", { ...o, ...quiet(logs) });
    assertEquals(third.reused, false);
    assert(logs.some((l) => l.includes("a shard failed its check")), logs.join("\n"));
    await loadShardsToMemory(third.trainDir);

    // Temporaries of dead processes are removed at start; a live one's are kept.
    const dead = `${third.dir}/train.tmp-999999999-abc`;
    const deadRoot = `${d}/prepared/cifar10-r1-s0-lall.tmp-999999999-x`;
    const live = `${third.dir}/test.tmp-${Deno.pid}-abc`;
    const deadOther = `${d}/prepared/cifar10-r0.5-s0-lall/train.tmp-999999999-z`; // another key
    for (const p of [dead, deadRoot, live, deadOther]) await Deno.mkdir(p, { recursive: true });
    await Deno.writeTextFile(`${third.dir}/train.list-999999999.txt`, "x");
    logs.length = 0;
    assertEquals((await prepareDataset("cifar10", { ...o, ...quiet(logs) })).reused, true);
    for (const p of [dead, deadRoot, deadOther, `${third.dir}/train.list-999999999.txt`]) {
      await assertRejects(() => Deno.stat(p), Deno.errors.NotFound, undefined, p);
    }
    await Deno.stat(live);
    assert(logs.some((l) => l.includes("removed 4 temporary")), logs.join("\n"));

    // The archive gone, intact shards are still used.
    await Deno.remove(archive);
    logs.length = 0;
    assertEquals((await prepareDataset("cifar10", { ...o, ...quiet(logs) })).reused, true);
    assert(logs.some((l) => l.includes("using the shards prepared from it")));
  },
);

Deno.test("a batch larger than the training split is refused before any shard", opts, async () => {
  const d = await freshDir();
  await writeCifar10Fixture(`${d}/cifar-10-binary.tar.gz`, 20, 15, 1);
  const e = await assertRejects(
    () => loadDataset("cifar10", { dataDir: d, verify: false, limit: 20, batchSize: 64 }),
    DatasetOptionsError,
  );
  assertEquals(e.option, "batchSize");
  assertStringIncludes(e.message, "batchSize 64 is larger than the training split (20 images");
  assertEquals(await manifests(d), []);
  using ok = await loadDataset("cifar10", { dataDir: d, verify: false, limit: 20, batchSize: 20 });
  assertEquals(ok.train.batchesPerEpoch(), 1);
});

Deno.test("prepared cache: processes preparing one key take turns", opts, async () => {
  const d = await freshDir();
  await writeCifar10Fixture(`${d}/cifar-10-binary.tar.gz`, 20, 15, 1);
  // Four preparations of the same key at once (a sweep's parallel runs sharing a data folder, in
  // separate processes): one writes the shards, the others wait and reuse them.
  const code = `
    import { prepareDataset } from "${new URL("../data/mod.ts", import.meta.url).href}";
    const info = await prepareDataset("cifar10", { dataDir: Deno.args[0], verify: false,
      ratio: 0.1, log: (l) => console.error(l) });
    console.log(JSON.stringify({ reused: info.reused, train: info.trainDir }));`;
  const runs = await Promise.all(Array.from({ length: 4 }, () =>
    new Deno.Command(Deno.execPath(), {
      args: ["eval", "--quiet", code, d],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output()));
  const results = runs.map((r) => {
    assertEquals(r.code, 0, new TextDecoder().decode(r.stderr));
    return JSON.parse(new TextDecoder().decode(r.stdout));
  });
  assertEquals(results.filter((r) => !r.reused).length, 1, JSON.stringify(results));
  const shards = await loadShardsToMemory(results[0].train);
  assert(shards.labels.length > 0);
});

Deno.test({
  name: "datasets: cleanup",
  ...opts,
  fn: async () => {
    await Deno.remove(TMP, { recursive: true });
  },
});
