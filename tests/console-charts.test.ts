import { describe, expect, it } from 'vitest';
import { axisTicks, barChart, labelEvery } from '../src/admin/console/charts.ts';

// The console's bar charts (src/admin/console/charts.ts): the y axis reads distinct whole
// numbers on a round step up to the maximum, and each label sits under its own bar.

describe('axis ticks', () => {
  it.each([0, 1, 2, 3, 7, 10, 99, 1234])('for a maximum of %i: distinct whole numbers on a 1, 2 or 5 x 10^n step, from 0 to at or above the maximum', (max) => {
    const ticks = axisTicks(max);
    expect(ticks[0]).toBe(0);
    expect(ticks.every(Number.isInteger)).toBe(true);
    expect(new Set(ticks).size).toBe(ticks.length);
    expect(ticks.at(-1)!).toBeGreaterThanOrEqual(Math.max(1, max));
    const step = ticks[1]! - ticks[0]!;
    expect(ticks.every((t, i) => t === i * step)).toBe(true);
    const power = 10 ** Math.floor(Math.log10(step));
    expect([1, 2, 5]).toContain(step / power);
    // Not one step more than needed, and a handful of ticks, not dozens.
    expect(ticks.at(-2)!).toBeLessThan(Math.max(1, max));
    expect(ticks.length).toBeLessThanOrEqual(7);
  });

  it('reads as expected for the usual maxima', () => {
    expect(axisTicks(0)).toEqual([0, 1]);
    expect(axisTicks(1)).toEqual([0, 1]);
    expect(axisTicks(2)).toEqual([0, 1, 2]);
    expect(axisTicks(7)).toEqual([0, 2, 4, 6, 8]);
    expect(axisTicks(99)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(axisTicks(1234)).toEqual([0, 500, 1000, 1500]);
  });
});

describe('bar chart', () => {
  it('puts each label centred under its bar, and the axis top at the last tick', () => {
    const points = ['甲', '乙', '丙', '丁'].map((label, i) => ({ label, value: i * 3, tick: label }));
    const chart = barChart(points);
    expect(chart.max).toBe(10);
    expect(chart.axis.map((a) => a.value)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(chart.ticks.map((t) => t.text)).toEqual(['甲', '乙', '丙', '丁']);
    chart.ticks.forEach((t, i) => {
      const bar = chart.bars[i]!;
      expect(t.x).toBeCloseTo(bar.x + bar.width / 2);
      expect(t.x).toBeGreaterThan(bar.x);
      expect(t.x).toBeLessThan(bar.x + bar.width);
    });
    // A bar of the maximum reaches the top tick's line exactly when the value is the top.
    expect(chart.bars[0]!.height).toBe(0);
    expect(chart.bars[3]!.y).toBeCloseTo(chart.axis[0]!.y - (9 / 10) * (chart.axis[0]!.y - chart.axis.at(-1)!.y));
  });

  it('labels only the bars given a tick, and cuts a label to the room it has', () => {
    const days = Array.from({ length: 335 }, (_, i) => new Date(Date.UTC(2026, 0, 1 + i)).toISOString().slice(0, 10));
    const chart = barChart(days.map((day) => ({ label: day, value: 1, ...(day.endsWith('-01') && { tick: day.slice(5) }) })));
    expect(chart.ticks.map((t) => t.text)).toEqual(['01', '02', '03', '04', '05', '06', '07', '08', '09', '10', '11', '12'].map((m) => `${m}-01`));
    expect(chart.ticks[1]!.x).toBeCloseTo(chart.bars[31]!.center);
    // The last, at the right edge, moved in as far as it must: it still spans its bar's centre.
    const last = chart.ticks.at(-1)!;
    expect(last.x).toBeLessThan(chart.bars[334]!.center);
    expect(last.x + (5 * 6.5) / 2).toBeCloseTo(chart.width);
    expect(last.x + (5 * 6.5) / 2).toBeGreaterThan(chart.bars[334]!.center);
    const crowded = barChart(Array.from({ length: 40 }, (_, i) => ({ label: `很长的窗口平台名称第${i}号`, value: i, tick: `很长的窗口平台名称第${i}号` })));
    expect(crowded.ticks.every((t) => t.text.endsWith('…') && [...t.text].length <= 2)).toBe(true);
    expect(labelEvery(crowded.bars.map((b) => b.label))).toBeGreaterThan(1);
    expect(labelEvery(['郑州市综合窗口平台', '洛阳市综合窗口平台', '省级平台'])).toBe(1);
  });

  it('draws an empty chart without failing', () => {
    const chart = barChart([]);
    expect(chart.bars).toEqual([]);
    expect(chart.axis.map((a) => a.value)).toEqual([0, 1]);
  });
});
