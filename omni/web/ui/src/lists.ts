// A campaign's lists: upload a CSV/XLSX, map its columns (several phone columns in the order they
// are tried, name, zone, tags, card fields) with a live preview of the rows as they would be
// imported, start, follow the progress (pushed over /supervisor as `list_import`, GET as the
// fallback), cancel, download the refused rows. Everything else comes over REST.
import { boot, clear, connect, el, translator } from "./common";

interface Column { index: number; title: string }
interface Mapping {
  phones: number[];
  name: number | null;
  timezone: number | null;
  tags: number | null;
  fields: Record<string, number>;
  header: boolean;
}
interface Job {
  id: number;
  list_id: number;
  campaign_id: number;
  filename: string;
  state: string;
  mapping: Mapping;
  columns: Column[];
  sample: string[][];
  header: boolean;
  encoding: string;
  delimiter: string;
  bytes_total: number;
  bytes_done: number;
  rows_read: number;
  rows_imported: number;
  rows_invalid: number;
  rows_duplicate: number;
  rows_dnc: number;
  has_rejects: boolean;
  error: string;
}
interface PreviewRow { line: number; ok: boolean; reason: string; phones: string[]; name: string; timezone: string; fields: Record<string, string>; tags: string[] }
interface CallList { id: number; name: string; created_at: string; targets: number; by_state: Record<string, number>; last_import: Job | null }

const data = boot();
const t = translator(data.strings);
const campaign = data.campaign as { id: number; name: string };
const app = document.getElementById("app") as HTMLElement;
const ACTIVE = ["pending", "running"];

async function api<T>(url: string, init: RequestInit = {}): Promise<T> {
  const resp = await fetch(url, {
    credentials: "same-origin",
    ...init,
    headers: { "X-Omni-CSRF": "1", Accept: "application/json", ...(init.headers ?? {}) },
  });
  const body = (await resp.json().catch(() => ({}))) as T & { detail?: string };
  if (!resp.ok) throw new Error(body.detail ?? `HTTP ${resp.status}`);
  return body;
}

const listsBox = el("div", { "data-testid": "lists" });
const fileInput = el("input", { type: "file", accept: ".csv,.txt,.xlsx", "data-testid": "list-file" });
const uploadButton = el("button", { type: "button", "data-testid": "upload" }, t("lst.upload"));
const errorBox = el("p", { class: "bad", role: "alert", "data-testid": "list-error", hidden: true });
const mappingBox = el("section", { class: "lst-mapping card", "data-testid": "mapping", hidden: true });
const progressBox = el("section", { class: "lst-progress card", "data-testid": "progress-box", hidden: true });

app.append(
  el(
    "div",
    { class: "lst" },
    el("header", {}, el("h1", {}, `${t("lst.title")}: ${campaign.name}`)),
    el(
      "section",
      { class: "lst-upload card" },
      el("h2", {}, t("lst.import")),
      el("p", { class: "muted" }, t("lst.formats")),
      fileInput,
      uploadButton,
    ),
    errorBox,
    mappingBox,
    progressBox,
    el("h2", {}, t("lst.lists")),
    listsBox,
  ),
);

function showError(message: string): void {
  errorBox.textContent = message;
  errorBox.hidden = !message;
}

// --- lists -------------------------------------------------------------------------------

async function loadLists(): Promise<void> {
  const lists = await api<CallList[]>(`/api/v1/campaigns/${campaign.id}/lists`);
  const running = lists.find((l) => l.last_import?.state === "running")?.last_import;
  if (running && following === null && mappingBox.hidden) follow(running);
  clear(listsBox);
  if (!lists.length) {
    listsBox.append(el("p", { class: "muted" }, t("lst.none")));
    return;
  }
  const head = el(
    "tr",
    {},
    ...["lst.col.name", "lst.col.created", "lst.col.targets", "lst.col.states", "lst.col.import"].map((k) => el("th", {}, t(k))),
  );
  const rows = lists.map((l) =>
    el(
      "tr",
      { "data-testid": "list-row" },
      el("td", {}, l.name),
      el("td", {}, new Date(l.created_at).toLocaleString(data.lang)),
      el("td", { class: "num" }, String(l.targets)),
      el("td", {}, Object.entries(l.by_state).map(([s, n]) => `${t(`lst.state.${s}`)}: ${n}`).join(", ")),
      el("td", {}, l.last_import ? importSummary(l.last_import) : ""),
    ),
  );
  listsBox.append(el("table", { class: "grid" }, el("thead", {}, head), el("tbody", {}, ...rows)));
}

