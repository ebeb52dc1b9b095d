/**
 * The parts every SVG chart is drawn from: the palette and series styles, text width and XML
 * escaping, number formatting, nice linear and log ticks, axes, the frame (grid, ticks, labels,
 * title), the document wrapper and point markers.
 *
 * @module
 */
import type { LineSeries, MarkerShape } from "./svg_chart_types.ts";

/** Series colours, by index (the matplotlib tab10 order). */
export const PALETTE = [
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
/** Colour of reference lines. */
export const REFERENCE_COLOR = "#555555";

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
export function coord(v: number): string {
  return (Math.round(v * 100) / 100).toString();
}

/**
 * Nice tick values (1, 2, 5 x 10^k steps) covering [min, max], about `count` of them; with
 * `integer`, steps are whole numbers (epoch axes never show 1.5).
 *
 * @example
 * ```ts
 * import { niceTicks } from "./svg_primitives.ts";
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

/** An axis: its tick values and the map from data values to pixels. */
export interface Axis {
  ticks: number[];
  map: (v: number) => number;
}

/** How an axis is fitted: log scale, a fixed range, integer ticks. */
export interface AxisSpec {
  log?: boolean;
  fixed?: readonly [number, number];
  integer?: boolean;
}

/** The axis over `values`, drawn from pixel `lo` to `hi`. */
export function makeAxis(values: number[], lo: number, hi: number, spec: AxisSpec = {}): Axis {
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

/** A chart's box and the margins around its plot area. */
export interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

/** The background, title, grid, ticks, tick labels and axis labels of a chart. */
export function frameParts(
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
    `<text x="${coord((x0 + x1) / 2)}" y="${titleSize + 6}" text-anchor="middle" ` +
      `font-size="${titleSize}" font-weight="bold">${escapeXml(title)}</text>`,
  );
  out.push(`<g stroke="#e0e0e0" stroke-width="1">`);
  for (const t of x.ticks) {
    const px = x.map(t);
    out.push(`<line x1="${coord(px)}" y1="${coord(y1)}" x2="${coord(px)}" y2="${coord(y0)}"/>`);
  }
  for (const t of y.ticks) {
    const py = y.map(t);
    out.push(`<line x1="${coord(x0)}" y1="${coord(py)}" x2="${coord(x1)}" y2="${coord(py)}"/>`);
  }
  out.push(`</g>`);
  out.push(
    `<rect x="${coord(x0)}" y="${coord(y1)}" width="${coord(x1 - x0)}" height="${
      coord(y0 - y1)
    }" ` +
      `fill="none" stroke="#333333" stroke-width="1"/>`,
  );
  out.push(`<g font-size="11" fill="#333333">`);
  for (const t of x.ticks) {
    out.push(
      `<text x="${coord(x.map(t))}" y="${coord(y0 + 16)}" text-anchor="middle">${
        formatNumber(t)
      }</text>`,
    );
  }
  for (const t of y.ticks) {
    out.push(
      `<text x="${coord(x0 - 6)}" y="${coord(y.map(t) + 4)}" text-anchor="end">${
        formatNumber(t)
      }</text>`,
    );
  }
  out.push(`</g>`);
  out.push(
    `<text x="${coord((x0 + x1) / 2)}" y="${coord(f.height - 10)}" text-anchor="middle" ` +
      `font-size="13">${escapeXml(xLabel)}</text>`,
  );
  out.push(
    `<text x="16" y="${coord((y0 + y1) / 2)}" text-anchor="middle" font-size="13" ` +
      `transform="rotate(-90 16 ${coord((y0 + y1) / 2)})">${escapeXml(yLabel)}</text>`,
  );
  return out;
}

/** A whole SVG document of `width` x `height` around `body`. */
export function svgDocument(width: number, height: number, title: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<title>${escapeXml(title)}</title>`,
    ...body,
    `</svg>`,
    "",
  ].join("\n");
}

/** The "no data" text in the middle of an empty plot area. */
export function noData(f: Frame, x0: number, x1: number): string {
  const y = (f.top + f.height - f.bottom) / 2;
  return `<text x="${coord((x0 + x1) / 2)}" y="${coord(y)}" text-anchor="middle" font-size="14" ` +
    `fill="#999999">no data</text>`;
}

/** One marker at (x, y), as an SVG element filled/stroked by the enclosing group. */
export function marker(shape: MarkerShape, x: number, y: number, r = 3.5): string {
  const k = `class="marker-${shape}"`;
  switch (shape) {
    case "circle":
      return `<circle ${k} cx="${coord(x)}" cy="${coord(y)}" r="${coord(r * 0.85)}"/>`;
    case "square":
      return `<rect ${k} x="${coord(x - r * 0.8)}" y="${coord(y - r * 0.8)}" width="${
        coord(r * 1.6)
      }" ` +
        `height="${coord(r * 1.6)}"/>`;
    case "triangle":
      return `<path ${k} d="M${coord(x)} ${coord(y - r)}L${coord(x + r)} ${coord(y + r * 0.8)}L${
        coord(x - r)
      } ` +
        `${coord(y + r * 0.8)}Z"/>`;
    case "diamond":
      return `<path ${k} d="M${coord(x)} ${coord(y - r)}L${coord(x + r)} ${coord(y)}L${coord(x)} ${
        coord(y + r)
      }` +
        `L${coord(x - r)} ${coord(y)}Z"/>`;
    case "cross":
      return `<path ${k} d="M${coord(x - r)} ${coord(y - r)}L${coord(x + r)} ${coord(y + r)}M${
        coord(x - r)
      } ` +
        `${coord(y + r)}L${coord(x + r)} ${coord(y - r)}" fill="none" stroke-width="1.8"/>`;
  }
}

/** How one series is drawn. */
export interface SeriesStyle {
  color: string;
  /** Marker fill: the colour, or white (hollow) on every other series. */
  fill: string;
  dash: string;
  marker: MarkerShape;
  /** Later series are drawn a little thinner, so one lying on another leaves it visible. */
  width: number;
}

/** The style of series `i`: its own settings, else by index. */
export function styleOf(s: LineSeries, i: number): SeriesStyle {
  const color = s.color ?? PALETTE[i % PALETTE.length];
  return {
    color,
    fill: i % 2 === 1 ? "#ffffff" : color,
    dash: s.dash ?? DASHES[i % DASHES.length],
    marker: s.marker ?? MARKERS[i % MARKERS.length],
    width: Math.max(1.2, 2.6 - 0.35 * (i % 5)),
  };
}

/** The stroke-dasharray attribute of a dash pattern ("" for solid). */
export function dashAttr(dash: string): string {
  return dash ? ` stroke-dasharray="${dash}"` : "";
}
