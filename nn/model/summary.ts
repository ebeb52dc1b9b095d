/**
 * `model.summary()`: a Keras-style table of layers (name, type, output shape, parameter count,
 * nested layers indented to a depth) and the total / trainable / non-trainable parameter counts.
 * @module
 */
import { type Layer, shapeString } from "../layers/layer.ts";
import { checkOptions, type OptionKeys, optionKeys } from "../options.ts";

/** Options of {@link summary}. */
export interface SummaryOptions {
  /** How many levels of nested layers to list (default 1: the model's direct sublayers). */
  depth?: number;
  /** Print with console.log (default true). */
  print?: boolean;
  /** Table width (default 80). */
  width?: number;
}

const SUMMARY_KEYS: OptionKeys = optionKeys<SummaryOptions>({
  depth: true,
  print: true,
  width: true,
});

function fmtInt(n: number): string {
  return n.toLocaleString("en-US");
}

function pad(s: string, n: number): string {
  return s.length >= n ? s + " " : s + " ".repeat(n - s.length);
}

/** Parameter totals of a layer. */
export function paramCounts(
  layer: Layer,
): { total: number; trainable: number; nonTrainable: number } {
  const trainable = layer.countParams("trainable");
  const nonTrainable = layer.countParams("non_trainable");
  return { total: trainable + nonTrainable, trainable, nonTrainable };
}

/** Builds (and by default prints) the summary table of a built layer or model. */
export function summary(layer: Layer, options: SummaryOptions = {}): string {
  checkOptions("summary()", options, SUMMARY_KEYS);
  if (!layer.built) {
    throw new Error(
      `collapse: summary(): ${layer.describe()} is not built; call build(inputShape) first`,
    );
  }
  const depth = options.depth ?? 1;
  const width = options.width ?? 80;
  const c1 = Math.floor(width * 0.45), c2 = Math.floor(width * 0.33);
  const lines: string[] = [];
  lines.push(`Model: "${layer.name}"`);
  lines.push("_".repeat(width));
  lines.push(pad("Layer (type)", c1) + pad("Output Shape", c2) + "Param #");
  lines.push("=".repeat(width));
  const walk = (l: Layer, level: number) => {
    for (const [name, child] of l.sublayers) {
      const label = `${"  ".repeat(level)}${name} (${child.className})`;
      const shape = child.outputShape ? shapeString(child.outputShape) : "?";
      lines.push(pad(label, c1) + pad(shape, c2) + fmtInt(child.countParams()));
      if (level + 1 < depth) walk(child, level + 1);
    }
  };
  walk(layer, 0);
  const c = paramCounts(layer);
  lines.push("=".repeat(width));
  lines.push(`Total params: ${fmtInt(c.total)}`);
  lines.push(`Trainable params: ${fmtInt(c.trainable)}`);
  lines.push(`Non-trainable params: ${fmtInt(c.nonTrainable)}`);
  lines.push("_".repeat(width));
  const text = lines.join("\n");
  if (options.print ?? true) console.log(text);
  return text;
}
