/**
 * Dependency-free SVG charts a person can open in a browser: line charts (accuracy/loss/NC
 * metrics per epoch) and scatter plots (per-class accuracy vs training count, log x). Axes with
 * nice tick values, grid, legend, title. Non-finite values are skipped, never printed.
 *
 * @module
 */

/** One line of a {@linkcode lineChart}. */
export interface LineSeries {
  name: string;
  points: readonly (readonly [number, number])[];
}

/** Options of {@linkcode lineChart}. */
export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly LineSeries[];
  /** Logarithmic y axis (non-positive values are skipped). */
  yLog?: boolean;
  /** Fixed y range (e.g. [0, 100] for accuracy); default: fitted to the data. */
  yRange?: readonly [number, number];
  width?: number;
  height?: number;
}

/** One point of a {@linkcode scatterChart}; `label` shows on hover (and beside it if few). */
export interface ScatterPoint {
  x: number;
  y: number;
  label?: string;
}

/** Options of {@linkcode scatterChart}. */
export interface ScatterChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  points: readonly ScatterPoint[];
  /** Logarithmic x axis (non-positive values are skipped). */
  xLog?: boolean;
  yRange?: readonly [number, number];
  width?: number;
  height?: number;
}

const PALETTE = [
  "#1f77b4",
  "#ff7f0e",
  "#2ca02c",
  "#d62728",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
];

/** Escape text for XML content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c]!,
  );
}

/** Format a tick or coordinate without float noise (0.30000000000000004 -> 0.3). */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return "";
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-4) return v.toExponential(2).replace(/\.?0+e/, "e");
  return String(Number(v.toPrecision(6)));
}

/** A coordinate with two decimals (SVG attribute). */
function c(v: number): string {
  return (Math.round(v * 100) / 100).toString();
}

/**
 * Nice tick values (1, 2, 5 x 10^k steps) covering [min, max], about `count` of them.
 *
 * @example
 * ```ts
 * import { niceTicks } from "./svg_plot.ts";
 * console.log(niceTicks(0, 0.97, 5)); // [0, 0.2, 0.4, 0.6, 0.8, 1]
 * ```
 */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [];
  if (min > max) [min, max] = [max, min];
  if (min === max) {
    const d = min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= d;
    max += d;
  }
  const raw = (max - min) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  const start = Math.floor(min / step + 1e-9);
  const end = Math.ceil(max / step - 1e-9);
  const ticks: number[] = [];
  for (let i = start; i <= end; i++) ticks.push(Number((i * step).toPrecision(12)));
  return ticks;
}

/** Ticks of a log axis over [min, max] (both > 0): powers of ten, plus 2 and 5 when few. */
export function logTicks(min: number, max: number): number[] {
  if (!(min > 0) || !(max > 0) || !Number.isFinite(min) || !Number.isFinite(max)) return [];
  if (min > max) [min, max] = [max, min];
  let lo = Math.floor(Math.log10(min) + 1e-9);
  let hi = Math.ceil(Math.log10(max) - 1e-9);
  if (lo === hi) {
    lo -= 1;
    hi += 1;
  }
  const ticks: number[] = [];
  const mults = hi - lo <= 2 ? [1, 2, 5] : [1];
  for (let e = lo; e <= hi; e++) {
    for (const m of mults) {
      const t = Number((m * 10 ** e).toPrecision(12));
      if (t >= 10 ** lo && t <= 10 ** hi) ticks.push(t);
    }
  }
  return ticks;
}

interface Axis {
  ticks: number[];
  map: (v: number) => number;
}

function makeAxis(
  values: number[],
  log: boolean,
  lo: number,
  hi: number,
  fixed?: readonly [
    number,
    number,
  ],
): Axis {
  let ticks: number[];
  if (log) {
    const vs = values.filter((v) => v > 0);
    ticks = vs.length ? logTicks(Math.min(...vs), Math.max(...vs)) : [1, 10];
  } else if (fixed && Number.isFinite(fixed[0]) && Number.isFinite(fixed[1])) {
    // The fixed range, widened if some data fall outside it.
    ticks = niceTicks(Math.min(fixed[0], ...values), Math.max(fixed[1], ...values));
  } else {
    ticks = values.length ? niceTicks(Math.min(...values), Math.max(...values)) : [0, 1];
  }
  const t0 = ticks[0];
  const t1 = ticks[ticks.length - 1];
  const f = log ? Math.log10 : (v: number) => v;
  const a = f(t0);
  const b = f(t1);
  const span = b - a || 1;
  return { ticks, map: (v) => lo + ((f(v) - a) / span) * (hi - lo) };
}

interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

function frameParts(
  f: Frame,
  title: string,
  xLabel: string,
  yLabel: string,
  x: Axis,
  y: Axis,
): string[] {
  const out: string[] = [];
  const x0 = f.left;
  const x1 = f.width - f.right;
  const y0 = f.height - f.bottom;
  const y1 = f.top;
  out.push(`<rect x="0" y="0" width="${f.width}" height="${f.height}" fill="#ffffff"/>`);
  out.push(
    `<text x="${c(f.width / 2)}" y="22" text-anchor="middle" font-size="16" ` +
      `font-weight="bold">${escapeXml(title)}</text>`,
  );
  out.push(`<g stroke="#e0e0e0" stroke-width="1">`);
  for (const t of x.ticks) {
    const px = x.map(t);
    out.push(`<line x1="${c(px)}" y1="${c(y1)}" x2="${c(px)}" y2="${c(y0)}"/>`);
  }
  for (const t of y.ticks) {
    const py = y.map(t);
    out.push(`<line x1="${c(x0)}" y1="${c(py)}" x2="${c(x1)}" y2="${c(py)}"/>`);
  }
  out.push(`</g>`);
  out.push(
    `<rect x="${c(x0)}" y="${c(y1)}" width="${c(x1 - x0)}" height="${c(y0 - y1)}" ` +
      `fill="none" stroke="#333333" stroke-width="1"/>`,
  );
  out.push(`<g font-size="11" fill="#333333">`);
  for (const t of x.ticks) {
    out.push(
      `<text x="${c(x.map(t))}" y="${c(y0 + 16)}" text-anchor="middle">${formatNumber(t)}</text>`,
    );
  }
  for (const t of y.ticks) {
    out.push(
      `<text x="${c(x0 - 6)}" y="${c(y.map(t) + 4)}" text-anchor="end">${formatNumber(t)}</text>`,
    );
  }
  out.push(`</g>`);
  out.push(
    `<text x="${c((x0 + x1) / 2)}" y="${c(f.height - 10)}" text-anchor="middle" ` +
      `font-size="13">${escapeXml(xLabel)}</text>`,
  );
  out.push(
    `<text x="16" y="${c((y0 + y1) / 2)}" text-anchor="middle" font-size="13" ` +
      `transform="rotate(-90 16 ${c((y0 + y1) / 2)})">${escapeXml(yLabel)}</text>`,
  );
  return out;
}

