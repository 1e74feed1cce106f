// The supervisor's live campaigns: running and paused campaigns of their queues with progress,
// remaining, scheduled retries, in progress, outcomes so far and contact rate, and for predictive
// campaigns the pacing figures: answer and abandon rates over the rolling window and today
// (omni.domain.outbound.stats), refreshed on campaign events; Start / Pause per campaign.
import { Socket } from "socket.io-client";
import { Ack, call, clear, el } from "../common";

type T = (key: string, values?: Record<string, string | number>) => string;

export interface LiveCampaign {
  id: number;
  name: string;
  state: string;
  dial_mode: string;
  targets: number;
  finished: number;
  progress: number | null;
  remaining: number;
  scheduled_retries: number;
  in_progress: number;
  attempts: number;
  answered: number;
  contact_rate: number | null;
  outcomes: Record<string, number>;
  pacing: Pacing | null;
}

export interface Pacing {
  answer_rate: number | null;
  abandon_rate: number | null;
  abandon_rate_today: number | null;
  answered_today: number;
  window_attempts: number;
  target_abandon_pct: number;
  over_target: boolean;
}

/** One contact of an agentless campaign with its stored result (``campaign_contacts``). */
export interface ContactResult {
  target_id: number;
  name: string;
  phone: string;
  state: string;
  attempts: number;
  confirmed: boolean;
  completed: boolean;
  handed_off: boolean;
  digits: string;
  node: string;
  recording_url: string | null;
  updated_at: string | null;
}

function pct(value: number | null): string {
  return value === null ? "—" : `${value.toFixed(1)} %`;
}

export class CampaignsView {
  readonly box = el("div", { "data-testid": "campaigns" });
  private rows: LiveCampaign[] = [];
  /** The agentless campaign whose per-contact results are open, and those results. */
  private openId: number | null = null;
  private contacts: ContactResult[] = [];
  private error = el("p", { class: "bad", "data-testid": "campaign-error", role: "status" });

  constructor(
    private readonly socket: Socket,
    private readonly t: T,
  ) {}

  async refresh(): Promise<void> {
    const ack: Ack = await call(this.socket, "campaigns");
    if (!ack.ok) return;
    this.rows = (ack.campaigns as LiveCampaign[]) ?? [];
    if (this.openId !== null) await this.loadContacts(this.openId);
    this.render();
  }

  private async loadContacts(campaignId: number): Promise<void> {
    const ack: Ack = await call(this.socket, "campaign_contacts", { campaign_id: campaignId });
    this.contacts = ack.ok ? ((ack.contacts as ContactResult[]) ?? []) : [];
    if (!ack.ok) this.error.textContent = this.t("sv.failed", { detail: ack.detail ?? ack.error ?? "" });
  }

  private async toggleContacts(c: LiveCampaign): Promise<void> {
    if (this.openId === c.id) {
      this.openId = null;
      this.contacts = [];
    } else {
      this.openId = c.id;
      await this.loadContacts(c.id);
    }
    this.render();
  }

  private contactsTable(): HTMLElement {
    const t = this.t;
    if (!this.contacts.length) return el("p", { class: "muted", "data-testid": "campaign-contacts" }, t("sv.contacts.none"));
    const head = el(
      "tr",
      {},
      ...["name", "phone", "state", "confirmed", "digits", "node", "attempts", "recording"].map((k) => el("th", {}, t(`sv.contacts.${k}`))),
    );
    const body = this.contacts.map((r) =>
      el(
        "tr",
        { "data-testid": "contact-row", "data-phone": r.phone },
        el("td", {}, r.name || "—"),
        el("td", {}, r.phone),
        el("td", { "data-testid": "contact-state" }, t(`sv.target_state.${r.state}`)),
        el("td", { "data-testid": "contact-confirmed" }, r.confirmed ? t("sv.contacts.yes") : t("sv.contacts.no")),
        el("td", { "data-testid": "contact-digits" }, r.digits || "—"),
        el("td", { "data-testid": "contact-node" }, r.node || "—"),
        el("td", {}, String(r.attempts)),
        el(
          "td",
          {},
          r.recording_url
            ? el(
                "span",
                {},
                el("audio", { controls: true, preload: "none", src: r.recording_url }),
                el("a", { href: `${r.recording_url}`, "data-testid": "contact-recording", download: "" }, t("sv.contacts.download")),
              )
            : "—",
        ),
      ),
    );
    return el(
      "table",
      { class: "sv-table", "data-testid": "campaign-contacts" },
      el("thead", {}, head),
      el("tbody", {}, ...body),
    );
  }

