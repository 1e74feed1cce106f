// The page's state lives in the URL: a filtered report is a link to share, and the back button
// steps through earlier choices. Pure functions, so they are easy to reason about.

/** Picker filters: URL parameter (the REST API's name) → the options list that feeds it. */
export const PICKERS = [
  { filter: "queue", param: "queue", options: "queues" },
  { filter: "group", param: "group", options: "groups" },
  { filter: "operator", param: "operator", options: "operators" },
  { filter: "channel", param: "channel", options: "channels" },
  { filter: "inbox", param: "inbox", options: "inboxes" },
  { filter: "result_code", param: "result_code", options: "result_codes" },
] as const;

export const PAGE_SIZE = 50;

/** Filters only some reports offer: a search and talk seconds (contact history), and the staffing
 * forecast's own settings (numbers with the server's bounds; empty = the report's default). */
export const SEARCH_PARAMS = [
  { filter: "q", param: "q" },
  { filter: "duration", param: "min_duration", min: 0, step: 1 },
  { filter: "duration", param: "max_duration", min: 0, step: 1 },
  { filter: "target_sl", param: "target_sl", min: 1, max: 99.9, step: 0.1 },
  { filter: "interval_minutes", param: "interval_minutes", min: 15, max: 30, step: 15 },
  { filter: "weeks", param: "weeks", min: 1, max: 52, step: 1 },
  { filter: "max_occupancy", param: "max_occupancy", min: 1, max: 100, step: 0.1 },
  { filter: "chat_concurrency", param: "chat_concurrency", min: 1, max: 50, step: 1 },
] as const;

export interface State {
  report: string;
  preset: string;
  since: string;
  until: string;
  grouping: string;
  picks: Record<string, string[]>;
  /** ``q``, ``min_duration``, ``max_duration`` and the staffing options as typed. */
  search: Record<string, string>;
  page: number;
}

export function emptyState(): State {
  return { report: "", preset: "", since: "", until: "", grouping: "", picks: {}, search: {}, page: 1 };
}

export function readState(location: string): State {
  const q = new URLSearchParams(location);
  const picks: Record<string, string[]> = {};
  for (const p of PICKERS) {
    const values = q.getAll(p.param).filter((v) => v !== "");
    if (values.length) picks[p.param] = values;
  }
  const search: Record<string, string> = {};
  for (const p of SEARCH_PARAMS) {
    const value = q.get(p.param);
    if (value) search[p.param] = value;
  }
  const page = Number.parseInt(q.get("page") ?? "1", 10);
  return {
    report: q.get("report") ?? "",
    preset: q.get("preset") ?? "",
    since: q.get("since") ?? "",
    until: q.get("until") ?? "",
    grouping: q.get("grouping") ?? "",
    picks,
    search,
    page: Number.isFinite(page) && page > 0 ? page : 1,
  };
}

/** The filter as REST query parameters (what the report, the export and the mailing take),
 * restricted to the filters the report supports. A custom period wins only without a preset. */
export function filterParams(state: State, filters: string[]): URLSearchParams {
  const q = new URLSearchParams();
  if (filters.includes("period")) {
    if (state.preset) q.set("preset", state.preset);
    else {
      if (state.since) q.set("since", state.since);
      if (state.until) q.set("until", state.until);
    }
  }
  if (filters.includes("grouping") && state.grouping) q.set("grouping", state.grouping);
  for (const p of PICKERS) {
    if (!filters.includes(p.filter)) continue;
    for (const v of state.picks[p.param] ?? []) q.append(p.param, v);
  }
  for (const p of SEARCH_PARAMS) {
    const value = state.search[p.param];
    if (filters.includes(p.filter) && value) q.set(p.param, value);
  }
  return q;
}

/** The page's own URL for ``state`` (report first, then its filters, then the page number). */
export function pageSearch(state: State, filters: string[]): string {
  const q = new URLSearchParams();
  if (state.report) q.set("report", state.report);
  for (const [k, v] of filterParams(state, filters)) q.append(k, v);
  if (state.page > 1) q.set("page", String(state.page));
  const text = q.toString();
  return text ? `?${text}` : "";
}
