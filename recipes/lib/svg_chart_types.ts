/**
 * The options of the SVG charts (`svg_plot.ts`): line series, reference lines, bar series and
 * marks, panel grids and scatter points.
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
