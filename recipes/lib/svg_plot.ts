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
import type { LineChartOptions, PanelGridOptions, ScatterChartOptions } from "./svg_chart_types.ts";
import {
  coord,
  dashAttr,
  escapeXml,
  formatNumber,
  type Frame,
  frameParts,
  makeAxis,
  marker,
  noData,
  PALETTE,
  REFERENCE_COLOR,
  styleOf,
  svgDocument,
  textWidth,
} from "./svg_primitives.ts";
import { barChartBody, isBar } from "./svg_bar_chart.ts";
import { placeLabels } from "./svg_labels.ts";

export type * from "./svg_chart_types.ts";
export { escapeXml, formatNumber, logTicks, niceTicks, textWidth } from "./svg_primitives.ts";
export { type Box, boxesOverlap, type PlacedLabel, placeLabels } from "./svg_labels.ts";

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
      `<line x1="${coord(lx)}" y1="${coord(ly - 4)}" x2="${coord(lx + 20)}" y2="${
        coord(ly - 4)
      }" ` +
        `stroke="${REFERENCE_COLOR}" stroke-width="1.5" stroke-dasharray="5 3"/>`,
      `<text x="${coord(lx + 26)}" y="${coord(ly)}" font-size="11" fill="${REFERENCE_COLOR}">` +
        `${escapeXml(label)}</text>`,
    );
  }
  opts.series.forEach((s, i) => {
    const st = styleOf(s, i);
    const segments: string[][] = [[]];
    const valid = s.points.filter(([x, y]) => ok(x, y));
    for (const [x, y] of s.points) {
      if (ok(x, y)) {
        segments[segments.length - 1].push(`${coord(xAxis.map(x))},${coord(yAxis.map(y))}`);
      } else if (segments[segments.length - 1].length > 0) segments.push([]);
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
      `<g stroke="${REFERENCE_COLOR}"><title>${escapeXml(r.label)}</title><line x1="${
        coord(x0)
      }" ` +
        `y1="${coord(py)}" x2="${coord(x1)}" y2="${coord(py)}" stroke-width="1.5" ` +
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
    `<text x="${coord(width / 2)}" y="22" text-anchor="middle" font-size="16" font-weight="bold">` +
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
      `<circle cx="${coord(xy[i].x)}" cy="${coord(xy[i].y)}" r="4"><title>${
        escapeXml(tip)
      }</title>` +
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
        `<line x1="${coord(p.x)}" y1="${coord(p.y)}" x2="${coord(lx)}" y2="${
          coord(ly)
        }" stroke="#999999" ` +
          `stroke-width="0.8"/>`,
      );
    }
    body.push(
      `<text x="${coord(l.x)}" y="${coord(l.y)}" text-anchor="${l.anchor}">${
        escapeXml(p.label)
      }</text>`,
    );
  });
  body.push(`</g>`);
  return svgDocument(width, height, opts.title, body);
}
