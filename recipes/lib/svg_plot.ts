/**
 * Dependency-free SVG charts a person can open in a browser: line charts (accuracy/loss per epoch,
 * with integer ticks on epoch axes), grids of line panels (one neural-collapse metric per panel with
 * its target drawn as a labelled reference line), and scatter plots (per-class accuracy vs training
 * count, log x) whose point labels are placed so that no two overlap. Series differ by colour, dash
 * pattern and marker shape, so lines that coincide stay distinguishable. Non-finite values are
 * skipped, never printed.
 *
 * @module
 */

/** A marker shape drawn at a series' points. */
export type MarkerShape = "circle" | "square" | "triangle" | "diamond" | "cross";

/** One line of a {@linkcode lineChart}. */
export interface LineSeries {
  name: string;
  points: readonly (readonly [number, number])[];
  /** Stroke colour (default: by series index). */
  color?: string;
  /** SVG dash pattern, "" for solid (default: by series index). */
  dash?: string;
  /** Marker shape (default: by series index). */
  marker?: MarkerShape;
}

/** A horizontal reference line (e.g. the value a metric converges to), labelled in the plot. */
export interface ReferenceLine {
  value: number;
  label: string;
}

/** Options of {@linkcode lineChart} (and of each panel of {@linkcode panelGrid}). */
export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly LineSeries[];
  /** Logarithmic y axis (non-positive values are skipped). */
  yLog?: boolean;
  /** Fixed y range (e.g. [0, 100] for accuracy), widened if data fall outside; default: fitted. */
  yRange?: readonly [number, number];
  /** Fixed x range, widened if data fall outside; default: fitted. */
  xRange?: readonly [number, number];
  /** Integer x ticks only (epochs). */
  xInteger?: boolean;
  /** Horizontal reference lines, kept inside the y range. */
  references?: readonly ReferenceLine[];
  /** Show the legend (default: true when there is more than one series). */
  legend?: boolean;
  width?: number;
  height?: number;
}

/** One series of a {@linkcode BarChartOptions}: a value per group (null: missing). */
export interface BarSeries {
  name: string;
  values: readonly (number | null)[];
  /** Error bar half-lengths (e.g. std over seeds); null or absent: none. */
  errors?: readonly (number | null)[];
}

/** A marked value on one bar (e.g. the published number), drawn as a black diamond. */
export interface BarMark {
  group: number;
  series: number;
  value: number;
}

/** A grouped bar chart panel: groups along x, one bar per series in each group. */
export interface BarChartOptions {
  kind: "bar";
  title: string;
  xLabel: string;
  yLabel: string;
  groups: readonly string[];
  series: readonly BarSeries[];
  /** What the marks are, for the legend (default "published"). */
  markLabel?: string;
  marks?: readonly BarMark[];
  yRange?: readonly [number, number];
  /** Show the legend (default true). */
  legend?: boolean;
  width?: number;
  height?: number;
}