function importSummary(job: Job): HTMLElement {
  const box = el(
    "span",
    {},
    `${t(`lst.job.${job.state}`)} · ${t("lst.counts", {
      imported: job.rows_imported,
      invalid: job.rows_invalid,
      duplicate: job.rows_duplicate,
      dnc: job.rows_dnc,
    })}`,
  );
  if (job.has_rejects)
    box.append(" ", el("a", { href: `/api/v1/list-imports/${job.id}/rejects`, download: "" }, t("lst.rejects")));
  return box;
}

// --- upload and mapping ------------------------------------------------------------------

const ROLES = ["skip", "phone", "name", "timezone", "tags", "field"] as const;
type Role = (typeof ROLES)[number];
let job: Job | null = null;
let roles: Role[] = [];
let previewSeq = 0;

function rolesFrom(mapping: Mapping, width: number): Role[] {
  const out: Role[] = Array.from({ length: width }, () => "skip" as Role);
  for (const i of mapping.phones) out[i] = "phone";
  if (mapping.name !== null) out[mapping.name] = "name";
  if (mapping.timezone !== null) out[mapping.timezone] = "timezone";
  if (mapping.tags !== null) out[mapping.tags] = "tags";
  for (const i of Object.values(mapping.fields)) out[i] = "field";
  return out;
}

function columnTitle(c: Column): string {
  return c.title || t("lst.column", { n: c.index + 1 });
}

function currentMapping(headerBox: HTMLInputElement): Mapping {
  const mapping: Mapping = { phones: [], name: null, timezone: null, tags: null, fields: {}, header: headerBox.checked };
  const columns = job?.columns ?? [];
  roles.forEach((role, i) => {
    if (role === "phone") mapping.phones.push(i);
    else if (role === "name") mapping.name = i;
    else if (role === "timezone") mapping.timezone = i;
    else if (role === "tags") mapping.tags = i;
    else if (role === "field") mapping.fields[columnTitle(columns[i])] = i;
  });
  return mapping;
}

function renderMapping(): void {
  if (!job) return;
  const current = job;
  clear(mappingBox);
  mappingBox.hidden = false;
  roles = rolesFrom(current.mapping, current.columns.length);
  const headerBox = el("input", { type: "checkbox", "data-testid": "header-row" });
  headerBox.checked = current.header;
  const previewBox = el("div", { class: "lst-preview", "data-testid": "preview" });
  const selects = current.columns.map((c) => {
    const select = el("select", { "data-testid": `map-${c.index}`, "aria-label": columnTitle(c) });
    for (const role of ROLES) {
      const option = el("option", { value: role }, t(`lst.role.${role}`));
      option.selected = roles[c.index] === role;
      select.append(option);
    }
    select.addEventListener("change", () => {
      roles[c.index] = select.value as Role;
      void preview(currentMapping(headerBox), previewBox);
    });
    return el("th", {}, el("div", {}, columnTitle(c)), select);
  });
  headerBox.addEventListener("change", () => void preview(currentMapping(headerBox), previewBox));
  const sample = current.sample.map((r) => el("tr", {}, ...current.columns.map((c) => el("td", {}, r[c.index] ?? ""))));
  const start = el("button", { type: "button", class: "primary", "data-testid": "start" }, t("lst.start"));
  start.addEventListener("click", () => void startImport(currentMapping(headerBox)));
  mappingBox.append(
    el("h2", {}, `${t("lst.mapping")}: ${current.filename}`),
    el("p", { class: "muted" }, t("lst.sniffed", { encoding: current.encoding || "xlsx", delimiter: current.delimiter === "\t" ? "TAB" : current.delimiter || "—" })),
    el("label", {}, headerBox, " ", t("lst.header")),
    el("div", { class: "lst-table-box" }, el("table", { class: "grid" }, el("thead", {}, el("tr", {}, ...selects)), el("tbody", {}, ...sample))),
    el("h3", {}, t("lst.preview")),
    previewBox,
    start,
  );
  void preview(currentMapping(headerBox), previewBox);
}

