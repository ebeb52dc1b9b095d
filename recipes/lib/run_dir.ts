/**
 * A run's output folder: `config.json` (written atomically) and `metrics.jsonl` (one JSON object
 * per line, appended and fsynced per record so a killed run keeps every finished epoch; a torn
 * last line is skipped on read, with a warning naming the file and line, and repaired on the next
 * append).
 *
 * @module
 */

// deno-lint-ignore no-import-prefix -- library code uses full specifiers (importable by URL)
import { join } from "jsr:@std/path@^1/join";
import { writeFileAtomic } from "../../nn/io/atomic_file.ts";

/** File name of the run configuration inside the run folder. */
export const CONFIG_FILE = "config.json";
/** File name of the metrics log inside the run folder. */
export const METRICS_FILE = "metrics.jsonl";

/** One metrics line. `epoch` (the 0-based epoch index) keys resume truncation. */
export interface MetricsRecord {
  epoch?: number;
  [key: string]: unknown;
}

/**
 * Write `config` as `out/config.json` (pretty JSON), creating `out` if needed; atomic.
 *
 * @example
 * ```ts
 * import { readConfig, writeConfig } from "./run_dir.ts";
 * const out = await Deno.makeTempDir();
 * await writeConfig(out, { recipe: "cifar10_lt", lr: 0.1 });
 * console.log(await readConfig(out)); // { recipe: "cifar10_lt", lr: 0.1 }
 * ```
 */
export async function writeConfig(out: string, config: unknown): Promise<void> {
  await Deno.mkdir(out, { recursive: true });
  await writeFileAtomic(join(out, CONFIG_FILE), JSON.stringify(config, null, 2) + "\n");
}

/** Read `out/config.json`, or undefined when there is none. */
export async function readConfig(out: string): Promise<unknown | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(join(out, CONFIG_FILE)));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await file.write(bytes.subarray(off));
}

/**
 * If the log does not end with a newline (a run was killed mid-append), cut the torn last line so
 * the next record starts on a line of its own.
 */
async function repairTornTail(file: Deno.FsFile): Promise<void> {
  const size = (await file.stat()).size;
  if (size === 0) return;
  const last = new Uint8Array(1);
  await file.seek(size - 1, Deno.SeekMode.Start);
  await file.read(last);
  if (last[0] === 0x0a) return;
  // Scan backwards in blocks for the last newline.
  const block = new Uint8Array(4096);
  let end = size;
  let cut = 0;
  outer: while (end > 0) {
    const start = Math.max(0, end - block.length);
    await file.seek(start, Deno.SeekMode.Start);
    const n = end - start;
    let got = 0;
    while (got < n) {
      const r = await file.read(block.subarray(got, n));
      if (r === null) break;
      got += r;
    }
    for (let i = n - 1; i >= 0; i--) {
      if (block[i] === 0x0a) {
        cut = start + i + 1;
        break outer;
      }
    }
    end = start;
  }
  await file.truncate(cut);
}

/**
 * Append one record to `out/metrics.jsonl` as a single JSON line and fsync it, creating the folder
 * and file if needed. Non-finite numbers are written as null (JSON has no NaN).
 *
 * @example
 * ```ts
 * import { appendMetrics, readMetrics } from "./run_dir.ts";
 * const out = await Deno.makeTempDir();
 * await appendMetrics(out, { epoch: 1, loss: 2.3, top1: 31.5 });
 * await appendMetrics(out, { epoch: 2, loss: 1.9, top1: 40.2 });
 * console.log((await readMetrics(out)).length); // 2
 * ```
 */
export async function appendMetrics(out: string, record: MetricsRecord): Promise<void> {
  await Deno.mkdir(out, { recursive: true });
  const line = new TextEncoder().encode(JSON.stringify(record) + "\n");
  const file = await Deno.open(join(out, METRICS_FILE), {
    read: true,
    write: true,
    create: true,
  });
  try {
    await repairTornTail(file);
    await file.seek(0, Deno.SeekMode.End);
    await writeAll(file, line);
    await file.sync();
  } finally {
    file.close();
  }
}

/** Options of {@linkcode readMetrics} and {@linkcode truncateMetricsAfterEpoch}. */
export interface ReadMetricsOptions {
  /**
   * Called once per damaged line (not valid JSON, or not an object) with a message naming the
   * file and the line number; default: `console.warn`.
   */
  onWarning?: (message: string) => void;
}

function parseLines(text: string, file: string, options: ReadMetricsOptions): MetricsRecord[] {
  const warn = options.onWarning ?? ((m: string) => console.warn(m));
  const lines = text.split("\n");
  const records: MetricsRecord[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "") continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      v = undefined;
    }
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      records.push(v as MetricsRecord);
      continue;
    }
    const torn = i === lines.length - 1; // no newline after it: an append cut short
    const shown = line.length > 60 ? `${line.slice(0, 60)}...` : line;
    warn(
      `collapse: warning: ${file} line ${i + 1} is damaged and was skipped` +
        (torn ? " (a last line cut short, as a killed run leaves it)" : "") + `: ${shown}`,
    );
  }
  return records;
}

/**
 * Read every record of `out/metrics.jsonl` in order ([] when there is no log). A line that does
 * not parse (a torn last line from a killed run, or a damaged one) is skipped with a warning that
 * names the file and the line.
 */
export async function readMetrics(
  out: string,
  options: ReadMetricsOptions = {},
): Promise<MetricsRecord[]> {
  const file = join(out, METRICS_FILE);
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return parseLines(text, file, options);
}

/** Replace `out/metrics.jsonl` with `records`, atomically (creating `out` if needed). */
export async function writeMetrics(
  out: string,
  records: readonly MetricsRecord[],
): Promise<void> {
  await Deno.mkdir(out, { recursive: true });
  await writeFileAtomic(
    join(out, METRICS_FILE),
    records.map((r) => JSON.stringify(r) + "\n").join(""),
  );
}

/**
 * For resume: keep only records whose `epoch` is <= `epoch` (records without a numeric epoch are
 * kept), drop damaged lines (warning about each), and rewrite the log atomically. Returns how many
 * records were kept.
 */
export async function truncateMetricsAfterEpoch(
  out: string,
  epoch: number,
  options: ReadMetricsOptions = {},
): Promise<number> {
  const records = await readMetrics(out, options);
  const kept = records.filter((r) => typeof r.epoch !== "number" || r.epoch <= epoch);
  await writeMetrics(out, kept);
  return kept.length;
}