/** Options of {@linkcode panelGrid}. */
export interface PanelGridOptions {
  title: string;
  panels: readonly (LineChartOptions | BarChartOptions)[];
  /** Panels per row (default 2). */
  columns?: number;
  /** Size of one panel (default 420 x 280). */
  panelWidth?: number;
  panelHeight?: number;
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
const DASHES = ["", "7 4", "2 3", "10 3 2 3", "4 2 1 2"];
const MARKERS: readonly MarkerShape[] = ["circle", "square", "triangle", "diamond", "cross"];
const REFERENCE_COLOR = "#555555";

/** Width in pixels a label of `n` characters takes at `fontSize` (generous for sans-serif). */
export function textWidth(text: string, fontSize: number): number {
  return text.length * fontSize * 0.62;
}

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
 * Nice tick values (1, 2, 5 x 10^k steps) covering [min, max], about `count` of them; with
 * `integer`, steps are whole numbers (epoch axes never show 1.5).
 *
 * @example
 * ```ts
 * import { niceTicks } from "./svg_plot.ts";
 * console.log(niceTicks(0, 0.97, 5)); // [0, 0.2, 0.4, 0.6, 0.8, 1]
 * console.log(niceTicks(1, 3, 5, true)); // [1, 2, 3]
 * ```
 */
export function niceTicks(min: number, max: number, count = 5, integer = false): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [];
  if (min > max) [min, max] = [max, min];
  // A flat (or flat up to rounding, e.g. a constant ETF cosine) range gets a span around it.
  if (max - min <= 1e-6 * Math.max(Math.abs(min), Math.abs(max))) {
    const mid = (min + max) / 2;
    const d = integer ? 1 : mid === 0 ? 1 : Math.abs(mid) * 0.1;
    min = mid - d;
    max = mid + d;
  }
  const raw = (max - min) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  let step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  if (integer) step = Math.max(1, Math.round(step));
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

interface AxisSpec {
  log?: boolean;
  fixed?: readonly [number, number];
  integer?: boolean;
}

function makeAxis(values: number[], lo: number, hi: number, spec: AxisSpec = {}): Axis {
  let ticks: number[];
  const fixed = spec.fixed;
  if (spec.log) {
    const vs = values.filter((v) => v > 0);
    ticks = vs.length ? logTicks(Math.min(...vs), Math.max(...vs)) : [1, 10];
  } else if (fixed && Number.isFinite(fixed[0]) && Number.isFinite(fixed[1])) {
    // The fixed range, widened if some data fall outside it.
    ticks = niceTicks(
      Math.min(fixed[0], ...values),
      Math.max(fixed[1], ...values),
      5,
      spec.integer,
    );
  } else {
    ticks = values.length
      ? niceTicks(Math.min(...values), Math.max(...values), 5, spec.integer)
      : [0, 1];
  }
  const t0 = ticks[0];
  const t1 = ticks[ticks.length - 1];
  const f = spec.log ? Math.log10 : (v: number) => v;
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
  titleSize = 16,
): string[] {
  const out: string[] = [];
  const x0 = f.left;
  const x1 = f.width - f.right;
  const y0 = f.height - f.bottom;
  const y1 = f.top;
  out.push(`<rect x="0" y="0" width="${f.width}" height="${f.height}" fill="#ffffff"/>`);
  out.push(
    `<text x="${c((x0 + x1) / 2)}" y="${titleSize + 6}" text-anchor="middle" ` +
      `font-size="${titleSize}" font-weight="bold">${escapeXml(title)}</text>`,
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

/** One marker at (x, y), as an SVG element filled/stroked by the enclosing group. */
function marker(shape: MarkerShape, x: number, y: number, r = 3.5): string {
  const k = `class="marker-${shape}"`;
  switch (shape) {
    case "circle":
      return `<circle ${k} cx="${c(x)}" cy="${c(y)}" r="${c(r * 0.85)}"/>`;
    case "square":
      return `<rect ${k} x="${c(x - r * 0.8)}" y="${c(y - r * 0.8)}" width="${c(r * 1.6)}" ` +
        `height="${c(r * 1.6)}"/>`;
    case "triangle":
      return `<path ${k} d="M${c(x)} ${c(y - r)}L${c(x + r)} ${c(y + r * 0.8)}L${c(x - r)} ` +
        `${c(y + r * 0.8)}Z"/>`;
    case "diamond":
      return `<path ${k} d="M${c(x)} ${c(y - r)}L${c(x + r)} ${c(y)}L${c(x)} ${c(y + r)}` +
        `L${c(x - r)} ${c(y)}Z"/>`;
    case "cross":
      return `<path ${k} d="M${c(x - r)} ${c(y - r)}L${c(x + r)} ${c(y + r)}M${c(x - r)} ` +
        `${c(y + r)}L${c(x + r)} ${c(y - r)}" fill="none" stroke-width="1.8"/>`;
  }
}

interface SeriesStyle {
  color: string;
  /** Marker fill: the colour, or white (hollow) on every other series. */
  fill: string;
  dash: string;
  marker: MarkerShape;
  /** Later series are drawn a little thinner, so one lying on another leaves it visible. */
  width: number;
}

function styleOf(s: LineSeries, i: number): SeriesStyle {
  const color = s.color ?? PALETTE[i % PALETTE.length];
  return {
    color,
    fill: i % 2 === 1 ? "#ffffff" : color,
    dash: s.dash ?? DASHES[i % DASHES.length],
    marker: s.marker ?? MARKERS[i % MARKERS.length],
    width: Math.max(1.2, 2.6 - 0.35 * (i % 5)),
  };
}

function dashAttr(dash: string): string {
  return dash ? ` stroke-dasharray="${dash}"` : "";
}

/** The body of one line chart inside a `width` x `height` box at the origin. */
function lineChartBody(opts: LineChartOptions, width: number, height: number, titleSize: number) {
  const showLegend = opts.legend ?? opts.series.length > 1;
  const legendWidth = showLegend && opts.series.length > 0
    ? Math.min(230, 48 + textWidth("x", 12) * Math.max(...opts.series.map((s) => s.name.length)))
    : 20;
  const refs = (opts.references ?? []).filter((r) =>
    Number.isFinite(r.value) && (!opts.yLog || r.value > 0)
  );
  const f: Frame = {
    width,
    height,
    left: 64,
    right: legendWidth,
    // Reference lines are named on a line of their own under the title (never over the data).
    top: titleSize + 20 + (refs.length ? 16 : 0),
    bottom: 48,
  };
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
  const xAxis = makeAxis(xs, x0, x1, { fixed: opts.xRange, integer: opts.xInteger });
  const yAxis = makeAxis(
    xs.length ? [...ys, ...refs.map((r) => r.value)] : ys,
    height - f.bottom,
    f.top,
    { log: opts.yLog, fixed: opts.yRange },
  );
  const body = frameParts(f, opts.title, opts.xLabel, opts.yLabel, xAxis, yAxis, titleSize);
  if (xs.length === 0) {
    body.push(noData(f, x0, x1));
    return body;
  }
  if (refs.length) {
    const label = refs.map((r) => r.label).join("; ");
    const w = 26 + textWidth(label, 11);
    const lx = (x0 + x1) / 2 - w / 2, ly = titleSize + 24;
    body.push(
      `<line x1="${c(lx)}" y1="${c(ly - 4)}" x2="${c(lx + 20)}" y2="${c(ly - 4)}" ` +
        `stroke="${REFERENCE_COLOR}" stroke-width="1.5" stroke-dasharray="5 3"/>`,
      `<text x="${c(lx + 26)}" y="${c(ly)}" font-size="11" fill="${REFERENCE_COLOR}">` +
        `${escapeXml(label)}</text>`,
    );
  }
  opts.series.forEach((s, i) => {
    const st = styleOf(s, i);
    const segments: string[][] = [[]];
    const valid = s.points.filter(([x, y]) => ok(x, y));
    for (const [x, y] of s.points) {
      if (ok(x, y)) segments[segments.length - 1].push(`${c(xAxis.map(x))},${c(yAxis.map(y))}`);
      else if (segments[segments.length - 1].length > 0) segments.push([]);
    }
    body.push(`<g stroke="${st.color}" fill="${st.fill}">`);
    body.push(`<title>${escapeXml(s.name)}</title>`);
    for (const seg of segments) {
      if (seg.length > 1) {
        body.push(
          `<polyline fill="none" stroke-width="${st.width}"${dashAttr(st.dash)} ` +
            `points="${seg.join(" ")}"/>`,
        );
      }
    }
    // Markers on every point of short series; on long ones, about 12 spread along the line
    // (offset per series so that coinciding series show different marker positions).
    const every = valid.length <= 40 ? 1 : Math.ceil(valid.length / 12);
    const phase = every > 1 ? Math.floor((i * every) / Math.max(1, opts.series.length)) : 0;
    valid.forEach(([x, y], j) => {
      if ((j - phase) % every === 0 || (every === 1)) {
        body.push(marker(st.marker, xAxis.map(x), yAxis.map(y)));
      }
    });
    body.push(`</g>`);
    if (showLegend) {
      const ly = f.top + 8 + i * 18;
      const lx = x1 + 12;
      body.push(
        `<g stroke="${st.color}" fill="${st.fill}"><line x1="${lx}" y1="${ly}" x2="${lx + 26}" ` +
          `y2="${ly}" stroke-width="${st.width}"${dashAttr(st.dash)}/>` +
          `${marker(st.marker, lx + 13, ly)}</g>`,
      );
      body.push(
        `<text x="${lx + 32}" y="${ly + 4}" font-size="12">${escapeXml(s.name)}</text>`,
      );
    }
  });
  // Reference lines last, thin and dashed: visible even where the data lie on them.
  for (const r of refs) {
    const py = yAxis.map(r.value);
    body.push(
      `<g stroke="${REFERENCE_COLOR}"><title>${escapeXml(r.label)}</title><line x1="${c(x0)}" ` +
        `y1="${c(py)}" x2="${c(x1)}" y2="${c(py)}" stroke-width="1.5" ` +
        `stroke-dasharray="5 3"/></g>`,
    );
  }
  return body;
}

/**
 * A line chart: one polyline per series (broken at non-finite points) with its own colour, dash
 * and marker, optional reference lines, and a legend on the right.
 *
 * @example
 * ```ts
 * import { lineChart } from "./svg_plot.ts";
 * const svg = lineChart({
 *   title: "Test accuracy",
 *   xLabel: "epoch",
 *   yLabel: "top-1 (%)",
 *   xInteger: true,
 *   series: [{ name: "ETF + DR", points: [[1, 30], [2, 45], [3, 52]] }],
 * });
 * await Deno.writeTextFile(`${await Deno.makeTempDir()}/accuracy.svg`, svg);
 * ```
 */
export function lineChart(opts: LineChartOptions): string {
  const width = opts.width ?? 720;
  const height = opts.height ?? 420;
  return svgDocument(width, height, opts.title, lineChartBody(opts, width, height, 16));
}

/**
 * Several line charts in one SVG, `columns` per row under a common title (e.g. one panel per
 * neural-collapse metric, each on its own scale with its target as a reference line).
 *
 * @example
 * ```ts
 * import { panelGrid } from "./svg_plot.ts";
 * const svg = panelGrid({
 *   title: "Neural collapse",
 *   panels: [
 *     { title: "distance", xLabel: "epoch", yLabel: "", xInteger: true,
 *       series: [{ name: "d", points: [[1, 1.2], [2, 0.6]] }],
 *       references: [{ value: 0, label: "target 0" }] },
 *   ],
 * });
 * console.log(svg.includes("target 0")); // true
 * ```
 */
export function panelGrid(opts: PanelGridOptions): string {
  const cols = Math.max(1, Math.min(opts.columns ?? 2, opts.panels.length || 1));
  const pw = opts.panelWidth ?? 420;
  const ph = opts.panelHeight ?? 280;
  const rows = Math.max(1, Math.ceil(opts.panels.length / cols));
  const top = 36;
  const width = cols * pw;
  const height = top + rows * ph;
  const body: string[] = [
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${c(width / 2)}" y="22" text-anchor="middle" font-size="16" font-weight="bold">` +
    `${escapeXml(opts.title)}</text>`,
  ];
  opts.panels.forEach((p, i) => {
    const x = (i % cols) * pw, y = top + Math.floor(i / cols) * ph;
    body.push(`<g transform="translate(${x} ${y})">`);
    body.push(
      ...(isBar(p)
        ? barChartBody(p, pw, ph, 13)
        : lineChartBody({ legend: false, ...p }, pw, ph, 13)),
    );
    body.push(`</g>`);
  });
  return svgDocument(width, height, opts.title, body);
}

function isBar(p: LineChartOptions | BarChartOptions): p is BarChartOptions {
  return (p as BarChartOptions).kind === "bar";
}

/** The body of one grouped bar chart inside a `width` x `height` box at the origin. */
function barChartBody(opts: BarChartOptions, width: number, height: number, titleSize: number) {
  const showLegend = (opts.legend ?? true) && opts.series.length > 0;
  const names = [...opts.series.map((s) => s.name), ...(opts.marks?.length ? ["x"] : [])];
  const legendWidth = showLegend
    ? Math.min(200, 40 + textWidth("x", 11) * Math.max(...names.map((n) => n.length), 9))
    : 16;
  const f: Frame = { width, height, left: 56, right: legendWidth, top: titleSize + 20, bottom: 52 };
  const x0 = f.left, x1 = width - f.right, y0 = height - f.bottom;
  // Error bars are clipped to a fixed range (an accuracy minus its std stays >= 0).
  const [lo, hi] = opts.yRange ?? [-Infinity, Infinity];
  const clip = (v: number) => Math.min(hi, Math.max(lo, v));
  const values: number[] = [];
  opts.series.forEach((s) =>
    s.values.forEach((v, g) => {
      if (typeof v === "number" && Number.isFinite(v)) {
        values.push(clip(v + (s.errors?.[g] ?? 0)), clip(v - (s.errors?.[g] ?? 0)));
      }
    })
  );
  for (const m of opts.marks ?? []) if (Number.isFinite(m.value)) values.push(m.value);
  const yAxis = makeAxis(values, y0, f.top, { fixed: opts.yRange ?? [0, 0] });
  const nG = Math.max(1, opts.groups.length), nS = Math.max(1, opts.series.length);
  const groupW = (x1 - x0) / nG;
  const barW = Math.min(28, (groupW * 0.8) / nS);
  const barX = (g: number, si: number) => x0 + groupW * (g + 0.5) + (si - nS / 2) * barW;
  const body: string[] = [
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${c((x0 + x1) / 2)}" y="${titleSize + 6}" text-anchor="middle" ` +
    `font-size="${titleSize}" font-weight="bold">${escapeXml(opts.title)}</text>`,
    `<g stroke="#e0e0e0" stroke-width="1">`,
    ...yAxis.ticks.map((t) =>
      `<line x1="${c(x0)}" y1="${c(yAxis.map(t))}" x2="${c(x1)}" y2="${c(yAxis.map(t))}"/>`
    ),
    `</g>`,
    `<g font-size="11" fill="#333333">`,
    ...yAxis.ticks.map((t) =>
      `<text x="${c(x0 - 6)}" y="${c(yAxis.map(t) + 4)}" text-anchor="end">${formatNumber(t)}` +
      `</text>`
    ),
    ...opts.groups.map((gName, g) =>
      `<text x="${c(x0 + groupW * (g + 0.5))}" y="${c(y0 + 16)}" text-anchor="middle">` +
      `${escapeXml(gName)}</text>`
    ),
    `</g>`,
    `<text x="${c((x0 + x1) / 2)}" y="${c(height - 12)}" text-anchor="middle" font-size="12">` +
    `${escapeXml(opts.xLabel)}</text>`,
    `<text x="14" y="${c((y0 + f.top) / 2)}" text-anchor="middle" font-size="12" ` +
    `transform="rotate(-90 14 ${c((y0 + f.top) / 2)})">${escapeXml(opts.yLabel)}</text>`,
  ];
  const base = yAxis.map(Math.max(0, yAxis.ticks[0]));
  opts.series.forEach((s, si) => {
    const color = PALETTE[si % PALETTE.length];
    body.push(`<g fill="${color}"><title>${escapeXml(s.name)}</title>`);
    s.values.forEach((v, g) => {
      const bx = barX(g, si);
      if (typeof v !== "number" || !Number.isFinite(v)) {
        // A missing value is written, never drawn as a zero-height bar.
        const mx = bx + barW / 2, my = base - 4;
        body.push(
          `<text x="${c(mx)}" y="${c(my)}" font-size="9" fill="#999999" ` +
            `transform="rotate(-90 ${c(mx)} ${c(my)})">missing</text>`,
        );
        return;
      }
      const top = yAxis.map(v);
      body.push(
        `<rect x="${c(bx + 1)}" y="${c(Math.min(top, base))}" width="${c(barW - 2)}" ` +
          `height="${c(Math.abs(base - top))}"><title>${
            escapeXml(`${s.name}: ${formatNumber(v)}`)
          }` +
          `</title></rect>`,
      );
      const e = s.errors?.[g];
      if (typeof e === "number" && Number.isFinite(e) && e > 0) {
        const mx = bx + barW / 2, ya = yAxis.map(clip(v + e)), yb = yAxis.map(clip(v - e));
        body.push(
          `<path d="M${c(mx)} ${c(ya)}V${c(yb)}M${c(mx - 3)} ${c(ya)}H${c(mx + 3)}M${c(mx - 3)} ` +
            `${c(yb)}H${c(mx + 3)}" stroke="#222222" stroke-width="1" fill="none"/>`,
        );
      }
    });
    body.push(`</g>`);
  });
  if (opts.marks?.length) {
    body.push(`<g fill="#000000" stroke="#ffffff" stroke-width="0.8">`);
    for (const m of opts.marks) {
      if (!Number.isFinite(m.value)) continue;
      body.push(marker("diamond", barX(m.group, m.series) + barW / 2, yAxis.map(m.value), 4.5));
    }
    body.push(`</g>`);
  }
  body.push(
    `<line x1="${c(x0)}" y1="${c(y0)}" x2="${c(x1)}" y2="${c(y0)}" stroke="#333333"/>`,
    `<line x1="${c(x0)}" y1="${c(f.top)}" x2="${c(x0)}" y2="${c(y0)}" stroke="#333333"/>`,
  );
  if (showLegend) {
    const lx = x1 + 10;
    opts.series.forEach((s, si) => {
      const ly = f.top + 6 + si * 16;
      body.push(
        `<rect x="${lx}" y="${ly - 8}" width="12" height="10" fill="${
          PALETTE[si % PALETTE.length]
        }"/>`,
        `<text x="${lx + 16}" y="${ly + 1}" font-size="11">${escapeXml(s.name)}</text>`,
      );
    });
    if (opts.marks?.length) {
      const ly = f.top + 6 + opts.series.length * 16;
      body.push(
        `<g fill="#000000">${marker("diamond", lx + 6, ly - 3, 4.5)}</g>`,
        `<text x="${lx + 16}" y="${ly + 1}" font-size="11">` +
          `${escapeXml(opts.markLabel ?? "published")}</text>`,
      );
    }
  }
  return body;
}

/** An axis-aligned box (label or marker) in SVG coordinates. */
export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Whether two boxes overlap (touching edges do not count). */
export function boxesOverlap(a: Box, b: Box): boolean {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

function overlapArea(a: Box, b: Box): number {
  const w = Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y);
  return w > 0 && h > 0 ? w * h : 0;
}

/** A placed text label: its anchor point, alignment, box, and whether it needs a leader line. */
export interface PlacedLabel {
  x: number;
  y: number;
  anchor: "start" | "middle" | "end";
  box: Box;
  leader: boolean;
}

/**
 * Places one label per point so that no label overlaps another label, a point marker (radius
 * `radius`) or the plot's edge when a free position exists among candidates at growing distances;
 * otherwise the position with the least overlap. Points are placed top to bottom. Returns the
 * labels in the order of `points`.
 */
export function placeLabels(
  points: readonly { x: number; y: number; label: string }[],
  area: Box,
  fontSize = 10,
  radius = 4,
): PlacedLabel[] {
  const h = fontSize + 2;
  const markers: Box[] = points.map((p) => ({
    x: p.x - radius,
    y: p.y - radius,
    w: 2 * radius,
    h: 2 * radius,
  }));
  const placed: Box[] = [];
  const out: PlacedLabel[] = new Array(points.length);
  const order = points.map((_, i) => i).sort((a, b) => points[a].y - points[b].y);
  const inside = (b: Box) =>
    b.x >= area.x && b.y >= area.y && b.x + b.w <= area.x + area.w &&
    b.y + b.h <= area.y + area.h;
  for (const i of order) {
    const p = points[i];
    const w = textWidth(p.label, fontSize);
    let best: { label: PlacedLabel; cost: number } | null = null;
    for (const dist of [0, 10, 22, 36, 52]) {
      const gap = radius + 2 + dist;
      const candidates: [number, number, PlacedLabel["anchor"]][] = [
        [gap, -gap / 2 - 1, "start"],
        [gap, gap / 2 + h - 2, "start"],
        [-gap, -gap / 2 - 1, "end"],
        [-gap, gap / 2 + h - 2, "end"],
        [0, -gap - 2, "middle"],
        [0, gap + h, "middle"],
      ];
      for (const [dx, dy, anchor] of candidates) {
        const tx = p.x + dx, ty = p.y + dy;
        const bx = anchor === "start" ? tx : anchor === "end" ? tx - w : tx - w / 2;
        const box = { x: bx, y: ty - fontSize, w, h };
        let cost = inside(box) ? 0 : 1e6;
        for (const o of placed) cost += overlapArea(box, o) * 10;
        for (const m of markers) cost += overlapArea(box, m) * 10;
        cost += dist * 0.01;
        if (!best || cost < best.cost) {
          best = { label: { x: tx, y: ty, anchor, box, leader: dist > 10 }, cost };
        }
      }
      if (best && best.cost < 1) break;
    }
    placed.push(best!.label.box);
    out[i] = best!.label;
  }
  return out;
}

/**
 * A scatter plot, e.g. per-class accuracy against training count with `xLog: true`. Each point
 * carries its label as a hover tooltip, and, when there are at most 20 points, as text beside it,
 * placed so that labels do not overlap each other or the points (a thin leader line joins a label
 * pushed away from its point).
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
  const xAxis = makeAxis(pts.map((p) => p.x), x0, x1, { log: opts.xLog });
  const yAxis = makeAxis(pts.map((p) => p.y), height - f.bottom, f.top, { fixed: opts.yRange });
  const body = frameParts(f, opts.title, opts.xLabel, opts.yLabel, xAxis, yAxis);
  if (pts.length === 0) body.push(noData(f, x0, x1));
  const xy = pts.map((p) => ({ x: xAxis.map(p.x), y: yAxis.map(p.y), label: p.label ?? "" }));
  const labelled = pts.length <= 20 ? xy.filter((p) => p.label) : [];
  const area = { x: x0 + 1, y: f.top + 1, w: x1 - x0 - 2, h: height - f.bottom - f.top - 2 };
  const labels = placeLabels(labelled, area);
  body.push(`<g fill="${PALETTE[0]}" fill-opacity="0.8">`);
  pts.forEach((p, i) => {
    const tip = `${p.label ? p.label + ": " : ""}(${formatNumber(p.x)}, ${formatNumber(p.y)})`;
    body.push(
      `<circle cx="${c(xy[i].x)}" cy="${c(xy[i].y)}" r="4"><title>${escapeXml(tip)}</title>` +
        `</circle>`,
    );
  });
  body.push(`</g>`);
  body.push(`<g font-size="10" fill="#333333">`);
  labelled.forEach((p, i) => {
    const l = labels[i];
    if (l.leader) {
      const lx = Math.min(Math.max(p.x, l.box.x), l.box.x + l.box.w);
      const ly = Math.min(Math.max(p.y, l.box.y), l.box.y + l.box.h);
      body.push(
        `<line x1="${c(p.x)}" y1="${c(p.y)}" x2="${c(lx)}" y2="${c(ly)}" stroke="#999999" ` +
          `stroke-width="0.8"/>`,
      );
    }
    body.push(
      `<text x="${c(l.x)}" y="${c(l.y)}" text-anchor="${l.anchor}">${escapeXml(p.label)}</text>`,
    );
  });
  body.push(`</g>`);
  return svgDocument(width, height, opts.title, body);
}
