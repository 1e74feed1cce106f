// The reports page: pick a report, set its filters (kept in the URL: shareable, the back button
// works), read the table and its chart, export CSV/XLSX, print, or schedule a mailing.
// Everything comes over REST; customer and operator text only ever reaches the page as text.
import type { Chart } from "chart.js";
import { boot, clear, el, recordingPlayer, translator } from "./common";
import { drawChart } from "./reports/chart";
import { runExport } from "./reports/exporter";
import { formatter } from "./reports/format";
import { PAGE_SIZE, PICKERS, SEARCH_PARAMS, emptyState, filterParams, pageSearch, readState } from "./reports/query";
import type { State } from "./reports/query";
import type { Option, Options, ReportInfo, ReportTable, Value } from "./reports/types";

const data = boot();
const t = translator(data.strings);
const presets = (data.presets as string[] | undefined) ?? [];
const groupings = (data.groupings as string[] | undefined) ?? [];
const timeZone = (data.timezone as string | undefined) ?? "UTC";
const schedulesPath = (data.schedules_path as string | undefined) ?? "/reports/schedules";
/** The grading panel of a conversation (omni/web/qa.py), for those who may grade; null otherwise. */
const gradePath = (data.grade_path as string | null | undefined) ?? null;
const app = document.getElementById("app") as HTMLElement;

let reports: ReportInfo[] = [];
let options: Options | null = null;
let state: State = emptyState();
let chart: Chart | null = null;
let runSeq = 0;

const listBox = el("nav", { class: "rpt-list", "data-testid": "report-list", "aria-label": t("rpt.page.title") });
const filtersBox = el("form", { class: "rpt-filters", "data-testid": "filters" });
const actionsBox = el("div", { class: "rpt-actions", "data-testid": "actions" });
const exportBar = el("div", { class: "rpt-export", "data-testid": "export-box", hidden: true });
const errorBox = el("p", { class: "bad", role: "alert", "data-testid": "report-error", hidden: true });
const titleBox = el("h2", { "data-testid": "report-title" });
const periodBox = el("p", { class: "muted", "data-testid": "report-period" });
const chartBox = el("div", { class: "rpt-chart", "data-testid": "chart-box", hidden: true });
const tableBox = el("div", { class: "rpt-table-box", "data-testid": "table-box" });
const notesBox = el("ul", { class: "rpt-notes muted", "data-testid": "report-notes" });
const pagerBox = el("div", { class: "rpt-pager", "data-testid": "pager", hidden: true });
const panel = el("aside", { class: "rpt-panel card", "data-testid": "conversation-panel", hidden: true });

app.append(
  el(
    "div",
    { class: "rpt" },
    el("header", { class: "rpt-head" }, el("h1", {}, t("rpt.page.title"))),
    el(
      "div",
      { class: "rpt-body" },
      listBox,
      el(
        "section",
        { class: "rpt-main" },
        filtersBox,
        actionsBox,
        exportBar,
        errorBox,
        titleBox,
        periodBox,
        chartBox,
        tableBox,
        pagerBox,
        notesBox,
      ),
    ),
  ),
  panel,
);
filtersBox.addEventListener("submit", (ev) => ev.preventDefault());

function current(): ReportInfo | undefined {
  return reports.find((r) => r.key === state.report);
}

async function getJson<T>(url: string): Promise<T> {
  const resp = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  const body = (await resp.json().catch(() => ({}))) as T & { detail?: string };
  if (!resp.ok) throw new Error(body.detail ?? `HTTP ${resp.status}`);
  return body;
}

function showError(message: string | null): void {
  errorBox.hidden = message === null;
  errorBox.textContent = message ?? "";
}

// --- the URL is the state -----------------------------------------------------------------------

/** Record a new state in the history (a new entry: the back button returns to the previous one). */
function navigate(next: State): void {
  state = next;
  const info = current();
  const search = pageSearch(state, info ? info.filters : []);
  if (search !== window.location.search) window.history.pushState(null, "", `${window.location.pathname}${search}`);
  renderAll();
  void run();
}

window.addEventListener("popstate", () => {
  state = readState(window.location.search);
  renderAll();
  void run();
});

// --- the list of reports --------------------------------------------------------------------------

