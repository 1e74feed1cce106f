// Saved views and bulk actions in the supervisor window (issue 18, docs/organise.md): pick or
// save a view (filters: status, label; private or shared with a group), see its conversations
// with their label chips, select some and label / close / transfer them at once; the answer
// lists what could not be done and why (in the supervisor's language).
import { el, clear } from "../common";

type T = (key: string, values?: Record<string, string | number>) => string;

interface LabelInfo { id: number; name: string; color: string; queue_id: number | null }
interface SavedView { id: number; name: string; group_id: number | null; filters: Record<string, unknown> }
interface Conv { id: number; status: string; channel: string; queue_id: number | null; label_ids: number[] }
interface BulkAnswer { done: number[]; refused: { id: number; code: string; error: string }[] }
interface Named { id: number; name: string }
interface ResultCodeInfo { id: number; name: string; name_ru: string; active: boolean }

async function api<R>(method: string, url: string, body?: unknown): Promise<{ ok: boolean; data: R | { detail?: string } }> {
  const resp = await fetch(url, {
    method,
    credentials: "same-origin",
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { ok: resp.ok, data: (await resp.json()) as R };
}

export class OrganiseView {
  readonly box = el("div", { class: "stack", "data-testid": "organise" });
  /** The labels the supervisor may see (also the monitoring tables' chips and filter). */
  labels: LabelInfo[] = [];
  private views: SavedView[] = [];
  private current: SavedView | null = null;
  private selected = new Set<number>();
  /** Result codes and queues for the bulk bar's list, read once when first needed. */
  private codes: Named[] | null = null;
  private queues: Named[] | null = null;

  constructor(
    private readonly t: T,
    private readonly statusLabel: (s: string) => string,
    private readonly lang = "en",
  ) {}

  /** Called after every load (the monitoring tables redraw their chips and filter). */
  onLoaded: () => void = () => undefined;

  async load(): Promise<void> {
    const [labels, views] = await Promise.all([
      api<LabelInfo[]>("GET", "/api/v1/labels"),
      api<SavedView[]>("GET", "/api/v1/views"),
    ]);
    this.labels = labels.ok ? (labels.data as LabelInfo[]) : [];
    this.views = views.ok ? (views.data as SavedView[]) : [];
    this.render();
    this.onLoaded();
  }

  private render(): void {
    const t = this.t;
    clear(this.box);
    const pick = el("select", { "data-testid": "view-pick", "aria-label": t("sv.org_views") });
    pick.append(el("option", { value: "" }, t("sv.org_pick_view")));
    for (const v of this.views) {
      const opt = el("option", { value: v.id }, v.name);
      opt.selected = this.current?.id === v.id;
      pick.append(opt);
    }
    pick.addEventListener("change", () => {
      this.current = this.views.find((v) => String(v.id) === pick.value) ?? null;
      this.selected.clear();
      void this.openCurrent();
    });
    // save a view: a name, a status and a label filter, shared or private
    const name = el("input", { "data-testid": "view-name", placeholder: t("sv.org_view_name"), "aria-label": t("sv.org_view_name") });
    const status = el("select", { "data-testid": "view-status", "aria-label": t("sv.org_status") });
    status.append(el("option", { value: "" }, t("sv.org_any_status")));
    for (const s of ["queued", "offered", "active", "on_hold", "wrap_up", "snoozed", "closed"]) {
      status.append(el("option", { value: s }, this.statusLabel(s)));
    }
    const label = el("select", { "data-testid": "view-label", "aria-label": t("sv.org_label") });
    label.append(el("option", { value: "" }, t("sv.org_any_label")));
    for (const l of this.labels) label.append(el("option", { value: l.id }, l.name));
    const error = el("div", { class: "form-error", "data-testid": "view-error" });
    const save = el("button", { type: "button", "data-testid": "view-save" }, t("sv.org_save_view"));
    save.addEventListener("click", async () => {
      error.textContent = "";
      const filters: Record<string, unknown> = {};
      if (status.value) filters.status = [status.value];
      if (label.value) filters.label_id = [Number(label.value)];
      const answer = await api<SavedView>("POST", "/api/v1/views", { name: name.value, filters });
      if (!answer.ok) {
        error.textContent = (answer.data as { detail?: string }).detail ?? "?";
        return;
      }
      this.current = answer.data as SavedView;
      await this.load();
      await this.openCurrent();
    });
    this.box.append(
      el("div", { class: "row" }, pick),
      el("div", { class: "row" }, name, status, label, save),
      error,
      el("div", { "data-testid": "view-rows" }),
      el("div", { "data-testid": "bulk-report" }),
    );
  }

  private chips(ids: number[]): HTMLElement {
    const box = el("span", { class: "label-chips" });
    for (const id of ids) {
      const l = this.labels.find((x) => x.id === id);
      box.append(el("span", { class: "label-chip", "data-testid": "label-chip", style: `border-color:${l?.color ?? "#64748b"}` }, l?.name ?? `#${id}`));
    }
    return box;
  }

  /** Bumped per ``openCurrent``: a view picked and another picked at once (or a bulk action's
   * re-read racing a pick) each read their rows; only the last one asked for is shown, once. */
  private openTicket = 0;

  private async openCurrent(): Promise<void> {
    const t = this.t;
    const ticket = ++this.openTicket;
    const rows = this.box.querySelector('[data-testid="view-rows"]') as HTMLElement;
    clear(rows);
    if (!this.current) return;
    const answer = await api<Conv[]>("GET", `/api/v1/views/${this.current.id}/conversations`);
    if (ticket !== this.openTicket) return;
    clear(rows);
    const convs = answer.ok ? (answer.data as Conv[]) : [];
    const list = el("ul", { class: "sv-view-list" });
    for (const c of convs) {
      const box = el("input", { type: "checkbox", "data-testid": "view-select", "aria-label": `#${c.id}` });
      box.checked = this.selected.has(c.id);
      box.addEventListener("change", () => (box.checked ? this.selected.add(c.id) : this.selected.delete(c.id)));
      list.append(
        el("li", { "data-testid": "view-row", "data-conversation-id": c.id }, box, ` #${c.id} `, el("span", { class: "badge" }, this.statusLabel(c.status)), " ", this.chips(c.label_ids)),
      );
    }
    const action = el("select", { "data-testid": "bulk-action", "aria-label": t("sv.org_bulk") });
    for (const a of ["label", "close", "transfer"]) action.append(el("option", { value: a }, t(`sv.org_bulk_${a}`)));
    // What the action applies, by name: the label, the result code, the queue.
    const param = el("select", { "data-testid": "bulk-param", "aria-label": t("sv.org_bulk_param") });
    const apply = el("button", { type: "button", "data-testid": "bulk-apply" }, t("sv.org_apply"));
    action.addEventListener("change", () => void this.fillParam(action.value, param));
    void this.fillParam(action.value, param);
    apply.addEventListener("click", () => void this.bulk(action.value, Number(param.value)));
    rows.append(
      convs.length ? list : el("p", { class: "muted", "data-testid": "view-empty" }, t("sv.none")),
      el("div", { class: "row" }, action, param, apply),
    );
  }

  private async fillParam(action: string, param: HTMLSelectElement): Promise<void> {
    let options: Named[] = this.labels;
    if (action === "close") {
      if (this.codes === null) {
        const answer = await api<ResultCodeInfo[]>("GET", "/api/v1/result-codes");
        const rows = answer.ok ? (answer.data as ResultCodeInfo[]) : [];
        this.codes = rows.filter((c) => c.active).map((c) => ({ id: c.id, name: this.lang === "ru" && c.name_ru ? c.name_ru : c.name }));
      }
      options = this.codes;
    } else if (action === "transfer") {
      if (this.queues === null) {
        const answer = await api<Named[]>("GET", "/api/v1/queues");
        this.queues = answer.ok ? (answer.data as Named[]).map((q) => ({ id: q.id, name: q.name })) : [];
      }
      options = this.queues;
    }
    const keep = param.value;
    clear(param);
    for (const o of options) param.append(el("option", { value: o.id }, o.name));
    if (options.some((o) => String(o.id) === keep)) param.value = keep;
  }

  private async bulk(action: string, value: number): Promise<void> {
    const t = this.t;
    const report = this.box.querySelector('[data-testid="bulk-report"]') as HTMLElement;
    clear(report);
    const body: Record<string, unknown> = { conversation_ids: [...this.selected], action };
    if (action === "label") body.add = [value];
    if (action === "close") body.result_code_id = value;
    if (action === "transfer") body.to_queue_id = value;
    const answer = await api<BulkAnswer>("POST", "/api/v1/conversations/bulk", body);
    if (!answer.ok) {
      report.append(el("p", { class: "form-error", "data-testid": "bulk-error" }, (answer.data as { detail?: string }).detail ?? "?"));
      return;
    }
    const data = answer.data as BulkAnswer;
    report.append(el("p", { "data-testid": "bulk-done" }, t("sv.org_done", { n: data.done.length })));
    for (const r of data.refused) report.append(el("p", { class: "form-error", "data-testid": "bulk-refused", "data-conversation-id": r.id }, `#${r.id}: ${r.error}`));
    this.selected.clear();
    await this.openCurrent();
  }
}
