// Pitch and pace curves (uPlot) on the same time axis as the waveform.
import uPlot from "/static/vendor/uplot/uPlot.esm.js";
import { fmtTime } from "./common.js";

const AXIS = "#677085";
const GRID = "#eef0f3";
const GUTTER = 76;       // px left of the plot: y tick labels (and the row labels above)
const RIGHT = 24;        // px right of the plot, so the last time label ("1:00:00") is not clipped
const COLORS = { agent: "#5b8def", customer: "#8c6bd6" };
const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];

/** Series of prosody rows on one shared x array (seconds), one y array per speaker. */
export function prosodySeries(rows, field) {
  const xs = [...new Set(rows.map((r) => r.t))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const ys = { agent: new Array(xs.length).fill(null), customer: new Array(xs.length).fill(null) };
  for (const r of rows) {
    const v = r[field];
    if (ys[r.speaker] && typeof v === "number" && isFinite(v) && v > 0) ys[r.speaker][index.get(r.t)] = v;
  }
  return [xs, ys.agent, ys.customer];
}

function makeChart(root, { data, duration, height, showTime, yRange, onSeek }) {
  const width = Math.max(200, root.clientWidth);
  const opts = {
    width, height,
    legend: { show: false },
    padding: [8, RIGHT, showTime ? 0 : 4, 0],
    cursor: { y: false, drag: { x: false, y: false }, points: { size: 6 } },
    scales: { x: { time: false, range: [0, duration] }, y: { range: yRange } },
    axes: [
      {
        stroke: AXIS, size: showTime ? 26 : 4, gap: 3, space: 56, incrs: TIME_STEPS,
        grid: { stroke: GRID, width: 1 }, ticks: { show: false },
        values: (u, vals) => (showTime ? vals.map((v) => fmtTime(v, true)) : vals.map(() => "")),
      },
      {
        stroke: AXIS, size: GUTTER, gap: 6, space: 22, grid: { stroke: GRID, width: 1 },
        ticks: { show: false }, values: (u, vals) => vals.map((v) => String(Math.round(v))),
      },
    ],
    series: [
      {},
      { label: "agent", stroke: COLORS.agent, width: 1.6, spanGaps: false, points: { show: false } },
      { label: "customer", stroke: COLORS.customer, width: 1.6, spanGaps: false, points: { show: false } },
    ],
  };
  const u = new uPlot(opts, data, root);
  u.over.addEventListener("click", (e) => {
    const rect = u.over.getBoundingClientRect();
    const t = u.posToVal(e.clientX - rect.left, "x");
    if (isFinite(t)) onSeek(Math.max(0, Math.min(duration, t)));
  });
  return u;
}

function yRangeFor(values, floor, pad) {
  const vs = values.flat().filter((v) => typeof v === "number");
  if (!vs.length) return () => [floor, floor + 100];
  const lo = Math.min(...vs), hi = Math.max(...vs);
  return () => [Math.max(0, Math.floor((lo - pad) / 10) * 10), Math.ceil((hi + pad) / 10) * 10];
}

/** Build both charts; returns {plotLeft, plotRight, resize()} so the other timeline rows
 * can line up with the charts' plotting area. The area follows from our axis size and
 * padding alone (uPlot applies sizes a microtask later, so measuring it right after a
 * resize would read the old size). */
export function buildCharts({ pitchRoot, paceRoot, prosody, duration, onSeek }) {
  const pitch = prosodySeries(prosody, "f0_hz");
  const pace = prosodySeries(prosody, "wpm");
  const charts = [
    makeChart(pitchRoot, { data: pitch, duration, height: 96, showTime: false,
      yRange: yRangeFor([pitch[1], pitch[2]], 50, 15), onSeek }),
    makeChart(paceRoot, { data: pace, duration, height: 118, showTime: true,
      yRange: yRangeFor([pace[1], pace[2]], 60, 15), onSeek }),
  ];
  return {
    charts,
    plotLeft: GUTTER,
    plotRight: RIGHT,
    empty: { pitch: !pitch[0].length, pace: !pace[0].length },
    resize() {
      for (const [u, root, h] of [[charts[0], pitchRoot, 96], [charts[1], paceRoot, 118]]) {
        if (root.clientWidth > 0) u.setSize({ width: Math.max(200, root.clientWidth), height: h });
      }
    },
  };
}