function renderList(): void {
  clear(listBox);
  for (const info of reports) {
    const active = info.key === state.report;
    listBox.append(
      el(
        "a",
        {
          href: `?report=${encodeURIComponent(info.key)}`,
          class: active ? "rpt-link active" : "rpt-link",
          "data-testid": "report-link",
          "data-key": info.key,
          "aria-current": active ? "page" : false,
          onclick: (ev: Event) => {
            ev.preventDefault();
            // Keep the period and pickers chosen so far; the new report drops what it can't take.
            navigate({ ...state, report: info.key, page: 1 });
          },
        },
        info.title,
      ),
    );
  }
}

// --- filters -----------------------------------------------------------------------------------

function field(label: string, control: HTMLElement, testid: string): HTMLElement {
  return el("label", { class: "rpt-field", "data-testid": testid }, el("span", {}, label), control);
}

function select(testid: string, choices: [string, string][], value: string, onChange: (v: string) => void): HTMLSelectElement {
  const node = el("select", { "data-testid": testid });
  for (const [v, label] of choices) {
    const option = el("option", { value: v }, label);
    option.selected = v === value;
    node.append(option);
  }
  node.addEventListener("change", () => onChange(node.value));
  return node;
}

function picker(param: string, testid: string, items: Option[]): HTMLSelectElement {
  const chosen = new Set(state.picks[param] ?? []);
  const node = el("select", { multiple: true, size: Math.min(5, Math.max(2, items.length)), "data-testid": testid });
  for (const item of items) {
    const label = item.channel ? `${item.label} (${t(`enum.channel.${item.channel}`)})` : item.label;
    const option = el("option", { value: String(item.id) }, label);
    option.selected = chosen.has(String(item.id));
    node.append(option);
  }
  node.addEventListener("change", () => {
    const values = Array.from(node.selectedOptions, (o) => o.value);
    const picks = { ...state.picks };
    if (values.length) picks[param] = values;
    else delete picks[param];
    navigate({ ...state, picks, page: 1 });
  });
  return node;
}

function renderFilters(): void {
  clear(filtersBox);
  const info = current();
  if (!info) return;
  const has = (f: string): boolean => info.filters.includes(f);
  if (has("period")) {
    const custom = !state.preset && Boolean(state.since || state.until);
    const presetValue = custom ? "custom" : state.preset || "today";
    const choices: [string, string][] = presets.map((p) => [p, t(`rpt.preset.${p}`)]);
    choices.push(["custom", t("rpt.page.custom")]);
    filtersBox.append(
      field(
        t("rpt.page.period"),
        select("filter-preset", choices, presetValue, (v) => {
          if (v === "custom") {
            const today = new Intl.DateTimeFormat("en-CA", { timeZone }).format(new Date()); // the install's day
            navigate({ ...state, preset: "", since: state.since || today, until: state.until || today, page: 1 });
          } else navigate({ ...state, preset: v, since: "", until: "", page: 1 });
        }),
        "field-preset",
      ),
    );
    if (custom) {
      for (const which of ["since", "until"] as const) {
        const input = el("input", { type: "date", value: state[which], "data-testid": `filter-${which}` });
        input.addEventListener("change", () => navigate({ ...state, preset: "", [which]: input.value, page: 1 }));
        filtersBox.append(field(t(`rpt.page.${which}`), input, `field-${which}`));
      }
    }
  }
  if (has("grouping")) {
    const choices: [string, string][] = groupings.map((g) => [g, t(`rpt.grouping.${g}`)]);
    filtersBox.append(
      field(
        t("rpt.page.grouping"),
        select("filter-grouping", choices, state.grouping || "day", (v) => navigate({ ...state, grouping: v, page: 1 })),
        "field-grouping",
      ),
    );
  }
  if (options) {
    for (const p of PICKERS) {
      if (!has(p.filter)) continue;
      const items = options[p.options];
      filtersBox.append(field(t(`rpt.filter.${p.filter}`), picker(p.param, `filter-${p.filter}`, items), `field-${p.filter}`));
    }
  }
  for (const p of SEARCH_PARAMS) {
    if (!has(p.filter)) continue;
    const numeric = "min" in p;
    const input = el("input", {
      type: numeric ? "number" : "search",
      value: state.search[p.param] ?? "",
      "data-testid": `filter-${p.param}`,
      ...(numeric
        ? { min: p.min, step: p.step, inputmode: "decimal", ...("max" in p ? { max: p.max } : {}) }
        : { maxlength: 100 }),
    });
    // Typing doesn't run the report; Enter or leaving the field does.
    input.addEventListener("change", () => {
      const search = { ...state.search };
      if (input.value.trim()) search[p.param] = input.value.trim();
      else delete search[p.param];
      navigate({ ...state, search, page: 1 });
    });
    filtersBox.append(field(t(`rpt.filter.${p.param}`), input, `field-${p.param}`));
  }
  const anyPick = Object.keys(state.picks).length > 0 || Object.keys(state.search).length > 0;
  filtersBox.append(
    el(
      "button",
      {
        type: "button",
        class: "rpt-clear",
        "data-testid": "filters-clear",
        disabled: !anyPick,
        onclick: () => navigate({ ...state, picks: {}, search: {}, page: 1 }),
      },
      t("rpt.page.clear"),
    ),
  );
}