  private async setState(c: LiveCampaign, state: "running" | "paused"): Promise<void> {
    this.error.textContent = "";
    const ack = await call(this.socket, "campaign_state", { campaign_id: c.id, state });
    if (!ack.ok) this.error.textContent = this.t("sv.failed", { detail: ack.detail ?? ack.error ?? "" });
    await this.refresh();
  }

  render(): void {
    const t = this.t;
    clear(this.box);
    if (!this.rows.length) {
      this.box.append(el("p", { class: "muted" }, t("sv.campaigns.none")), this.error);
      return;
    }
    const pacing = (p: Pacing | null): HTMLElement => {
      if (p === null) return el("td", { "data-testid": "campaign-pacing" }, "—");
      return el(
        "td",
        { "data-testid": "campaign-pacing", class: p.over_target ? "bad" : "", "data-over-target": String(p.over_target) },
        el("span", { "data-testid": "pacing-answer-rate" }, t("sv.campaigns.pacing_answer", { value: pct(p.answer_rate) })),
        " · ",
        el(
          "span",
          { "data-testid": "pacing-abandon-rate" },
          t("sv.campaigns.pacing_abandon", { value: pct(p.abandon_rate), target: pct(p.target_abandon_pct) }),
        ),
        " · ",
        el("span", { "data-testid": "pacing-abandon-today" }, t("sv.campaigns.pacing_today", { value: pct(p.abandon_rate_today) })),
        p.over_target ? el("small", { class: "bad" }, ` ${t("sv.campaigns.pacing_fallback")}`) : "",
      );
    };
    const head = el(
      "tr",
      {},
      ...["name", "state", "progress", "remaining", "retries", "in_progress", "outcomes", "contact_rate", "pacing", "actions"].map((k) =>
        el("th", {}, t(`sv.campaigns.${k}`)),
      ),
    );
    const body = this.rows.map((c) => {
      const outcomes = Object.entries(c.outcomes)
        .map(([k, n]) => `${t(`sv.outcome.${k}`)}: ${n}`)
        .join(" · ");
      const running = c.state === "running";
      return el(
        "tr",
        { "data-testid": "campaign-row", "data-id": c.id, "data-state": c.state },
        el("td", {}, c.name),
        el("td", { "data-testid": "campaign-state" }, t(`sv.campaign_state.${c.state}`)),
        el("td", { "data-testid": "campaign-progress" }, pct(c.progress), el("small", { class: "muted" }, ` (${c.finished}/${c.targets})`)),
        el("td", { "data-testid": "campaign-remaining" }, String(c.remaining)),
        el("td", { "data-testid": "campaign-retries" }, String(c.scheduled_retries)),
        el("td", { "data-testid": "campaign-in-progress" }, String(c.in_progress)),
        el("td", { "data-testid": "campaign-outcomes" }, outcomes || "—"),
        el("td", { "data-testid": "campaign-contact-rate" }, pct(c.contact_rate)),
        pacing(c.pacing ?? null),
        el(
          "td",
          {},
          el(
            "button",
            {
              type: "button",
              class: running ? "" : "primary",
              "data-testid": running ? "campaign-pause" : "campaign-start",
              onclick: () => void this.setState(c, running ? "paused" : "running"),
            },
            running ? t("sv.campaigns.pause") : t("sv.campaigns.start"),
          ),
          c.dial_mode === "agentless"
            ? el(
                "button",
                { type: "button", "data-testid": "campaign-results", onclick: () => void this.toggleContacts(c) },
                this.openId === c.id ? t("sv.contacts.hide") : t("sv.contacts.show"),
              )
            : "",
        ),
      );
    });
    this.box.append(el("table", { class: "sv-table" }, el("thead", {}, head), el("tbody", {}, ...body)), this.error);
    const open = this.rows.find((c) => c.id === this.openId);
    if (open) this.box.append(el("h3", {}, t("sv.contacts.title", { name: open.name })), this.contactsTable());
  }
}