function svgDocument(width: number, height: number, title: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<title>${escapeXml(title)}</title>`,
    ...body,
    `</svg>`,
    "",
  ].join("\n");
}

function noData(f: Frame, x0: number, x1: number): string {
  const y = (f.top + f.height - f.bottom) / 2;
  return `<text x="${c((x0 + x1) / 2)}" y="${c(y)}" text-anchor="middle" font-size="14" ` +
    `fill="#999999">no data</text>`;
}

/**
 * A line chart: one polyline per series (broken at non-finite points), markers when a series is
 * short, a legend on the right.
 *
 * @example
 * ```ts
 * import { lineChart } from "./svg_plot.ts";
 * const svg = lineChart({
 *   title: "Test accuracy",
 *   xLabel: "epoch",
 *   yLabel: "top-1 (%)",
 *   series: [{ name: "ETF + DR", points: [[1, 30], [2, 45], [3, 52]] }],
 * });
 * await Deno.writeTextFile(`${await Deno.makeTempDir()}/accuracy.svg`, svg);
 * ```
 */
export function lineChart(opts: LineChartOptions): string {
  const width = opts.width ?? 720;
  const height = opts.height ?? 420;
  const legendWidth = opts.series.length > 0
    ? Math.min(220, 40 + 7 * Math.max(...opts.series.map((s) => s.name.length)))
    : 20;
  const f: Frame = { width, height, left: 64, right: legendWidth, top: 36, bottom: 48 };
  const ok = (x: number, y: number) =>
    Number.isFinite(x) && Number.isFinite(y) && (!opts.yLog || y > 0);
  const xs: number[] = [];
  const ys: number[] = [];
  for (const s of opts.series) {
    for (const [x, y] of s.points) {
      if (ok(x, y)) {
        xs.push(x);
        ys.push(y);
      }
    }
  }
  const x0 = f.left;
  const x1 = width - f.right;
  const xAxis = makeAxis(xs, false, x0, x1);
  const yAxis = makeAxis(ys, opts.yLog ?? false, height - f.bottom, f.top, opts.yRange);
  const body = frameParts(f, opts.title, opts.xLabel, opts.yLabel, xAxis, yAxis);
  if (xs.length === 0) body.push(noData(f, x0, x1));
  opts.series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    const segments: string[][] = [[]];
    const valid = s.points.filter(([x, y]) => ok(x, y));
    for (const [x, y] of s.points) {
      if (ok(x, y)) segments[segments.length - 1].push(`${c(xAxis.map(x))},${c(yAxis.map(y))}`);
      else if (segments[segments.length - 1].length > 0) segments.push([]);
    }
    body.push(`<g stroke="${color}" fill="${color}">`);
    body.push(`<title>${escapeXml(s.name)}</title>`);
    for (const seg of segments) {
      if (seg.length > 1) {
        body.push(`<polyline fill="none" stroke-width="2" points="${seg.join(" ")}"/>`);
      }
    }
    if (valid.length <= 60) {
      for (const [x, y] of valid) {
        body.push(`<circle cx="${c(xAxis.map(x))}" cy="${c(yAxis.map(y))}" r="2.5"/>`);
      }
    }
    body.push(`</g>`);
    const ly = f.top + 8 + i * 18;
    const lx = x1 + 12;
    body.push(
      `<line x1="${lx}" y1="${ly}" x2="${lx + 18}" y2="${ly}" stroke="${color}" stroke-width="3"/>`,
    );
    body.push(
      `<text x="${lx + 24}" y="${ly + 4}" font-size="12">${escapeXml(s.name)}</text>`,
    );
  });
  return svgDocument(width, height, opts.title, body);
}

/**
 * A scatter plot, e.g. per-class accuracy against training count with `xLog: true`. Each point
 * carries its label as a hover tooltip, and as text beside it when there are at most 20 points.
 *
 * @example
 * ```ts
 * import { scatterChart } from "./svg_plot.ts";
 * const svg = scatterChart({
 *   title: "Per-class accuracy",
 *   xLabel: "training images",
 *   yLabel: "accuracy (%)",
 *   xLog: true,
 *   points: [{ x: 5000, y: 97, label: "airplane" }, { x: 50, y: 61, label: "truck" }],
 * });
 * console.log(svg.startsWith("<svg")); // true
 * ```
 */
export function scatterChart(opts: ScatterChartOptions): string {
  const width = opts.width ?? 720;
  const height = opts.height ?? 420;
  const f: Frame = { width, height, left: 64, right: 24, top: 36, bottom: 48 };
  const pts = opts.points.filter((p) =>
    Number.isFinite(p.x) && Number.isFinite(p.y) && (!opts.xLog || p.x > 0)
  );
  const x0 = f.left;
  const x1 = width - f.right;
  const xAxis = makeAxis(pts.map((p) => p.x), opts.xLog ?? false, x0, x1);
  const yAxis = makeAxis(pts.map((p) => p.y), false, height - f.bottom, f.top, opts.yRange);
  const body = frameParts(f, opts.title, opts.xLabel, opts.yLabel, xAxis, yAxis);
  if (pts.length === 0) body.push(noData(f, x0, x1));
  const showLabels = pts.length <= 20;
  body.push(`<g fill="${PALETTE[0]}" fill-opacity="0.8">`);
  for (const p of pts) {
    const px = xAxis.map(p.x);
    const py = yAxis.map(p.y);
    const tip = `${p.label ? p.label + ": " : ""}(${formatNumber(p.x)}, ${formatNumber(p.y)})`;
    body.push(
      `<circle cx="${c(px)}" cy="${c(py)}" r="4"><title>${escapeXml(tip)}</title></circle>`,
    );
    if (showLabels && p.label) {
      body.push(
        `<text x="${c(px + 6)}" y="${c(py - 6)}" font-size="10" fill="#333333">` +
          `${escapeXml(p.label)}</text>`,
      );
    }
  }
  body.push(`</g>`);
  return svgDocument(width, height, opts.title, body);
}
