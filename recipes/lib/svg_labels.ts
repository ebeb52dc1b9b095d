/**
 * Label placement for the SVG scatter plots: one label per point, placed so that no two labels
 * overlap each other, a point marker or the plot's edge where a free position exists.
 *
 * @module
 */
import { textWidth } from "./svg_primitives.ts";

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