// --- actions: export, print, schedule -------------------------------------------------------------

function exportTo(format: "csv" | "xlsx"): void {
  const info = current();
  if (!info) return;
  clear(exportBar);
  exportBar.hidden = false;
  const bar = el("progress", { "data-testid": "export-progress", max: 1 });
  const text = el("span", { "data-testid": "export-status", role: "status" }, t("rpt.page.export_started"));
  exportBar.append(bar, text);
  exportBar.setAttribute("data-state", "running");
  for (const b of actionsBox.querySelectorAll<HTMLButtonElement>("button[data-export]")) b.disabled = true;
  const done = (): void => {
    for (const b of actionsBox.querySelectorAll<HTMLButtonElement>("button[data-export]")) b.disabled = false;
  };
  void runExport(info.key, filterParams(state, info.filters), format, {
    progress(rows, total) {
      if (total) {
        bar.max = total;
        bar.value = Math.min(rows, total);
        text.textContent = t("rpt.page.export_progress", { done: rows, total });
      } else {
        bar.removeAttribute("value"); // indeterminate: the total is not known yet
        text.textContent = t("rpt.page.export_rows", { done: rows });
      }
    },
    failed(message) {
      exportBar.setAttribute("data-state", "failed");
      text.textContent = t("rpt.page.export_failed", { detail: message });
      text.className = "bad";
      done();
    },
    finished(fileUrl) {
      bar.max = 1;
      bar.value = 1;
      exportBar.setAttribute("data-state", "done");
      clear(text);
      text.append(
        `${t("rpt.page.export_done")} `,
        el("a", { href: fileUrl, download: "", "data-testid": "export-download" }, t("rpt.page.download")),
      );
      done();
      // Start the download at once; the link stays for a second try.
      const a = el("a", { href: fileUrl, download: "", hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
    },
  });
}

function renderActions(): void {
  clear(actionsBox);
  const info = current();
  if (!info) return;
  const schedule = `${schedulesPath}?${new URLSearchParams([["report", info.key], ...filterParams(state, info.filters)])}`;
  actionsBox.append(
    el("button", { type: "button", "data-testid": "refresh", onclick: () => void run() }, t("rpt.page.refresh")),
    el("button", { type: "button", "data-testid": "export-csv", "data-export": "csv", onclick: () => exportTo("csv") }, t("rpt.page.export_csv")),
    el("button", { type: "button", "data-testid": "export-xlsx", "data-export": "xlsx", onclick: () => exportTo("xlsx") }, t("rpt.page.export_xlsx")),
    el("button", { type: "button", "data-testid": "print", onclick: () => window.print() }, t("rpt.page.print")),
    el("a", { href: schedule, class: "rpt-schedule", "data-testid": "schedule-mailing" }, t("rpt.page.schedule")),
  );
}

// --- the result --------------------------------------------------------------------------------

function renderTable(table: ReportTable): void {
  // A report without the grouping filter labels its rows by its own intervals (staffing): show
  // their time, not the day the grouping picker would default to.
  const grouped = current()?.filters.includes("grouping") ?? true;
  const fmt = formatter(data.lang, timeZone, grouped ? state.grouping || "day" : "interval", t("rpt.page.dash"));
  clear(tableBox);
  if (chart) {
    chart.destroy();
    chart = null;
  }
  clear(chartBox);
  chartBox.hidden = true;
  titleBox.textContent = table.title;
  const numeric = new Set(["count", "number", "seconds", "percent"]);
  const head = el("tr", {});
  for (const c of table.columns) head.append(el("th", { scope: "col", class: numeric.has(c.kind) ? "num" : "", "data-col": c.key }, c.title));
  const body = el("tbody", {});
  const recordingAt = table.columns.findIndex((c) => c.key === "recording");
  const rowOf = (cells: Value[], testid: string): HTMLTableRowElement => {
    const tr = el("tr", { "data-testid": testid });
    table.columns.forEach((c, i) => {
      const value = cells[i] ?? null;
      const td = el("td", { class: numeric.has(c.kind) ? "num" : c.kind === "datetime" || c.key === "period" || c.key === "interval" ? "when" : "", "data-col": c.key });
      if (c.key === "conversation_id" && typeof value === "number" && testid === "report-row") {
        const recorded = recordingAt >= 0 && cells[recordingAt] === true;
        td.append(
          el(
            "button",
            { type: "button", class: "link", "data-testid": "open-conversation", onclick: () => void openConversation(value, recorded, fmt) },
            fmt.cell(c, value),
          ),
        );
      } else td.textContent = fmt.cell(c, value);
      tr.append(td);
    });
    return tr;
  };
  for (const row of table.rows) body.append(rowOf(row, "report-row"));
  const tableEl = el("table", { class: "grid rpt-table", "data-testid": "report-table", "data-rows": table.rows.length }, el("thead", {}, head), body);
  if (table.totals) {
    const totals = rowOf(table.totals, "totals-row");
    const first = totals.firstElementChild;
    if (first && (table.totals[0] === null || table.totals[0] === "")) first.textContent = t("rpt.page.total");
    tableEl.append(el("tfoot", {}, totals));
  }
  if (!table.rows.length) tableBox.append(el("p", { class: "muted", "data-testid": "report-empty" }, t("rpt.page.empty")));
  tableBox.append(tableEl);
  clear(notesBox);
  for (const note of table.notes) notesBox.append(el("li", {}, note));
  if (table.chart && table.rows.length) {
    chartBox.hidden = false;
    const canvas = el("canvas", { "data-testid": "report-chart", role: "img", "aria-label": table.title });
    chartBox.append(canvas);
    chart = drawChart(canvas, table, fmt);
  }
  renderPager(table);
}

interface TranscriptMessage {
  direction: string;
  body: string;
  created_at: string | null;
}

/** A conversation of the contact history: its transcript and, for a call, its recording.
 * The API applies the conversation's own access rule (an auditor is refused: shown as such). */
async function openConversation(id: number, recorded: boolean, fmt: ReturnType<typeof formatter>): Promise<void> {
  clear(panel);
  panel.hidden = false;
  const list = el("ol", { class: "rpt-transcript", "data-testid": "transcript" });
  panel.append(
    el(
      "div",
      { class: "rpt-panel-head" },
      el("h3", {}, t("rpt.page.conversation", { id })),
      gradePath ? el("a", { class: "button", href: `${gradePath}/${id}`, "data-testid": "grade-conversation" }, t("rpt.page.grade")) : null,
      el("button", { type: "button", "data-testid": "panel-close", onclick: () => (panel.hidden = true) }, t("rpt.page.close")),
    ),
    list,
  );
  try {
    const conv = await getJson<{ messages: TranscriptMessage[] }>(`/api/v1/conversations/${id}`);
    for (const msg of conv.messages) {
      const when = fmt.cell({ key: "at", kind: "datetime", title: "" }, msg.created_at);
      list.append(
        el(
          "li",
          { class: `msg msg-${msg.direction}`, "data-testid": "transcript-message", "data-direction": msg.direction },
          el("span", { class: "muted" }, `${when} · ${t(`rpt.page.dir.${msg.direction}`)}`),
          el("div", { class: "msg-body" }, msg.body),
        ),
      );
    }
    if (!conv.messages.length) list.append(el("li", { class: "muted" }, t("rpt.page.no_messages")));
    if (recorded) {
      panel.append(
        recordingPlayer(`/api/v1/conversations/${id}/recording`, { speed: t("rpt.page.speed"), download: t("rpt.page.download") }),
      );
    }
  } catch (err) {
    list.append(el("li", { class: "bad", role: "alert" }, err instanceof Error ? err.message : String(err)));
  }
}

function renderPager(table: ReportTable): void {
  clear(pagerBox);
  const info = current();
  pagerBox.hidden = !(info && info.paginated && table.total_rows !== null);
  if (pagerBox.hidden || table.total_rows === null) return;
  const from = table.rows.length ? (state.page - 1) * PAGE_SIZE + 1 : 0;
  const to = (state.page - 1) * PAGE_SIZE + table.rows.length;
  pagerBox.append(
    el(
      "button",
      { type: "button", "data-testid": "page-prev", disabled: state.page <= 1, onclick: () => navigate({ ...state, page: state.page - 1 }) },
      t("rpt.page.prev"),
    ),
    el("span", { "data-testid": "page-info" }, t("rpt.page.rows_of", { from, to, total: table.total_rows })),
    el(
      "button",
      { type: "button", "data-testid": "page-next", disabled: to >= table.total_rows, onclick: () => navigate({ ...state, page: state.page + 1 }) },
      t("rpt.page.next"),
    ),
  );
}

async function run(): Promise<void> {
  const info = current();
  const seq = ++runSeq;
  if (!info) {
    clear(tableBox);
    clear(notesBox);
    chartBox.hidden = true;
    titleBox.textContent = "";
    tableBox.append(el("p", { class: "muted", "data-testid": "choose-report" }, t("rpt.page.choose")));
    app.setAttribute("data-state", "idle");
    return;
  }
  const q = filterParams(state, info.filters);
  if (info.paginated) {
    q.set("offset", String((state.page - 1) * PAGE_SIZE));
    q.set("limit", String(PAGE_SIZE));
  }
  app.setAttribute("data-state", "loading");
  try {
    const table = await getJson<ReportTable>(`/api/v1/reports/${encodeURIComponent(info.key)}?${q}`);
    if (seq !== runSeq) return; // a newer choice is on its way
    showError(null);
    renderTable(table);
    app.setAttribute("data-state", "ready");
    app.setAttribute("data-query", q.toString());
  } catch (err) {
    if (seq !== runSeq) return;
    showError(t("rpt.page.failed", { detail: err instanceof Error ? err.message : String(err) }));
    app.setAttribute("data-state", "error");
  }
}

/** The filter in words above the table: on paper it is the only trace of what was chosen. */
function renderSummary(): void {
  const info = current();
  const parts: string[] = [];
  if (info?.filters.includes("period")) {
    const custom = !state.preset && Boolean(state.since || state.until);
    const period = custom ? `${state.since || "…"} – ${state.until || "…"}` : t(`rpt.preset.${state.preset || "today"}`);
    parts.push(`${t("rpt.page.period")}: ${period}`);
  }
  if (info?.filters.includes("grouping")) parts.push(`${t("rpt.page.grouping")}: ${t(`rpt.grouping.${state.grouping || "day"}`)}`);
  if (info && options) {
    for (const p of PICKERS) {
      const chosen = state.picks[p.param];
      if (!chosen || !info.filters.includes(p.filter)) continue;
      const names = new Map(options[p.options].map((o) => [String(o.id), o.label]));
      parts.push(`${t(`rpt.filter.${p.filter}`)}: ${chosen.map((id) => names.get(id) ?? id).join(", ")}`);
    }
  }
  for (const p of SEARCH_PARAMS) {
    const value = state.search[p.param];
    if (value && info?.filters.includes(p.filter)) parts.push(`${t(`rpt.filter.${p.param}`)}: ${value}`);
  }
  periodBox.textContent = parts.join(" · ");
}

function renderAll(): void {
  renderList();
  renderFilters();
  renderActions();
  renderSummary();
  document.title = `${current()?.title ?? t("rpt.page.title")} · Omni`;
}

// chart.js sizes the canvas for the screen; paper is narrower, so redraw around printing.
window.addEventListener("beforeprint", () => chart?.resize());
window.addEventListener("afterprint", () => chart?.resize());

async function start(): Promise<void> {
  state = readState(window.location.search);
  try {
    [reports, options] = await Promise.all([
      getJson<ReportInfo[]>("/api/v1/reports"),
      getJson<Options>("/api/v1/reports/options"),
    ]);
  } catch (err) {
    showError(t("rpt.page.failed", { detail: err instanceof Error ? err.message : String(err) }));
    app.setAttribute("data-state", "error");
    return;
  }
  renderAll();
  await run();
}

void start();
