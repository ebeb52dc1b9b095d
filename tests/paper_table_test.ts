// recipes/paper_table.ts on the CIFAR-10/100 fixtures (2 datasets x 2 methods x 2 seeds, tiny
// --limit, 2 epochs, 2 runs at a time): killed with SIGKILL mid-sweep, its runs in flight die with
// it; rerun, it finishes without redoing the finished runs and resumes the interrupted ones; the
// table's numbers equal the runs' own report.md values; missing runs are shown as missing.
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { writeCifar100Fixture, writeCifar10Fixture } from "./fixtures/cifar_fixture.ts";
import type { PaperTable } from "../recipes/lib/paper_table_report.ts";
import { SUBPROCESS_ENV } from "./fast_compile.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const TMP = await Deno.makeTempDir({ prefix: "collapse_paper_table_" });
const DATA = `${TMP}/data`;
const OUT = `${TMP}/sweep`;
const opts = { sanitizeOps: false, sanitizeResources: false };

await Deno.mkdir(DATA, { recursive: true });
await writeCifar10Fixture(`${DATA}/cifar-10-binary.tar.gz`, 60, 40, 7);
await writeCifar100Fixture(`${DATA}/cifar-100-binary.tar.gz`, 1000, 40, 5);

const ARGS = [
  "--out",
  OUT,
  "--data-dir",
  DATA,
  "--datasets",
  "cifar10,cifar100",
  "--ratios",
  "0.02",
  "--methods",
  "etf+dr,learnable+ce",
  "--backbones",
  "resnet32",
  "--seeds",
  "0,1",
  "--epochs",
  "2",
  "--limit",
  "8",
  "--batch-size",
  "4",
  "--parallel",
  "2",
  "--no-verify", // the fixtures are not the official releases
];
const NAMES = ["cifar10", "cifar100"].flatMap((d) =>
  ["etf_dr", "learnable_ce"].flatMap((m) => [0, 1].map((s) => `${d}-r0.02-resnet32-${m}-seed${s}`))
);

