// Runs every JSDoc `@example` of the library and the recipes as written, with Deno's doc-test
// runner (`deno test --doc`), from a scratch folder holding tiny stand-ins for the files the
// examples name: the official dataset archives in their official layout with a few images each
// (`cifar-10-binary.tar.gz`, `test_32x32.mat`, `CUB_200_2011.tgz`, ...) and one JPEG
// (`image.jpg`). Relative imports in an example resolve against its source file, file paths
// against that folder, so `readCifar10("cifar-10-binary.tar.gz", "train")` reads a real archive.
// Examples whose point is the download of a real dataset are type-checked only
// (`deno check --doc-only`); TYPE_CHECK_ONLY lists their files and why. README.md's blocks are
// run by tests/readme_example_test.ts. The examples run with the small register tiles of
// TUNING.fastCompile (COLLAPSE_TUNING=fast-compile), as the end-to-end tests do.
//
// Usage: deno task doc:test [paths...]   (default: the whole repository but tests/ and bench/)

import { encodeJpeg } from "../data/formats/jpeg.ts";
import { writeCifar100Fixture, writeCifar10Fixture } from "./fixtures/cifar_fixture.ts";
import { writeCubFixture } from "./fixtures/cub_fixture.ts";
import { makeMat5, svhnVars } from "./fixtures/mat5_writer.ts";
import { writeStl10Fixture } from "./fixtures/stl10_fixture.ts";
import { SUBPROCESS_ENV } from "./fast_compile.ts";

const root = decodeURIComponent(new URL("../", import.meta.url).pathname);

/**
 * What the examples are collected from by default: the whole repository, less the tests and
 * benches (no examples) and README.md (tests/readme_example_test.ts runs its blocks). One folder
 * with `--ignore`, because `deno test --doc` does not apply `--ignore` to folders given next to a
 * file.
 */
const SOURCES = ["."];
const NOT_SOURCES = ["tests/", "bench/", "README.md"];

/** Files whose examples are type-checked but not run, with the reason. */
const TYPE_CHECK_ONLY: Record<string, string> = {
  "data/download.ts": "downloads the 170 MB CIFAR-10 archive from its official URL",
  "data/catalog.ts": "downloads the 170 MB CIFAR-10 archive from its official URL",
  "data/datasets/load.ts": "downloads and prepares the official CIFAR-10",
  "data/datasets/mod.ts": "downloads and prepares the official CIFAR-100",
  "recipes/lib/run_recipe.ts": "downloads CIFAR-10 for a recipe run and ends the process",
};

/** A tiny, smooth RGB image (JPEGs of noise compress badly and decode inexactly). */
function gradient(width: number, height: number): Uint8Array {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      rgb[o] = 40 + Math.round((180 * x) / width);
      rgb[o + 1] = 40 + Math.round((180 * y) / height);
      rgb[o + 2] = 120;
    }
  }
  return rgb;
}

/** Writes the stand-in dataset files into `dir`. */
export async function writeExampleFiles(dir: string): Promise<void> {
  await writeCifar10Fixture(`${dir}/cifar-10-binary.tar.gz`);
  await writeCifar100Fixture(`${dir}/cifar-100-binary.tar.gz`);
  await writeStl10Fixture(`${dir}/stl10_binary.tar.gz`);
  await writeCubFixture(`${dir}/CUB_200_2011.tgz`, false);
  const n = 12;
  const images = new Uint8Array(n * 3072).map((_, i) => (i * 37) & 255);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 10);
  for (const name of ["train_32x32.mat", "test_32x32.mat"]) {
    await Deno.writeFile(`${dir}/${name}`, makeMat5(svhnVars(images, labels, "double"), true));
  }
  const jpg = await encodeJpeg(gradient(64, 48), 64, 48, 90);
  await Deno.writeFile(`${dir}/image.jpg`, jpg);
  const entries = [
    "train/n01440764/n01440764_10026.JPEG 0",
    "train/n01443537/n01443537_1.JPEG 1",
  ];
  for (const line of entries) {
    const path = line.split(" ")[0];
    await Deno.mkdir(`${dir}/imagenet/${path.slice(0, path.lastIndexOf("/"))}`, {
      recursive: true,
    });
    await Deno.writeFile(`${dir}/imagenet/${path}`, jpg);
  }
  await Deno.writeTextFile(`${dir}/ImageNet_LT_train.txt`, entries.join("\n") + "\n");
}

async function deno(args: string[], cwd: string): Promise<number> {
  const { code } = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    env: SUBPROCESS_ENV,
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  return code;
}

if (import.meta.main) {
  const sources = (Deno.args.length ? Deno.args : SOURCES).map((p) => `${root}${p}`);
  const checkOnly = Object.keys(TYPE_CHECK_ONLY).map((p) => `${root}${p}`);
  const dir = await Deno.makeTempDir({ prefix: "collapse-doc-examples-" });
  let code: number;
  try {
    await writeExampleFiles(dir);
    const config = ["--config", `${root}deno.json`];
    code = await deno(["check", "--doc-only", ...config, ...checkOnly], dir);
    if (code === 0) {
      code = await deno(
        [
          "test",
          "--doc",
          "--parallel",
          "-A",
          ...config,
          `--ignore=${[...NOT_SOURCES.map((p) => `${root}${p}`), ...checkOnly].join(",")}`,
          ...sources,
        ],
        dir,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  Deno.exit(code);
}
