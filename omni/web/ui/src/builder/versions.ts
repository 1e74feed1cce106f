// Published revisions (rollback, readable diff) and per-node statistics.
import { clear, el } from "../common";
import { api } from "./api";
import type { T } from "./fields";
import type { BuilderBoot, NodeStats, Revision } from "./types";

export interface VersionsContext {
  t: T;
  boot: BuilderBoot;
  scenarioId: number;
  readonly: boolean;
  toast(text: string, error?: boolean): void;
  /** The active revision changed (rollback): reload the header. */
  reloaded(): Promise<void>;
  onStats(stats: Record<string, NodeStats> | null): void;
}

interface FieldChange {
  from: unknown;
  to: unknown;
}

interface Diff {
  added: string[];
  removed: string[];
  changed: { node: string; fields: Record<string, FieldChange> }[];
  start: FieldChange | null;
  variables: { added: string[]; removed: string[]; changed: string[] };
}

function show(value: unknown): string {
  if (value === null || value === undefined) return "—";
  return typeof value === "string" ? value : JSON.stringify(value, null, 1);
}

export function renderDiff(t: T, diff: Diff): HTMLElement {
  const box = el("div", { class: "bld-diff", "data-testid": "diff" });
  const list = (title: string, items: string[], cls: string): void => {
    if (items.length) box.append(el("h4", {}, title), el("ul", { class: cls }, ...items.map((i) => el("li", {}, i))));
  };
  if (diff.start) box.append(el("p", {}, t("bld.diff.start", { from: show(diff.start.from), to: show(diff.start.to) })));
  list(t("bld.diff.added"), diff.added, "added");
  list(t("bld.diff.removed"), diff.removed, "removed");
  for (const change of diff.changed) {
    const table = el("table", { class: "grid" }, el("tr", {}, el("th", {}, t("bld.diff.field")), el("th", {}, t("bld.diff.before")), el("th", {}, t("bld.diff.after"))));
    for (const [field, fc] of Object.entries(change.fields)) {
      table.append(el("tr", {}, el("td", {}, field), el("td", {}, el("pre", { class: "removed" }, show(fc.from))), el("td", {}, el("pre", { class: "added" }, show(fc.to)))));
    }
    box.append(el("h4", { "data-testid": "diff-node" }, t("bld.diff.changed", { node: change.node })), table);
  }
  list(t("bld.diff.vars_added"), diff.variables.added, "added");
  list(t("bld.diff.vars_removed"), diff.variables.removed, "removed");
  list(t("bld.diff.vars_changed"), diff.variables.changed, "");
  if (box.childElementCount === 0) box.append(el("p", { class: "muted" }, t("bld.diff.none")));
  return box;
}

export class Versions {
  readonly root = el("div", { class: "bld-versions", "data-testid": "versions" });
  private readonly list = el("div", {});
  private readonly diffBox = el("div", {});
  private readonly statsBox = el("div", { "data-testid": "stats" });
  revisions: Revision[] = [];

  constructor(private readonly ctx: VersionsContext) {
    this.root.append(this.list, this.diffBox);
  }

  async load(): Promise<void> {
    const reply = await api<Revision[]>("GET", `/api/v1/scenarios/${this.ctx.scenarioId}/revisions`);
    this.revisions = reply.ok ? reply.data : [];
    this.render();
  }

  private render(): void {
    const t = this.ctx.t;
    clear(this.list);
    if (!this.revisions.length) {
      this.list.append(el("p", { class: "muted" }, t("bld.no_revisions")));
      return;
    }
    const a = el("select", { "data-testid": "diff-a" });
    const b = el("select", { "data-testid": "diff-b" });
    for (const r of this.revisions) {
      a.append(el("option", { value: r.id }, `#${r.number}`));
      b.append(el("option", { value: r.id }, `#${r.number}`));
    }
    if (this.revisions.length > 1) a.value = String(this.revisions[1].id);
    const table = el("table", { class: "grid" });
    for (const [i, r] of this.revisions.entries()) {
      const previous = this.revisions[i + 1];
      table.append(
        el(
          "tr",
          { "data-testid": "revision", "data-number": r.number, class: r.active ? "active" : "" },
          el("td", {}, `#${r.number}`, r.active ? el("span", { class: "badge ok", "data-testid": "revision-active" }, t("bld.active")) : null),
          el("td", {}, new Date(r.published_at).toLocaleString(), r.note ? el("div", { class: "muted" }, r.note) : null),
          el(
            "td",
            { class: "bld-actions" },
            previous ? el("button", { type: "button", "data-testid": "revision-diff", onclick: () => void this.diff(previous.id, r.id) }, t("bld.diff_previous")) : null,
            r.active || this.ctx.readonly ? null : el("button", { type: "button", "data-testid": "revision-rollback", onclick: () => void this.rollback(r) }, t("bld.rollback")),
          ),
        ),
      );
    }
    this.list.append(
      table,
      el("div", { class: "bld-inline" }, t("bld.compare"), a, "→", b, el("button", { type: "button", "data-testid": "diff-run", onclick: () => void this.diff(Number(a.value), Number(b.value)) }, t("bld.show_diff"))),
    );
  }

