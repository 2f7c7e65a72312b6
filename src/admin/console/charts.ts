// Bar charts drawn on the server as SVG (no script, nothing to load): the geometry is
// computed here, the template only draws it, with the numbers as a table beside it for
// anyone who cannot see the bars.

// `tick`: the text under the bar, when it has one (a chart of many bars labels some).
export type Point = { label: string; value: number; tick?: string };
export type Bar = Point & { x: number; y: number; width: number; height: number; center: number };
export type BarChart = {
  width: number;
  height: number;
  bars: Bar[];
  max: number;
  axis: Array<{ y: number; value: number }>;
  ticks: Array<{ x: number; text: string }>;
  plot: { left: number; right: number; bottom: number };
};

const PAD = { top: 10, right: 10, bottom: 24, left: 44 };
// How wide a label is drawn at 11px: a Chinese character about 11px, a digit or a
// Latin letter about 6.5px (a little more than they take, so labels keep apart).
const textWidth = (text: string) => [...text].reduce((w, ch) => w + (ch.codePointAt(0)! < 0x250 ? 6.5 : 11), 0);

// The values on the y axis: 0 and whole multiples of a round step (1, 2 or 5 times a
// power of ten), about five of them, the last at or above the maximum. Counts are
// whole numbers, so the step is at least 1 and no two ticks read the same.
export function axisTicks(max: number): number[] {
  const target = Math.max(1, Math.ceil(max)) / 5;
  const power = 10 ** Math.max(0, Math.floor(Math.log10(target)));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= target)!;
  const top = Math.max(step, Math.ceil(max / step) * step);
  return Array.from({ length: top / step + 1 }, (_, i) => i * step);
}

// A label cut to the room it has, the whole of it left to the bar's title and the table.
const fit = (text: string, room: number) => {
  if (textWidth(text) <= room) return text;
  const chars = [...text];
  while (chars.length > 1 && textWidth(`${chars.join('')}…`) > room) chars.pop();
  return `${chars.join('')}…`;
};

export function barChart(points: Point[], size = { width: 720, height: 220 }): BarChart {
  const values = axisTicks(Math.max(0, ...points.map((p) => p.value)));
  const max = values[values.length - 1]!;
  const plotWidth = size.width - PAD.left - PAD.right;
  const plotHeight = size.height - PAD.top - PAD.bottom;
  const bottom = PAD.top + plotHeight;
  const step = points.length ? plotWidth / points.length : plotWidth;
  const bars = points.map((p, i) => {
    const height = (p.value / max) * plotHeight;
    const x = PAD.left + i * step + step * 0.1;
    const width = Math.max(1, step * 0.8);
    return { ...p, x, y: bottom - height, width, height, center: x + width / 2 };
  });
  // A label is centred under its bar, cut to the room to its nearest labelled
  // neighbour, and moved off the chart's edges as far as it must (still under its bar).
  const labelled = bars.flatMap((b, i) => (b.tick === undefined ? [] : [i]));
  const ticks = labelled.map((i, n) => {
    const gap = Math.min((labelled[n + 1] ?? Infinity) - i, i - (labelled[n - 1] ?? -Infinity)) * step;
    const text = fit(bars[i]!.tick!, Math.min(gap, size.width));
    const half = textWidth(text) / 2;
    return { x: Math.min(Math.max(bars[i]!.center, half), size.width - half), text };
  });
  const axis = values.map((value) => ({ y: bottom - (value / max) * plotHeight, value }));
  return { width: size.width, height: size.height, bars, max, axis, ticks, plot: { left: PAD.left, right: size.width - PAD.right, bottom } };
}

// Which of the bars carry their label, so that these labels do not run into each other
// on a chart of the given width: every one, or every k-th.
export function labelEvery(labels: readonly string[], width = 720): number {
  const room = (width - PAD.left - PAD.right) / Math.max(1, labels.length);
  return Math.max(1, Math.ceil(Math.max(0, ...labels.map(textWidth)) / room));
}
