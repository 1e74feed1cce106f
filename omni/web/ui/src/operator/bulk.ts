// Selection mode of "my conversations" (issue 18, docs/organise.md): checkboxes, select all,
// and assign / label / close with a code / transfer on the selection through
// POST /api/v1/conversations/bulk (omni.domain.bulk: each item checked as a single click would
// be). The answer lists what was done and, per refused conversation, why.
import { Socket } from "socket.io-client";
import { call, clear, el } from "../common";
import { LabelInfo, labelCatalogue } from "./organise";
import { Conversation, Named, View } from "./types";
import { T } from "./ui";

interface BulkAnswer { done: number[]; refused: { id: number; code: string; error: string }[]; detail?: string }

const ACTIONS = ["assign", "label", "close", "transfer"] as const;

export class BulkSelection {
  active = false;
  readonly selected = new Set<number>();
  /** Built once and re-attached on every redraw of the list (the picks survive live updates). */
  readonly bar = el("div", { class: "bulk-bar", "data-testid": "bulk-bar" });
  readonly report = el("div", { class: "bulk-report", "data-testid": "bulk-report", role: "status" });
  private readonly all = el("input", { type: "checkbox", "data-testid": "select-all" });
  private readonly count = el("span", { class: "badge", "data-testid": "selected-count" }, "0");
  private readonly action = el("select", { "data-testid": "bulk-action", "aria-label": this.t("op.bulk_action") });
  private readonly param = el("select", { "data-testid": "bulk-param", "aria-label": this.t("op.bulk_param") });
  private readonly apply = el("button", { type: "button", class: "primary", "data-testid": "bulk-apply" }, this.t("op.bulk_apply"));
  private mine: Conversation[] = [];
  /** The targets of the conversation the parameters were read from (its queue's codes, the
   * colleagues and queues it may go to). */
  private targets: { from: number; view: View } | null = null;
  private labels: LabelInfo[] | null = null;

  constructor(
    private readonly socket: Socket,
    private readonly t: T,
    private readonly lang: string,
    private readonly redraw: () => void,
    private readonly changed: () => void,
  ) {
    for (const a of ACTIONS) this.action.append(el("option", { value: a }, t(`op.bulk_${a}`)));
    this.action.value = "label";
    this.action.addEventListener("change", () => void this.fillParams());
    this.all.addEventListener("change", () => {
      this.selected.clear();
      if (this.all.checked) for (const c of this.mine) this.selected.add(c.id);
      this.redraw();
    });
    this.apply.addEventListener("click", () => void this.run());
    this.bar.append(
      el("label", {}, this.all, ` ${t("op.bulk_all")} `),
      this.count,
      this.action,
      this.param,
      this.apply,
    );
  }

  /** The toggle in the list's heading. */
  toggle(): HTMLElement {
    return el(
      "button",
      {
        type: "button",
        class: "link",
        "data-testid": "select-mode",
        "aria-pressed": this.active ? "true" : "false",
        onclick: (ev: Event) => {
          ev.stopPropagation();
          this.active = !this.active;
          this.selected.clear();
          clear(this.report);
          if (this.active) void this.fillParams();
          this.redraw();
        },
      },
      this.active ? this.t("op.bulk_done_selecting") : this.t("op.bulk_select"),
    );
  }

  /** The list changed: forget what left it, keep the counters right. */
  sync(mine: Conversation[]): void {
    this.mine = mine;
    for (const id of [...this.selected]) if (!mine.some((c) => c.id === id)) this.selected.delete(id);
    this.count.textContent = String(this.selected.size);
    this.all.checked = mine.length > 0 && this.selected.size === mine.length;
    this.apply.disabled = this.selected.size === 0;
    const first = [...this.selected][0] ?? mine[0]?.id;
    if (this.active && first !== undefined && this.targets?.from !== first) void this.fillParams();
  }

  checkbox(c: Conversation): HTMLElement {
    const box = el("input", { type: "checkbox", "data-testid": "select-conversation", "aria-label": `#${c.id}` });
    box.checked = this.selected.has(c.id);
    box.addEventListener("click", (ev) => ev.stopPropagation());
    box.addEventListener("change", () => {
      if (box.checked) this.selected.add(c.id);
      else this.selected.delete(c.id);
      this.sync(this.mine);
    });
    return box;
  }

  private async fillParams(): Promise<void> {
    const from = [...this.selected][0] ?? this.mine[0]?.id;
    if (from !== undefined && this.targets?.from !== from) {
      const ack = await call(this.socket, "open", { conversation_id: from });
      if (ack.ok) this.targets = { from, view: ack as unknown as View };
    }
    if (this.labels === null) this.labels = await labelCatalogue({ socket: this.socket });
    const view = this.targets?.view;
    const options: Named[] =
      this.action.value === "label"
        ? this.labels ?? []
        : this.action.value === "close"
          ? (view?.result_codes ?? []).map((c) => ({ id: c.id, name: this.lang === "ru" && c.name_ru ? c.name_ru : c.name }))
          : this.action.value === "transfer"
            ? view?.transfer.queues ?? []
            : view?.transfer.operators ?? [];
    const keep = this.param.value;
    clear(this.param);
    for (const o of options) this.param.append(el("option", { value: o.id }, o.name));
    if (options.some((o) => String(o.id) === keep)) this.param.value = keep;
  }

  private async run(): Promise<void> {
    const t = this.t;
    clear(this.report);
    const action = this.action.value;
    const value = Number(this.param.value);
    const body: Record<string, unknown> = { conversation_ids: [...this.selected], action };
    if (action === "label") body.add = value ? [value] : [];
    if (action === "close") body.result_code_id = value || null;
    if (action === "transfer") body.to_queue_id = value || null;
    if (action === "assign") body.to_user_id = value || null;
    const names = new Map(this.mine.map((c) => [c.id, c.contact_name || `#${c.id}`]));
    this.apply.disabled = true;
    const resp = await fetch("/api/v1/conversations/bulk", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const data = (await resp.json().catch(() => ({}))) as BulkAnswer;
    this.apply.disabled = false;
    if (!resp.ok) {
      this.report.append(el("p", { class: "form-error", "data-testid": "bulk-error" }, data.detail || String(resp.status)));
      return;
    }
    this.report.append(el("p", { "data-testid": "bulk-done" }, t("op.bulk_report_done", { n: data.done.length })));
    for (const r of data.refused) {
      this.report.append(
        el("p", { class: "form-error", "data-testid": "bulk-refused", "data-conversation-id": r.id }, `${names.get(r.id) ?? `#${r.id}`}: ${r.error}`),
      );
    }
    // What was refused stays selected (to try something else); what was done is let go.
    for (const id of data.done) this.selected.delete(id);
    this.changed();
    this.redraw();
  }
}
