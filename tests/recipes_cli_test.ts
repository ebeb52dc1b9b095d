// The recipe command line and run-folder reliability, on a tiny recipe (cifar10_lt with ResNet-8
// at half width, tests/fixtures/tiny_recipe.ts) over the CIFAR-10 fixture: --print-config and
// --config, the schedule every length gets (and where it is stated), --eval-only, --resume with a
// changed --epochs (refused, or --extend), --resume PATH into a new folder, a changed float in a
// checkpoint, one writer per folder, and kill -9 at random moments (during checkpoint writes too)
// leaving no temporary file once a run completes.
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { pathExists } from "../data/path_exists.ts";
import { initDevice } from "../gpu/device.ts";
import { readCheckpointInfo } from "../nn/checkpoint.ts";
import { parseSafetensorsHeader } from "../nn/io/safetensors.ts";
import { RECIPES } from "../recipes/lib/recipe_specs.ts";
import { readMetrics } from "../recipes/lib/run_dir.ts";
import { runRecipe } from "../recipes/lib/run_recipe.ts";
import type { EpochRecord } from "../recipes/lib/run_outputs.ts";
import { writeCifar10Fixture } from "./fixtures/cifar_fixture.ts";
import { TINY_CIFAR } from "./fixtures/tiny_recipe.ts";
import { SUBPROCESS_ENV, useFastCompile } from "./fast_compile.ts";

useFastCompile();
await initDevice();

const ROOT = new URL("..", import.meta.url).pathname;
const TMP = await Deno.makeTempDir({ prefix: "collapse_cli_" });
const DATA = `${TMP}/data`;
await Deno.mkdir(DATA, { recursive: true });
await writeCifar10Fixture(`${DATA}/cifar-10-binary.tar.gz`, 60, 40, 7);
const opts = { sanitizeOps: false, sanitizeResources: false };

interface Outcome {
  code: number;
  out: string;
  err: string;
}

async function tiny(args: string[]): Promise<Outcome> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runRecipe(TINY_CIFAR, args, {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
  });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