async function preview(mapping: Mapping, box: HTMLElement): Promise<void> {
  if (!job) return;
  const seq = ++previewSeq;
  try {
    const shown = await api<{ rows: PreviewRow[] }>(`/api/v1/list-imports/${job.id}/preview`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(mapping),
    });
    if (seq !== previewSeq) return;
    showError("");
    clear(box);
    const head = el("tr", {}, ...["lst.col.line", "lst.col.phones", "lst.col.name", "lst.col.zone", "lst.col.fields"].map((k) => el("th", {}, t(k))));
    const rows = shown.rows.map((r) =>
      el(
        "tr",
        { class: r.ok ? "" : "bad", "data-testid": "preview-row" },
        el("td", { class: "num" }, String(r.line)),
        el("td", {}, r.ok ? r.phones.join(", ") : r.reason),
        el("td", {}, r.name),
        el("td", {}, r.timezone),
        el("td", {}, [...Object.entries(r.fields).map(([k, v]) => `${k}: ${v}`), ...r.tags.map((x) => `#${x}`)].join("; ")),
      ),
    );
    box.append(el("table", { class: "grid" }, el("thead", {}, head), el("tbody", {}, ...rows)));
  } catch (err) {
    if (seq === previewSeq) showError(err instanceof Error ? err.message : String(err));
  }
}

uploadButton.addEventListener("click", () => void upload());

async function upload(): Promise<void> {
  const file = fileInput.files?.[0];
  if (!file) {
    showError(t("lst.choose_file"));
    return;
  }
  uploadButton.disabled = true;
  showError("");
  try {
    job = await api<Job>(`/api/v1/campaigns/${campaign.id}/imports?filename=${encodeURIComponent(file.name)}`, {
      method: "POST",
      headers: { "Content-Type": file.type || "application/octet-stream" },
      body: file,
    });
    progressBox.hidden = true;
    renderMapping();
  } catch (err) {
    showError(err instanceof Error ? err.message : String(err));
  } finally {
    uploadButton.disabled = false;
  }
}

// --- the running import ------------------------------------------------------------------

const bar = el("progress", { max: 100, value: 0, "data-testid": "progress" });
const percent = el("span", { "data-testid": "percent" });
const counts = el("p", { "data-testid": "counts" });
const cancelButton = el("button", { type: "button", "data-testid": "cancel" }, t("lst.cancel"));
const result = el("p", { "data-testid": "result" });
let following: number | null = null;

cancelButton.addEventListener("click", async () => {
  if (following === null) return;
  try {
    show(await api<Job>(`/api/v1/list-imports/${following}/cancel`, { method: "POST" }));
  } catch (err) {
    showError(err instanceof Error ? err.message : String(err));
  }
});

function show(update: Job): void {
  if (update.id !== following) return;
  const pct = update.bytes_total ? Math.floor((100 * update.bytes_done) / update.bytes_total) : 0;
  bar.value = pct;
  percent.textContent = `${pct} %`;
  counts.textContent = `${t("lst.read", { rows: update.rows_read })} · ${t("lst.counts", {
    imported: update.rows_imported,
    invalid: update.rows_invalid,
    duplicate: update.rows_duplicate,
    dnc: update.rows_dnc,
  })}`;
  const running = ACTIVE.includes(update.state);
  cancelButton.hidden = !running;
  clear(result);
  result.setAttribute("data-state", update.state);
  if (!running) {
    result.append(t(`lst.job.${update.state}`));
    if (update.error) result.append(` (${update.error})`);
    if (update.has_rejects)
      result.append(
        " ",
        el("a", { href: `/api/v1/list-imports/${update.id}/rejects`, download: "", "data-testid": "rejects" }, t("lst.rejects")),
      );
    following = null;
    void loadLists();
  }
}

async function startImport(mapping: Mapping): Promise<void> {
  if (!job) return;
  try {
    const started = await api<Job>(`/api/v1/list-imports/${job.id}/start`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(mapping),
    });
    showError("");
    mappingBox.hidden = true;
    follow(started);
  } catch (err) {
    showError(err instanceof Error ? err.message : String(err));
  }
}

/** Show a running job's progress bar and keep it current (also after a reload of the page). */
function follow(running: Job): void {
  clear(progressBox);
  progressBox.hidden = false;
  progressBox.append(el("h2", {}, `${t("lst.importing")}: ${running.filename}`), el("div", { class: "lst-bar" }, bar, percent), counts, cancelButton, result);
  following = running.id;
  show(running);
  void poll(running.id);
}

/** The fallback when a socket message is lost (a reconnect): a slow GET until the job ends. */
async function poll(id: number): Promise<void> {
  while (following === id) {
    await new Promise((resolve) => window.setTimeout(resolve, 3000));
    if (following !== id) return;
    try {
      show(await api<Job>(`/api/v1/list-imports/${id}`));
    } catch {
      /* the next round tries again */
    }
  }
}

const socket = connect("/supervisor");
socket.on("list_import", (update: Job) => show(update));

void loadLists().catch((err: unknown) => showError(err instanceof Error ? err.message : String(err)));
