// Bar charts drawn on the server as SVG (no script, nothing to load): the geometry is
// computed here, the template only draws it.

export type Bar = { label: string; value: number; x: number; y: number; width: number; height: number };
export type BarChart = { width: number; height: number; bars: Bar[]; max: number; axis: Array<{ y: number; value: number }> };

const PAD = { top: 10, right: 10, bottom: 24, left: 44 };

// A round upper bound for the axis: 1, 2 or 5 times a power of ten.
function niceCeiling(value: number): number {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return ([1, 2, 5, 10].find((m) => m * power >= value) ?? 10) * power;
}

export function barChart(points: Array<{ label: string; value: number }>, size = { width: 720, height: 220 }): BarChart {
  const max = niceCeiling(Math.max(0, ...points.map((p) => p.value)));
  const plotWidth = size.width - PAD.left - PAD.right;
  const plotHeight = size.height - PAD.top - PAD.bottom;
  const step = points.length ? plotWidth / points.length : plotWidth;
  const bars = points.map((p, i) => {
    const height = (p.value / max) * plotHeight;
    return { label: p.label, value: p.value, x: PAD.left + i * step + step * 0.1, y: PAD.top + plotHeight - height, width: Math.max(1, step * 0.8), height };
  });
  const axis = [0, 0.5, 1].map((f) => ({ y: PAD.top + plotHeight - f * plotHeight, value: Math.round(max * f) }));
  return { width: size.width, height: size.height, bars, max, axis };
}
