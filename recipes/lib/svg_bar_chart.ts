/**
 * The grouped bar chart panel of the SVG panel grids (e.g. the paper table's accuracies with
 * error bars and the published numbers marked).
 *
 * @module
 */
import type { BarChartOptions, LineChartOptions } from "./svg_chart_types.ts";
import {
  coord,
  escapeXml,
  formatNumber,
  type Frame,
  makeAxis,
  marker,
  PALETTE,
  textWidth,
} from "./svg_primitives.ts";

/** Whether a panel is a bar chart. */
export function isBar(p: LineChartOptions | BarChartOptions): p is BarChartOptions {
  return (p as BarChartOptions).kind === "bar";
}

/** The body of one grouped bar chart inside a `width` x `height` box at the origin. */
export function barChartBody(
  opts: BarChartOptions,
  width: number,
  height: number,
  titleSize: number,
) {
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
    `<text x="${coord((x0 + x1) / 2)}" y="${titleSize + 6}" text-anchor="middle" ` +
    `font-size="${titleSize}" font-weight="bold">${escapeXml(opts.title)}</text>`,
    `<g stroke="#e0e0e0" stroke-width="1">`,
    ...yAxis.ticks.map((t) =>
      `<line x1="${coord(x0)}" y1="${coord(yAxis.map(t))}" x2="${coord(x1)}" y2="${
        coord(yAxis.map(t))
      }"/>`
    ),
    `</g>`,
    `<g font-size="11" fill="#333333">`,
    ...yAxis.ticks.map((t) =>
      `<text x="${coord(x0 - 6)}" y="${coord(yAxis.map(t) + 4)}" text-anchor="end">${
        formatNumber(t)
      }` +
      `</text>`
    ),
    ...opts.groups.map((gName, g) =>
      `<text x="${coord(x0 + groupW * (g + 0.5))}" y="${coord(y0 + 16)}" text-anchor="middle">` +
      `${escapeXml(gName)}</text>`
    ),
    `</g>`,
    `<text x="${coord((x0 + x1) / 2)}" y="${
      coord(height - 12)
    }" text-anchor="middle" font-size="12">` +
    `${escapeXml(opts.xLabel)}</text>`,
    `<text x="14" y="${coord((y0 + f.top) / 2)}" text-anchor="middle" font-size="12" ` +
    `transform="rotate(-90 14 ${coord((y0 + f.top) / 2)})">${escapeXml(opts.yLabel)}</text>`,
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
          `<text x="${coord(mx)}" y="${coord(my)}" font-size="9" fill="#999999" ` +
            `transform="rotate(-90 ${coord(mx)} ${coord(my)})">missing</text>`,
        );
        return;
      }
      const top = yAxis.map(v);
      body.push(
        `<rect x="${coord(bx + 1)}" y="${coord(Math.min(top, base))}" width="${coord(barW - 2)}" ` +
          `height="${coord(Math.abs(base - top))}"><title>${
            escapeXml(`${s.name}: ${formatNumber(v)}`)
          }` +
          `</title></rect>`,
      );
      const e = s.errors?.[g];
      if (typeof e === "number" && Number.isFinite(e) && e > 0) {
        const mx = bx + barW / 2, ya = yAxis.map(clip(v + e)), yb = yAxis.map(clip(v - e));
        body.push(
          `<path d="M${coord(mx)} ${coord(ya)}V${coord(yb)}M${coord(mx - 3)} ${coord(ya)}H${
            coord(mx + 3)
          }M${coord(mx - 3)} ` +
            `${coord(yb)}H${coord(mx + 3)}" stroke="#222222" stroke-width="1" fill="none"/>`,
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
    `<line x1="${coord(x0)}" y1="${coord(y0)}" x2="${coord(x1)}" y2="${
      coord(y0)
    }" stroke="#333333"/>`,
    `<line x1="${coord(x0)}" y1="${coord(f.top)}" x2="${coord(x0)}" y2="${
      coord(y0)
    }" stroke="#333333"/>`,
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
