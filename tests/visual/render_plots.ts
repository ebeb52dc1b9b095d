// Visual check of the run plots in a real browser (not part of `deno task test`: it needs
// Chromium, e.g. Debian's `apt-get install -y chromium`). Renders every plot of recipes/lib/
// run_outputs.ts to SVG and, through headless Chromium, to PNG for a person to look at:
//
//   deno run -A tests/visual/render_plots.ts [--out DIR] [--run RUN_DIR]
//
// Without --run it draws synthetic records shaped like a 200-epoch CIFAR-10-LT (r = 0.01) run
// (the real class names and long-tail counts; accuracies chosen so that labels crowd as they do
// in real runs: airplane/automobile near the top, ship/truck close together in the tail, medium
// and tail curves that coincide), plus a 2-epoch run (integer epoch ticks) and a 100-class run.
// With --run DIR it renders the SVG files of a run folder (or a sweep root's table.svg) as they are.
// deno-lint-ignore no-import-prefix -- a script, importable by URL like the library
import { parseArgs } from "jsr:@std/cli@^1.0.32/parse-args";
import { type EpochRecord, PLOT_FILES, renderPlots } from "../../recipes/lib/run_outputs.ts";
import { CIFAR10_CLASSES, CIFAR10_LT_COUNTS } from "../fixtures/cifar10_lt.ts";

const args = parseArgs(Deno.args, { string: ["out", "run"], default: { out: "runs/plots_check" } });
const out = args.out as string;
await Deno.mkdir(out, { recursive: true });

const CIFAR10 = [...CIFAR10_CLASSES];
const COUNTS = [...CIFAR10_LT_COUNTS];

/** Deterministic synthetic records: smooth curves with a little seeded noise. */
function synthetic(epochs: number, K: number): EpochRecord[] {
  let s = 7;
  const noise = () => ((s = (s * 16807) % 2147483647) / 2147483647 - 0.5) * 0.02;
  const finalAcc = K === 10
    ? [0.95, 0.965, 0.85, 0.72, 0.8, 0.7, 0.78, 0.74, 0.62, 0.6]
    : Array.from({ length: K }, (_, k) => 0.8 - 0.6 * k / K);
  const recs: EpochRecord[] = [];
  for (let e = 0; e < epochs; e++) {
    const t = 1 - Math.exp(-(e + 1) / (epochs / 6));
    const perClass = finalAcc.map((a) => Math.min(1, Math.max(0, a * t + noise())));
    const mean = (ks: number[]) => ks.reduce((q, k) => q + perClass[k], 0) / ks.length;
    const third = Math.round(K * 0.3), seventh = Math.round(K * 0.7);
    const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);
    const medium = mean(range(third, seventh));
    const count = Array.from({ length: 15 }, (_, b) => (b < 4 ? 0 : 40 + 30 * b));
    recs.push({
      epoch: e,
      lr: e < 5 ? 0.1 * (e + 1) / 5 : e < 0.8 * epochs ? 0.1 : 0.01,
      train_loss: 0.6 * (1 - t) + 0.05 + noise(),
      train_accuracy: 0.5 * t + 0.2 + noise(),
      images_per_sec: 8000,
      epoch_seconds: 1.6,
      test_loss: 0.65 * (1 - t) + 0.1 + noise(),
      top1: mean(range(0, K)),
      head: mean(range(0, third)),
      medium,
      tail: medium + noise() / 4, // coincides with medium: the case that hid one line
      ece: 0.2 * (1 - t) + 0.03 + noise() / 2,
      per_class: perClass,
      calibration: {
        count,
        confidence: count.map((_, b) => (b + 0.5) / 15),
        accuracy: count.map((_, b) => Math.min(1, (b + 0.5) / 15 + 0.08 * t)),
      },
      nc: {
        nc1: 3 * Math.exp(-(e + 1) / (epochs / 8)) + 0.02,
        normalizedDistance: 1.6 * (1 - t) + 0.1,
        meanCosH: -1 / (K - 1) + 0.3 * (1 - t),
        stdCosH: 0.1,
        meanCosW: -1 / (K - 1),
        stdCosW: 0,
        meanCosHW: -1 / (K - 1) + 0.05 * (1 - t),
        stdCosHW: 0.1,
        meanDiagCosHW: 0.95 * t,
      },
    });
  }
  return recs;
}

interface Case {
  name: string;
  records: EpochRecord[];
  classNames: string[];
  trainCounts: number[];
}

const cases: Case[] = [];
/** SVG files to render as they are (a run folder's own plots, a sweep's table.svg). */
const files: string[] = [];
if (args.run) {
  for (const e of Deno.readDirSync(args.run as string)) {
    if (e.isFile && e.name.endsWith(".svg")) files.push(`${args.run}/${e.name}`);
  }
  files.sort();
} else {
  cases.push({
    name: "cifar10_200",
    records: synthetic(200, 10),
    classNames: CIFAR10,
    trainCounts: COUNTS,
  });
  cases.push({
    name: "cifar10_2",
    records: synthetic(2, 10),
    classNames: CIFAR10,
    trainCounts: COUNTS,
  });
  const K = 100;
  cases.push({
    name: "cifar100_30",
    records: synthetic(30, K),
    classNames: Array.from({ length: K }, (_, k) => `class${k}`),
    trainCounts: Array.from({ length: K }, (_, k) => Math.floor(500 * 0.01 ** (k / (K - 1)))),
  });
}
for (const c of cases) {
  const plots = renderPlots(c.records, { title: `check ${c.name}`, ...c });
  for (const file of PLOT_FILES) {
    const path = `${out}/${c.name}_${file}`;
    await Deno.writeTextFile(path, plots[file]);
    files.push(path);
  }
}

const chromium = Deno.env.get("CHROMIUM") ?? "chromium";
for (const file of files) {
  const svg = await Deno.readTextFile(file);
  const w = Number(svg.match(/width="(\d+)"/)![1]), h = Number(svg.match(/height="(\d+)"/)![1]);
  const png = `${await Deno.realPath(out)}/${file.split("/").pop()!.replace(/\.svg$/, "")}.png`;
  const r = await new Deno.Command(chromium, {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--hide-scrollbars",
      `--window-size=${w},${h}`,
      `--screenshot=${png}`,
      `file://${await Deno.realPath(file)}`,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!r.success) {
    console.error(new TextDecoder().decode(r.stderr));
    Deno.exit(1);
  }
  console.log(png);
}