function spawnTiny(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}tests/fixtures/tiny_recipe.ts`, ...args],
    cwd: ROOT,
    stdout: "null",
    stderr: "piped",
    env: SUBPROCESS_ENV,
  }).spawn();
}

const base = (out: string, limit = 32) => [
  "--data-dir",
  DATA,
  "--out",
  out,
  "--limit",
  String(limit),
  "--batch-size",
  "16",
  "--workers",
  "0",
  "--no-verify", // the fixture is not the official release
];

const TIMING = new Set(["images_per_sec", "epoch_seconds", "eval_images_per_sec"]);
function comparable(r: EpochRecord): Record<string, unknown> {
  return Object.fromEntries(Object.entries(r).filter(([k]) => !TIMING.has(k)));
}

async function tempFiles(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).filter((n) =>
    n.endsWith(".tmp")
  ).sort();
}

Deno.test("cli: --help of every recipe fits 100 columns and states the schedule", async () => {
  for (const spec of Object.values(RECIPES)) {
    const out: string[] = [];
    const code = await runRecipe(spec, ["--help"], { out: (l) => out.push(l), err: () => {} });
    assertEquals(code, 0);
    const text = out.join("\n");
    for (const line of text.split("\n")) {
      assert(line.length <= 100, `${spec.name}: ${line.length} columns: ${line}`);
    }
    for (const f of ["--resume [PATH]", "--eval-only", "--config FILE", "--print-config"]) {
      assertStringIncludes(text, f);
    }
    assertStringIncludes(text, `Schedule (${spec.defaults.epochs} epochs): peak lr`);
    // Two columns: flags indented, their help aligned, continuation lines under the help.
    assert(/\n {2}--epochs N {2,}training epochs/.test(text), text);
    assert(/\n {2}--sampler \S+\n {30}batch sampler/.test(text), text);
  }
  const out: string[] = [];
  await runRecipe(RECIPES.cifar10_lt, ["-h"], { out: (l) => out.push(l), err: () => {} });
  assertStringIncludes(
    out.join(" ").replace(/\s+/g, " "),
    "Schedule (200 epochs): peak lr 0.1; linear warmup over 5 epochs (stepped per epoch, as " +
      "the official code: lr x (e + 1) / 5 in epoch e); x0.1 after epochs 160 and 180",
  );
});

Deno.test(
  "cli: --print-config and --config (round trip, flags override, errors)",
  opts,
  async () => {
    const out = `${TMP}/never`;
    const p = await tiny([...base(out), "--epochs", "10", "--print-config"]);
    assertEquals(p.code, 0, p.err);
    const printed = JSON.parse(p.out);
    assertEquals(printed.recipe, "cifar10_lt");
    assertEquals(printed.flags.epochs, 10);
    assertEquals(printed.flags.limit, 32);
    assertEquals(printed.flags.out, out);
    assertEquals(printed.schedule.warmupEpochs, 1);
    assertEquals(printed.schedule.warmupBy, "step");
    assertEquals(printed.schedule.milestones, [8, 9]);
    assertStringIncludes(printed.schedule.description, "linear warmup over 1 epoch (per step)");
    assert(!("resume" in printed.flags) && !("printConfig" in printed.flags));

    const file = `${TMP}/settings.json`;
    await Deno.writeTextFile(file, p.out);
    const r = await tiny([
      "--config",
      file,
      "--epochs",
      "12",
      "--milestones",
      "6",
      "--print-config",
    ]);
    assertEquals(r.code, 0, r.err);
    const again = JSON.parse(r.out);
    assertEquals(again.flags, { ...printed.flags, epochs: 12, milestones: [6] });
    assertEquals(again.schedule.milestones, [6]);

    const bad = async (content: unknown, msg: string, extra: string[] = []) => {
      await Deno.writeTextFile(file, JSON.stringify(content));
      const b = await tiny(["--config", file, "--print-config", ...extra]);
      assertEquals(b.code, 2, JSON.stringify(content));
      assertStringIncludes(b.err, msg);
    };
    await bad({ flags: { epochs: -3 } }, `--epochs must be >= 1, got -3 (in --config ${file})`);
    await bad({ flags: { epoch: 3 } }, `--config ${file}: unknown setting "epoch"`);
    await bad({ recipe: "cub", flags: {} }, "holds settings of recipe cub, not cifar10_lt");
    await bad([1], "expected a JSON object");
    const missing = await tiny(["--config", `${TMP}/nope.json`]);
    assertEquals(missing.code, 2);
    assertStringIncludes(missing.err, `--config ${TMP}/nope.json: cannot read it`);
    assert(!(await pathExists(out)), "nothing written");
  },
);

Deno.test(
  "cli: bad schedule values and negative numbers exit 2 writing nothing",
  opts,
  async () => {
    const out = `${TMP}/bad`;
    const cases: [typeof TINY_CIFAR, string[], string][] = [
      [TINY_CIFAR, ["--epochs", "-3"], "--epochs must be >= 1, got -3"],
      [TINY_CIFAR, ["--epochs", "10", "--warmup-epochs", "11"], "--warmup-epochs 11 is more than"],
      [TINY_CIFAR, ["--warmup-epochs", "-1"], "--warmup-epochs must be >= 0, got -1"],
      [TINY_CIFAR, ["--milestones", "9,4"], "--milestones must be strictly increasing"],
      [TINY_CIFAR, ["--milestones", "x"], "--milestones must be a comma list"],
      [TINY_CIFAR, ["--epochs", "10", "--milestones", "10"], "is not before the last epoch"],
      [TINY_CIFAR, ["--warmup-epochs", "5", "--milestones", "3"], "falls inside the 5-epoch"],
      [RECIPES.cub, ["--milestones", "50"], "cub uses a cosine schedule"],
      [TINY_CIFAR, ["--extend"], "--extend applies to --resume only"],
    ];
    for (const [spec, args, msg] of cases) {
      const err: string[] = [];
      const code = await runRecipe(spec, [...base(out), ...args], {
        out: () => {},
        err: (l) => err.push(l),
      });
      assertEquals(code, 2, args.join(" "));
      assertStringIncludes(err.join("\n"), msg);
    }
    assert(!(await pathExists(out)), "nothing written");
  },
);

Deno.test(
  "cli: schedule stated, --eval-only, --resume with another --epochs, --extend, --resume PATH",
  opts,
  async () => {
    const a = `${TMP}/a`;
    const r = await tiny([...base(a), "--epochs", "2"]);
    assertEquals(r.code, 0, r.err);
    const config = JSON.parse(await Deno.readTextFile(`${a}/config.json`));
    assertEquals(config.effective.schedule.warmupEpochs, 1);
    assertEquals(config.effective.schedule.warmupBy, "step");
    const stated = "lr schedule: peak lr 0.1; linear warmup over 1 epoch (per step); no decay";
    assertStringIncludes(await Deno.readTextFile(`${a}/report.md`), stated);
    assertStringIncludes(config.effective.scheduleDescription, "per step");
    const recs = (await readMetrics(a)) as EpochRecord[];
    // Two steps per epoch, warmup per step over epoch 1: the last step of epoch 1 ran at 0.05.
    assertEquals(recs.map((x) => x.lr), [0.05, 0.1]);
    assert(!(await pathExists(`${a}/run.lock`)), "the lock is released");

    // --eval-only: the best checkpoint evaluated again gives the same numbers, written beside it.
    const best = recs.filter((x) => x.top1 !== undefined).reduce((p, q) =>
      q.top1! > p.top1! ? q : p
    );
    const ev = await tiny([
      "--eval-only",
      `${a}/best.safetensors`,
      "--data-dir",
      DATA,
      "--no-verify",
    ]);
    assertEquals(ev.code, 0, ev.err);
    assertStringIncludes(ev.out, `report: ${a}/eval-best/report.md`);
    const er = (await readMetrics(`${a}/eval-best`)) as EpochRecord[];
    assertEquals(er.length, 1);
    assertEquals(er[0].epoch, best.epoch);
    assertEquals(er[0].top1, best.top1);
    assertEquals(er[0].per_class, best.per_class);
    assertStringIncludes(await Deno.readTextFile(`${a}/eval-best/report.md`), "evaluation only");
    // metrics.jsonl's epoch is the 0-based index; a checkpoint's epoch counts epochs completed.
    assertEquals(JSON.parse(await Deno.readTextFile(`${a}/eval-best/config.json`)).evalOnly, {
      checkpoint: `${a}/best.safetensors`,
      epoch: best.epoch + 1,
    });
    // --config reads a run's config.json back.
    const pc = await tiny(["--config", `${a}/config.json`, "--print-config"]);
    assertEquals(pc.code, 0, pc.err);
    assertEquals(JSON.parse(pc.out).flags.epochs, 2);
    assertEquals(JSON.parse(pc.out).flags.out, a);

    // Another --epochs on resume changes the schedule: refused, the folder untouched ...
    const before = await Deno.readTextFile(`${a}/metrics.jsonl`);
    const refused = await tiny([...base(a), "--resume", "--epochs", "3"]);
    assertEquals(refused.code, 2);
    assertStringIncludes(refused.err, "--epochs was 2, now 3");
    assertStringIncludes(refused.err, "--extend");
    assertEquals(await Deno.readTextFile(`${a}/metrics.jsonl`), before);

    // ... unless --extend: into a new folder from a's last checkpoint (its history copied) ...
    const fork = `${TMP}/fork`;
    const f = await tiny([
      ...base(fork),
      "--resume",
      `${a}/last.safetensors`,
      "--epochs",
      "3",
      "--extend",
    ]);
    assertEquals(f.code, 0, f.err);
    assertStringIncludes(f.err, "--extend: --epochs was 2, now 3");
    assertStringIncludes(f.err, "epochs 1-2 ran under the old schedule");
    // ... and in a itself, named by its folder (no --out: the run continues there).
    const e = await tiny([
      "--resume",
      a,
      "--epochs",
      "3",
      "--extend",
      "--data-dir",
      DATA,
      "--no-verify",
    ]);
    assertEquals(e.code, 0, e.err);
    const ra = (await readMetrics(a)) as EpochRecord[];
    const rf = (await readMetrics(fork)) as EpochRecord[];
    assertEquals(ra.map((x) => x.epoch), [0, 1, 2]);
    assertEquals(rf.map(comparable), ra.map(comparable));
    assertEquals((await readCheckpointInfo(`${fork}/last.safetensors`)).epoch, 3);
    const ca = JSON.parse(await Deno.readTextFile(`${a}/config.json`));
    assertEquals(ca.resumes.length, 1);
    assertStringIncludes(await Deno.readTextFile(`${a}/report.md`), "--extend: --epochs was 2");
    // A fork never writes into a folder holding another run.
    const onto = await tiny([...base(fork), "--resume", `${a}/last.safetensors`]);
    assertEquals(onto.code, 2);
    assertStringIncludes(onto.err.slice(0, 300), "already holds a run");

    // One changed float in last.safetensors: resume and eval refuse, naming the file.
    const c = `${TMP}/c`;
    await Deno.mkdir(c);
    for (const n of ["config.json", "metrics.jsonl", "last.safetensors"]) {
      await Deno.copyFile(`${a}/${n}`, `${c}/${n}`);
    }
    const bytes = await Deno.readFile(`${c}/last.safetensors`);
    const header = parseSafetensorsHeader(bytes);
    const w = header.entries["backbone.stem.conv.kernel"] ??
      Object.values(header.entries).find((x) => x.dtype === "F32")!;
    const at = header.dataStart + w.data_offsets[0] + 4;
    const view = new DataView(bytes.buffer);
    view.setFloat32(at, view.getFloat32(at, true) + 0.5, true);
    await Deno.writeFile(`${c}/last.safetensors`, bytes);
    const metricsBefore = await Deno.readTextFile(`${c}/metrics.jsonl`);
    const d = await tiny([...base(c), "--resume", "--epochs", "4", "--extend"]);
    assertEquals(d.code, 1);
    assertStringIncludes(d.err, `${c}/last.safetensors`);
    assertStringIncludes(d.err, "does not match its checksum");
    assertStringIncludes(d.err, "damaged");
    assertEquals(await Deno.readTextFile(`${c}/metrics.jsonl`), metricsBefore);
    const de = await tiny([
      "--eval-only",
      `${c}/last.safetensors`,
      "--data-dir",
      DATA,
      "--no-verify",
    ]);
    assertEquals(de.code, 1);
    assertStringIncludes(de.err, "does not match its checksum");
  },
);

Deno.test(
  "cli: one writer per folder; 5 random kill -9s (mid-write too) leave no temp file after a run",
  opts,
  async () => {
    const k = `${TMP}/killed`;
    const args = [...base(k, 16), "--epochs", "24"];
    let leftByKills = 0;
    let epoch = 0;
    for (let i = 0; i < 5; i++) {
      const child = spawnTiny([...args, ...(i > 0 ? ["--resume"] : [])]);
      const t0 = Date.now();
      // Wait until it holds the folder and has finished one more epoch.
      for (;;) {
        assert(Date.now() - t0 < 120_000, "the run got going");
        await new Promise((r) => setTimeout(r, 25));
        const lock = await Deno.readTextFile(`${k}/run.lock`).catch(() => "");
        if (!lock.includes(`"pid":${child.pid}`)) continue;
        const e = await readCheckpointInfo(`${k}/last.safetensors`).then((x) => x.epoch, () => 0);
        if (e > epoch) break;
      }
      if (i === 0) {
        // A second writer, and a resume, of a folder a live run holds: refused, naming both.
        for (const extra of [[], ["--resume"]]) {
          const second = await tiny([...args, ...extra]);
          assertEquals(second.code, 2, second.err);
          assertStringIncludes(second.err, `${k} is in use by another run (pid ${child.pid}`);
        }
      }
      // A random moment, then the next temporary file that appears (a checkpoint, the report,
      // a plot, the config being written): kill -9 at once.
      await new Promise((r) => setTimeout(r, Math.random() * 600));
      const watcher = Deno.watchFs(k, { recursive: false });
      const timer = setTimeout(() => watcher.close(), 3000);
      for await (const ev of watcher) {
        if (ev.kind === "create" && ev.paths.some((p) => p.endsWith(".tmp"))) break;
      }
      clearTimeout(timer);
      try {
        child.kill("SIGKILL");
      } catch {
        // it had already finished (then the next run refuses nothing and resumes nothing)
      }
      try {
        watcher.close();
      } catch {
        // closed by the timer
      }
      const status = await child.status;
      await child.stderr.cancel();
      assertEquals(status.signal, "SIGKILL", `kill ${i + 1} landed before the run finished`);
      leftByKills += (await tempFiles(k)).length;
      epoch = await readCheckpointInfo(`${k}/last.safetensors`).then((x) => x.epoch);
    }
    // Temporary files as killed runs of other ages leave them: a dead pid's, one of a live pid
    // (init) older than the next run, and one from a version without pids.
    const dead = new Deno.Command(Deno.execPath(), { args: ["eval", "0"] }).spawn();
    await dead.status;
    const planted = [
      `last.safetensors.${dead.pid}-0123456789ab.tmp`,
      "best.safetensors.1-0123456789ab.tmp", // pid 1 runs, but the file is older than the run
      "report.md.0123456789ab.tmp",
    ];
    const past = new Date(Date.now() - 60_000);
    for (const n of planted) {
      await Deno.writeTextFile(`${k}/${n}`, "partial");
      await Deno.utime(`${k}/${n}`, past, past);
    }
    const done = await tiny([...args, "--resume"]);
    assertEquals(done.code, 0, done.err);
    assertStringIncludes(done.err, "taking over the lock of pid");
    assertStringIncludes(done.err, "temporary file(s) that killed runs left");
    assertEquals(
      await tempFiles(k),
      [],
      `no temporary file remains (${leftByKills} left by kills)`,
    );
    assert(!(await pathExists(`${k}/run.lock`)));
    const records = await readMetrics(k);
    assertEquals(records.map((r) => r.epoch), Array.from({ length: 24 }, (_, j) => j));
  },
);

Deno.test({
  name: "cli: cleanup",
  ...opts,
  fn: async () => {
    await Deno.remove(TMP, { recursive: true });
  },
});
