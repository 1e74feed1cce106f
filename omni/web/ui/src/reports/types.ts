// Wire shapes of the reports REST API (omni/api/reports.py) and the export jobs.

export type Value = string | number | boolean | null;

export interface ReportInfo {
  key: string;
  title: string;
  filters: string[];
  paginated: boolean;
}

export interface ColumnSpec {
  key: string;
  kind: "text" | "count" | "number" | "seconds" | "percent" | "datetime" | "label";
  title: string;
}

export interface ChartSpec {
  kind: "bar" | "line" | "stacked" | "pie";
  x: string;
  series: string[];
}

export interface ReportTable {
  key: string;
  title: string;
  columns: ColumnSpec[];
  rows: Value[][];
  totals: Value[] | null;
  chart: ChartSpec | null;
  notes: string[];
  total_rows: number | null;
}

export interface Option {
  id: number | string;
  label: string;
  channel?: string | null;
  code?: string | null;
}

export interface Options {
  queues: Option[];
  groups: Option[];
  operators: Option[];
  channels: Option[];
  inboxes: Option[];
  result_codes: Option[];
}

export interface ExportJob {
  id: number | string;
  state: "running" | "done" | "failed";
  rows_done: number;
  rows_total: number | null;
  error: string | null;
}