  private async rollback(r: Revision): Promise<void> {
    const reply = await api("POST", `/api/v1/scenarios/${this.ctx.scenarioId}/rollback`, { revision_id: r.id });
    if (!reply.ok) {
      this.ctx.toast(this.ctx.t("bld.failed", { detail: reply.detail }), true);
      return;
    }
    this.ctx.toast(this.ctx.t("bld.rolled_back", { n: r.number }));
    await this.load();
    await this.ctx.reloaded();
  }

  private async diff(a: number, b: number): Promise<void> {
    const reply = await api<Diff>("GET", `/api/v1/scenarios/${this.ctx.scenarioId}/diff?a=${a}&b=${b}`);
    clear(this.diffBox);
    if (!reply.ok) {
      this.diffBox.append(el("p", { class: "form-error" }, reply.detail));
      return;
    }
    const name = (id: number): string => `#${this.revisions.find((r) => r.id === id)?.number ?? id}`;
    this.diffBox.append(el("h4", {}, this.ctx.t("bld.diff_title", { a: name(a), b: name(b) })), renderDiff(this.ctx.t, reply.data));
  }

  /** The statistics panel: revision and channel filters; the numbers go on the canvas. */
  statsPanel(): HTMLElement {
    const t = this.ctx.t;
    const rev = el("select", { "data-testid": "stats-revision" });
    for (const r of this.revisions) rev.append(el("option", { value: r.id }, `#${r.number}${r.active ? ` (${t("bld.active")})` : ""}`));
    const active = this.revisions.find((r) => r.active);
    if (active) rev.value = String(active.id);
    const channel = el("select", { "data-testid": "stats-channel" }, el("option", { value: "" }, t("bld.all_channels")));
    for (const c of this.ctx.boot.channels) channel.append(el("option", { value: c }, c));
    const show = async (): Promise<void> => {
      const params = new URLSearchParams();
      if (rev.value) params.set("revision_id", rev.value);
      if (channel.value) params.set("channel", channel.value);
      const reply = await api<{ nodes: Record<string, NodeStats> }>("GET", `/api/v1/scenarios/${this.ctx.scenarioId}/stats?${params}`);
      clear(this.statsBox);
      if (!reply.ok) {
        this.statsBox.append(el("p", { class: "form-error" }, reply.detail));
        return;
      }
      const nodes = reply.data.nodes;
      this.ctx.onStats(nodes);
      const rows = Object.entries(nodes);
      if (!rows.length) {
        this.statsBox.append(el("p", { class: "muted" }, t("bld.stats.empty")));
        return;
      }
      const table = el(
        "table",
        { class: "grid" },
        el("tr", {}, ...["node", "entered", "left", "waiting", "dropped", "invalid", "ports"].map((k) => el("th", {}, t(`bld.stats.${k}`)))),
      );
      for (const [node, s] of rows) {
        table.append(
          el(
            "tr",
            { "data-testid": "stats-row", "data-node": node },
            el("td", {}, node),
            el("td", {}, String(s.entered)),
            el("td", {}, String(s.left)),
            el("td", {}, String(s.waiting)),
            el("td", {}, String(s.dropped)),
            el("td", {}, `${Math.round(s.invalid_rate * 100)}%`),
            el("td", {}, Object.entries(s.ports).map(([p, n]) => `${p}: ${n}`).join(", ")),
          ),
        );
      }
      this.statsBox.append(table);
    };
    return el(
      "div",
      { class: "bld-stats" },
      this.revisions.length
        ? el(
            "div",
            { class: "bld-inline" },
            el("label", {}, t("bld.stats.revision"), " ", rev),
            el("label", {}, t("bld.stats.channel"), " ", channel),
            el("button", { type: "button", class: "primary", "data-testid": "stats-show", onclick: () => void show() }, t("bld.stats.show")),
            el("button", { type: "button", onclick: () => (this.ctx.onStats(null), clear(this.statsBox)) }, t("bld.stats.hide")),
          )
        : el("p", { class: "muted" }, t("bld.no_revisions")),
      this.statsBox,
    );
  }
}
