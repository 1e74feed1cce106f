// Outbound campaigns in the single window: the preview cards the engine reserved for this
// operator (countdown, Call / Skip / Reschedule), the campaign card of an answered campaign
// call, and "My callbacks" (campaign contacts this operator promised to call back).
// Customer data (names, numbers, card fields) is always set as text; only the campaign's
// script is staff rich text, sanitized by the server like the queue's script.
import { Socket } from "socket.io-client";
import { Ack, call, clear, el } from "../common";
import { T, clockAt, failed, time, toast, until } from "./ui";

export interface CampaignCard {
  attempt_id: number;
  campaign_id: number;
  campaign_name: string;
  target_id: number;
  name: string;
  phone: string;
  timezone: string;
  utc_offset: number;
  fields: Record<string, unknown>;
  attempt: number;
  script: string;
  started_at: string | null;
  expires_at: string;
  auto_dial: boolean;
}

export interface CampaignCallback {
  target_id: number;
  campaign_id: number;
  campaign_name: string;
  name: string;
  phone: string;
  due_at: string | null;
}

/** The customer part of a campaign card: name, number, local time, card fields, script. */
export function campaignCard(c: CampaignCard, t: T, withScript = true): HTMLElement {
  const fields = Object.entries(c.fields).map(([key, value]) =>
    el(
      "div",
      { class: "field", "data-testid": `campaign-field-${key}` },
      el("span", { class: "muted" }, `${key}: `),
      el("span", {}, value === null || value === undefined ? "" : String(value)),
    ),
  );
  const script = el("div", { class: "script-body", "data-testid": "campaign-script" });
  // Staff rich text reduced to a safe tag list by the server (omni.domain.richtext).
  script.innerHTML = c.script;
  return el(
    "div",
    { class: "campaign-card stack", "data-testid": "campaign-card", "data-attempt": c.attempt_id },
    el("div", { class: "muted" }, `${t("op.campaign")}: `, el("strong", { "data-testid": "campaign-name" }, c.campaign_name)),
    el("div", { class: "campaign-target", "data-testid": "campaign-target" }, c.name || c.phone),
    el("div", {}, `${t("op.number")}: `, el("span", { "data-testid": "campaign-phone" }, c.phone)),
    el(
      "div",
      { class: "local-time" },
      `${t("op.local_time")}: `,
      el("strong", { "data-testid": "campaign-local-time", "data-utc-offset": c.utc_offset }, clockAt(c.utc_offset)),
      el("small", { class: "muted" }, ` ${c.timezone}`),
    ),
    ...fields,
    withScript && c.script ? el("div", { class: "script" }, el("h4", {}, t("op.script")), script) : null,
  );
}

/** The left column's campaign section: preview cards and my callbacks, refreshed from the
 * server (``campaign_panel``) on connect and whenever a campaign event for me arrives. */
export class CampaignPanel {
  readonly box = el("div", { "data-testid": "campaign-panel" });
  private previews: CampaignCard[] = [];
  private callbacks: CampaignCallback[] = [];
  private busy = new Set<number>();

  constructor(
    private readonly socket: Socket,
    private readonly t: T,
    private readonly lang: string,
  ) {}

  async refresh(): Promise<void> {
    const ack: Ack = await call(this.socket, "campaign_panel");
    if (!ack.ok) return;
    this.previews = (ack.previews as CampaignCard[]) ?? [];
    this.callbacks = (ack.callbacks as CampaignCallback[]) ?? [];
    this.render();
  }

  private async act(attemptId: number, run: () => Promise<Ack>, done: string): Promise<void> {
    if (this.busy.has(attemptId)) return;
    this.busy.add(attemptId);
    this.render();
    const ack = await run();
    this.busy.delete(attemptId);
    if (!ack.ok) failed(this.t, ack);
    else toast(this.t(done), "info");
    await this.refresh();
  }

  private previewNode(c: CampaignCard): HTMLElement {
    const t = this.t;
    const id = c.attempt_id;
    const disabled = this.busy.has(id);
    const at = el("input", { type: "datetime-local", "data-testid": "preview-at", "aria-label": t("op.reschedule_at") });
    const error = el("div", { class: "form-error", "data-testid": "preview-error" });
    return el(
      "section",
      { class: "panel preview", "data-testid": "preview" },
      el(
        "h3",
        {},
        t("op.preview"),
        " ",
        until(c.expires_at, { "data-testid": "preview-countdown" }),
        el("small", { class: "muted" }, ` ${c.auto_dial ? t("op.preview_auto_dial") : t("op.preview_put_back")}`),
      ),
      campaignCard(c, t),
      el(
        "div",
        { class: "row" },
        el(
          "button",
          {
            class: "primary",
            "data-testid": "preview-call",
            disabled,
            onclick: () => void this.act(id, () => call(this.socket, "preview_call", { attempt_id: id }), "op.calling"),
          },
          t("op.dial_now"),
        ),
        el(
          "button",
          {
            "data-testid": "preview-skip",
            disabled,
            onclick: () => void this.act(id, () => call(this.socket, "preview_skip", { attempt_id: id }), "op.skipped"),
          },
          t("op.skip"),
        ),
      ),
      el(
        "div",
        { class: "row" },
        at,
        el(
          "button",
          {
            "data-testid": "preview-reschedule",
            disabled,
            onclick: () => {
              error.textContent = "";
              if (!at.value) {
                error.textContent = t("op.pick_time");
                return;
              }
              const when = new Date(at.value).toISOString();
              void this.act(id, () => call(this.socket, "preview_reschedule", { attempt_id: id, at: when }), "op.rescheduled");
            },
          },
          t("op.reschedule"),
        ),
      ),
      error,
    );
  }

  render(): void {
    const t = this.t;
    clear(this.box);
    for (const c of this.previews) this.box.append(this.previewNode(c));
    const items = this.callbacks.map((cb) =>
      el(
        "div",
        { class: "cb-item", "data-testid": "campaign-callback", "data-target": cb.target_id },
        el(
          "span",
          { class: "grow" },
          el("span", {}, cb.name || cb.phone),
          el("small", { class: "muted" }, ` · ${cb.phone} · ${cb.campaign_name}`),
        ),
        el("small", { "data-testid": "campaign-callback-due" }, time(cb.due_at, this.lang)),
      ),
    );
    this.box.append(
      el(
        "section",
        { class: "panel", "data-testid": "my-campaign-callbacks" },
        el("h3", {}, t("op.my_callbacks"), ` (${this.callbacks.length})`),
        ...(items.length ? items : [el("p", { class: "muted" }, t("op.none"))]),
      ),
    );
  }
}
