// The report's chart from its table's `chart` spec. Only the chart.js pieces these four kinds
// use are registered, so esbuild drops the rest of the library.
import {
  ArcElement,
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PieController,
  PointElement,
  Tooltip,
} from "chart.js";
import type { ChartConfiguration } from "chart.js";
import { clock } from "./format";
import type { Formatter } from "./format";
import type { ReportTable, Value } from "./types";

Chart.register(
  ArcElement,
  BarController,
  BarElement,
  CategoryScale,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PieController,
  PointElement,
  Tooltip,
);

const PALETTE = ["#2f6fde", "#d9534f", "#3aa76d", "#f0ad4e", "#8e6bd6", "#17a2b8", "#7a7a7a", "#e67e22"];

/** Draws ``table``'s chart on ``canvas``; ``null`` when the table asks for none. */
export function drawChart(canvas: HTMLCanvasElement, table: ReportTable, fmt: Formatter): Chart | null {
  const spec = table.chart;
  if (!spec) return null;
  const index = new Map(table.columns.map((c, i) => [c.key, i]));
  const xi = index.get(spec.x);
  if (xi === undefined) return null;
  const series = spec.series.filter((key) => index.has(key));
  const number = (v: unknown): number | null => (typeof v === "number" ? v : null);
  // Several rows per x (a day × each queue): counts add up to one bar per x; other figures
  // (percents, means) can't be added, so those rows stay side by side.
  const additive = series.every((key) => table.columns[index.get(key) as number].kind === "count");
  const points = new Map<string, (number | null)[]>();
  const keyOf = (row: Value[]): string => (additive ? fmt.axis(row[xi]) : String(points.size));
  for (const row of table.rows) {
    const key = keyOf(row);
    const values = series.map((s) => number(row[index.get(s) as number]));
    const seen = points.get(key);
    if (!seen) points.set(key, values);
    else values.forEach((v, i) => (seen[i] = v === null ? seen[i] : (seen[i] ?? 0) + v));
  }
  const labels = additive ? Array.from(points.keys()) : table.rows.map((row) => fmt.axis(row[xi]));
  const columnsOf = Array.from(points.values());
  const datasets = series.map((key, n) => {
    const ci = index.get(key) as number;
    const colour = PALETTE[n % PALETTE.length];
    return {
      label: table.columns[ci].title,
      data: columnsOf.map((values) => values[n]),
      backgroundColor: spec.kind === "pie" ? labels.map((_, i) => PALETTE[i % PALETTE.length]) : colour,
      borderColor: colour,
    };
  });
  // What is drawn, readable without pixels (tests, assistive tools read the table anyway).
  canvas.setAttribute("data-points", JSON.stringify({ labels, series: datasets.map((d) => d.data) }));
  const stacked = spec.kind === "stacked";
  // Durations (status times) read as 20:00 on the axis and in tooltips, like the table, not 1200.
  const seconds = series.length > 0 && series.every((key) => table.columns[index.get(key) as number].kind === "seconds");
  // Counts tick in whole numbers (no "0,1 calls").
  const ticks = seconds ? { callback: (v: number | string) => clock(Number(v)) } : additive ? { precision: 0 } : {};
  const tooltip = seconds
    ? { callbacks: { label: (c: { dataset: { label?: string }; raw: unknown }) => `${c.dataset.label ?? ""}: ${clock(Number(c.raw))}` } }
    : {};
  const config = {
    type: spec.kind === "stacked" ? "bar" : spec.kind,
    data: { labels, datasets: spec.kind === "pie" ? datasets.slice(0, 1) : datasets },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      scales:
        spec.kind === "pie"
          ? {}
          : { x: { stacked }, y: { stacked, beginAtZero: true, ticks } },
      plugins: { legend: { position: "bottom" }, tooltip },
    },
  } as ChartConfiguration;
  return new Chart(canvas, config);
}