function sweep(extra: string[] = []) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}recipes/paper_table.ts`, ...ARGS, ...extra],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: SUBPROCESS_ENV,
  });
}

async function finished(name: string): Promise<boolean> {
  try {
    const lines = (await Deno.readTextFile(`${OUT}/${name}/metrics.jsonl`)).trim().split("\n");
    const report = await Deno.readTextFile(`${OUT}/${name}/report.md`);
    return lines.length === 2 && report.includes("- epochs run: 2;");
  } catch {
    return false;
  }
}

/** Processes whose command line names the sweep root (Linux /proc). */
function processesOf(root: string): number[] {
  const pids: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      if (Deno.readTextFileSync(`/proc/${e.name}/cmdline`).includes(root)) pids.push(+e.name);
    } catch { /* gone */ }
  }
  return pids;
}

/** The best/last rows of a run's report.md: [top-1, head, medium, tail, ECE] as printed. */
async function reportRows(name: string): Promise<Record<"best" | "last", string[]>> {
  const md = await Deno.readTextFile(`${OUT}/${name}/report.md`);
  const row = (which: string) =>
    md.split("\n").find((l) => l.startsWith(`| ${which} |`))!
      .split("|").map((c) => c.trim()).slice(3, 8);
  return { best: row("best"), last: row("last") };
}

Deno.test(
  "paper table: killed mid-sweep and rerun, finished runs are not redone",
  opts,
  async () => {
    const child = sweep().spawn();
    const t0 = Date.now();
    let done: string[] = [];
    while (Date.now() - t0 < 300_000) {
      await new Promise((r) => setTimeout(r, 100));
      done = [];
      for (const n of NAMES) if (await finished(n)) done.push(n);
      if (done.length >= 1) break;
    }
    assert(done.length >= 1 && done.length < NAMES.length, `finished before the kill: ${done}`);
    child.kill("SIGKILL");
    await child.status;
    await child.stdout.cancel();
    await child.stderr.cancel();
    // The runs in flight die with the sweep (their guards see the sweep's pipe close).
    if (Deno.build.os === "linux") {
      let left = processesOf(OUT);
      for (let i = 0; i < 100 && left.length; i++) {
        await new Promise((r) => setTimeout(r, 100));
        left = processesOf(OUT);
      }
      assertEquals(left, [], "no run goes on after the sweep is killed");
    }
    const finishedBefore: string[] = [];
    const interrupted: string[] = [];
    const configs = new Map<string, string>();
    for (const n of NAMES) {
      if (await finished(n)) finishedBefore.push(n);
      else if (await Deno.stat(`${OUT}/${n}`).then(() => true, () => false)) interrupted.push(n);
      try {
        configs.set(n, await Deno.readTextFile(`${OUT}/${n}/config.json`));
      } catch { /* not started */ }
    }

    const r = await sweep().output();
    const err = new TextDecoder().decode(r.stderr);
    assertEquals(r.code, 0, err);
    assertStringIncludes(err, `${finishedBefore.length} finished earlier`);
    assertStringIncludes(err, `(${interrupted.length} resumed)`);
    for (const n of NAMES) assert(await finished(n), `${n} finished`);
    for (const n of finishedBefore) {
      // Never started again: its config.json is untouched (a resume rewrites it).
      assertEquals(await Deno.readTextFile(`${OUT}/${n}/config.json`), configs.get(n), n);
      assert(!err.includes(`${n}: starting`) && !err.includes(`${n}: resuming`), n);
    }
    for (const n of interrupted) {
      assertStringIncludes(err, `${n}: resuming`);
      const c = JSON.parse(await Deno.readTextFile(`${OUT}/${n}/config.json`));
      if (configs.has(n)) assertEquals(c.resumes.length, 1, n);
    }

    // The table's numbers are the runs' own report.md values.
    const table: PaperTable = JSON.parse(await Deno.readTextFile(`${OUT}/table.json`));
    assertEquals(table.runsFinished, 8);
    assertEquals(table.rows.length, 4);
    const md = await Deno.readTextFile(`${OUT}/table.md`);
    const pct = (
      v: number | null | undefined,
    ) => (typeof v === "number" ? (v * 100).toFixed(2) : "n/a");
    for (const row of table.rows) {
      assertEquals(row.seedsFinished, 2);
      const reports = await Promise.all(row.runs.map((run) => reportRows(run.name)));
      for (const [i, run] of row.runs.entries()) {
        for (const which of ["best", "last"] as const) {
          const v = run[which]!;
          assertEquals(
            [pct(v.top1), pct(v.head), pct(v.medium), pct(v.tail), pct(v.ece)],
            reports[i][which],
            `${run.name} ${which}`,
          );
        }
      }
      // Mean over seeds of the reports' values (two decimals) = the table's mean, to rounding.
      for (const which of ["best", "last"] as const) {
        const mean = reports.reduce((s, rep) => s + Number(rep[which][0]), 0) / reports.length;
        assert(Math.abs(mean - row[which].top1.mean! * 100) <= 0.006, `${which} mean`);
      }
      const title = row.dataset === "cifar10" ? "CIFAR-10-LT" : "CIFAR-100-LT";
      const cell = `${(row.best.top1.mean! * 100).toFixed(2)} ± ${
        (row.best.top1.std! * 100).toFixed(2)
      }`;
      assertStringIncludes(md, `| ${title} | 0.02 | resnet32 | ${row.method} | 2 | ${cell} |`);
    }
    // CIFAR-100-LT at 0.02 has a published number; these runs are not comparable with it.
    assertStringIncludes(md, "| CIFAR-100-LT | 0.02 | resnet32 | etf+dr | 2 |");
    assertStringIncludes(md, "| 50.4 | not comparable |");
    assertEquals(table.gaps.length, 2);
    const svg = await Deno.readTextFile(`${OUT}/table.svg`);
    assert(svg.startsWith("<svg") && !/NaN|undefined/.test(svg));

    // A grid wider than what ran: the missing runs are shown as missing, never as 0.
    const wider = await sweep(["--ratios", "0.02,0.01", "--table-only"]).output();
    assertEquals(wider.code, 0);
    const t2: PaperTable = JSON.parse(await Deno.readTextFile(`${OUT}/table.json`));
    const missing = t2.rows.filter((x) => x.ratio === 0.01);
    assertEquals(missing.length, 4);
    for (const x of missing) assertEquals([x.seedsFinished, x.best.top1.mean], [0, null]);
    assertStringIncludes(await Deno.readTextFile(`${OUT}/table.md`), "| missing | missing |");
    // Other per-run settings on the same root are refused.
    const other = await sweep(["--epochs", "3"]).output();
    assertEquals(other.code, 2);
    assertStringIncludes(new TextDecoder().decode(other.stderr), "epochs 2 (now 3)");
    await Deno.remove(TMP, { recursive: true });
  },
);
