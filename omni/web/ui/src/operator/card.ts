// The right column's customer card, bot data and script.
import { Ack, call, clear, el } from "../common";
import { icon } from "../icons";
import type { CardUpdateIn } from "../generated/contracts";
import { Card, CardField } from "./types";
import { clockAt, time, toast } from "./ui";
import { ComposerPart } from "./composer";

/** ``GET /api/v1/conversations/{id}/crm-card`` (omni/api/crm.py::CrmCardOut). */
interface CrmCardAnswer {
  status: "ok" | "off" | "unavailable";
  card: { title: string; url: string; fields: { label: string; value: string }[] } | null;
  cached: boolean;
}

export abstract class CardPart extends ComposerPart {
  /** The CRM's card (screen-pop) under the customer card; kept across card re-renders. */
  protected readonly crmBox = el("div", { class: "crm-card hidden", "data-testid": "crm-card" });

  /** Asks Omni for the CRM's card of this conversation; a CRM that fails is a quiet note, and
   * nothing here ever holds up the conversation (it renders when, and if, the answer comes). */
  protected async loadCrmCard(id: number): Promise<void> {
    const t = this.ctx.t;
    let answer: CrmCardAnswer | null = null;
    try {
      const resp = await fetch(`/api/v1/conversations/${id}/crm-card`, { credentials: "same-origin" });
      if (resp.ok) answer = (await resp.json()) as CrmCardAnswer;
    } catch {
      answer = null; // offline for a moment: the note below says the card is not there
    }
    if (this.id !== id) return;
    clear(this.crmBox);
    const status = answer ? answer.status : "unavailable";
    this.crmBox.dataset.status = status;
    this.crmBox.classList.toggle("hidden", status === "off");
    if (status === "off") return;
    const card = answer?.card;
    const head = el("h4", {}, t("op.crm"));
    if (status !== "ok" || !card) {
      this.crmBox.append(head, el("small", { class: "muted", "data-testid": "crm-note" }, t("op.crm_unavailable")));
      return;
    }
    if (!card.title && !card.fields.length) {
      this.crmBox.append(head, el("small", { class: "muted", "data-testid": "crm-note" }, t("op.crm_empty")));
      return;
    }
    const parts: HTMLElement[] = [head];
    if (card.title) parts.push(el("strong", { "data-testid": "crm-title" }, card.title));
    parts.push(
      el(
        "dl",
        { class: "bot-vars" },
        ...card.fields.flatMap((f) => [el("dt", {}, f.label), el("dd", { "data-testid": "crm-field" }, f.value)]),
      ),
    );
    if (card.url) {
      parts.push(el("a", { href: card.url, target: "_blank", rel: "noopener noreferrer", "data-testid": "crm-link" }, t("op.crm_open")));
    }
    this.crmBox.append(...parts);
  }

  // --- customer card ------------------------------------------------------------------

  protected fieldInput(key: string, kind: string, value: unknown, f?: CardField): HTMLElement {
    const disabled = f ? !f.editable : false;
    const attrs = { "data-testid": `card-field-${key}`, name: key, disabled };
    if (kind === "select") {
      const select = el("select", attrs, el("option", { value: "" }, "—"));
      for (const o of f?.options || []) {
        const opt = el("option", { value: o }, o);
        opt.selected = value === o;
        select.append(opt);
      }
      return select;
    }
    if (kind === "checkbox") {
      const box = el("input", { ...attrs, type: "checkbox" });
      box.checked = value === true;
      return box;
    }
    const type = kind === "date" ? "date" : kind === "phone" ? "tel" : "text";
    const input = el("input", { ...attrs, type, inputmode: kind === "number" ? "decimal" : "text" });
    input.value = value === null || value === undefined ? "" : String(value);
    return input;
  }

  protected renderCard(card: Card): void {
    const t = this.ctx.t;
    const c = card.contact;
    clear(this.card);
    const inputs: { key: string; node: HTMLInputElement | HTMLSelectElement; original: unknown }[] = [];
    const row = (key: string, label: string, kind: string, value: unknown, f?: CardField): HTMLElement => {
      const node = this.fieldInput(key, kind, value, f) as HTMLInputElement | HTMLSelectElement;
      // A masked value is not the customer's: never sent back as an edit.
      if (c.masked && (key === "phone" || key === "email")) node.disabled = true;
      inputs.push({ key, node, original: value ?? null });
      return el(
        "label",
        { class: "field", "data-field": key },
        el("span", {}, label, f?.required ? " *" : ""),
        node,
        el("small", { class: "field-error" }),
      );
    };
    const error = el("div", { class: "form-error", "data-testid": "card-error" });
    const local =
      c.utc_offset_seconds !== null && c.utc_offset_seconds !== undefined
        ? el(
            "div",
            { class: "local-time" },
            `${t("op.local_time")}: `,
            el("strong", { "data-testid": "local-time", "data-utc-offset": c.utc_offset_seconds }, clockAt(c.utc_offset_seconds)),
            el("small", { class: "muted" }, ` ${c.timezone || ""}${c.region ? ` · ${c.region}` : ""}`),
          )
        : el("div", { class: "local-time muted" }, `${t("op.local_time")}: ${t("op.unknown")}`);
    this.card.append(
      el("h3", {}, t("op.card"), c.blacklisted ? el("span", { class: "badge bad", "data-testid": "blacklisted" }, t("op.blacklisted")) : null),
      local,
      el(
        "form",
        {
          class: "stack",
          onsubmit: async (ev: Event) => {
            ev.preventDefault();
            const values: CardUpdateIn["values"] = {};
            for (const { key, node, original } of inputs) {
              if (node.disabled) continue;
              const value = node instanceof HTMLInputElement && node.type === "checkbox" ? node.checked : node.value;
              const was = original === null ? (typeof value === "boolean" ? false : "") : original;
              if (String(value) !== String(was)) values[key] = value;
            }
            this.card.querySelectorAll(".invalid").forEach((n) => n.classList.remove("invalid"));
            this.card.querySelectorAll(".field-error").forEach((n) => (n.textContent = ""));
            error.textContent = "";
            if (!Object.keys(values).length) return;
            const ack: Ack = await call(this.ctx.socket, "card_update", { conversation_id: this.id as number, values });
            if (!ack.ok) {
              const bad = ack.field ? inputs.find((i) => i.key === ack.field) : undefined;
              if (bad) {
                bad.node.classList.add("invalid");
                const hint = bad.node.parentElement?.querySelector(".field-error");
                if (hint) hint.textContent = ack.detail || "";
              }
              error.textContent = ack.detail || ack.error || "";
              return;
            }
            if (this.view) {
              this.view.card = ack.card as Card;
              this.renderCard(this.view.card);
            }
            toast(t("op.saved"), "info");
          },
        },
        row("name", t("op.name"), "text", c.name),
        row("email", t("op.email"), "email", c.email),
        row("phone", t("op.phone"), "phone", c.phone),
        c.masked && c.can_reveal
          ? el(
              "button",
              { type: "button", class: "link", "data-testid": "card-reveal", onclick: () => void this.reveal(c.id) },
              t("op.reveal"),
            )
          : null,
        c.phone && !c.masked && this.ctx.dialQueues.length
          ? el(
              "button",
              {
                type: "button",
                class: "link call-link",
                "data-testid": "card-call",
                title: t("op.click_to_call"),
                onclick: () => {
                  const queues = this.ctx.dialQueues;
                  const own = queues.find((q) => q.id === this.view?.conversation.queue_id);
                  this.ctx.dial(c.phone || "", (own ?? queues[0]).id);
                },
              },
              icon("voice"), ` ${t("op.click_to_call")}`,
            )
          : null,
        ...card.fields.map((f) => row(f.key, this.ctx.lang === "ru" && f.label_ru ? f.label_ru : f.label, f.kind, f.value, f)),
        error,
        el("button", { type: "submit", "data-testid": "card-save" }, t("op.save")),
      ),
      this.crmBox,
    );
  }

  /** Show the masked phone and e-mail in full: a grant of its own, written to the audit log. */
  protected async reveal(contactId: number): Promise<void> {
    const resp = await fetch(`/api/v1/contacts/${contactId}/reveal`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-Omni-CSRF": "1" },
    });
    const data = (await resp.json().catch(() => ({}))) as { phone?: string | null; email?: string | null; detail?: string };
    if (!resp.ok) {
      toast(data.detail || resp.statusText);
      return;
    }
    if (!this.view || this.view.card.contact.id !== contactId) return;
    const contact = { ...this.view.card.contact, phone: data.phone ?? null, email: data.email ?? null, masked: false, can_reveal: false };
    this.view.card = { ...this.view.card, contact };
    this.renderCard(this.view.card);
    toast(this.ctx.t("op.revealed"), "info");
  }

  protected renderScript(): void {
    const v = this.view;
    clear(this.script);
    if (!v || !v.script) {
      this.script.classList.add("hidden");
      return;
    }
    this.script.classList.remove("hidden");
    const body = el("div", { class: "script-body" });
    // Staff rich text, reduced to a safe tag list by the server (omni.domain.richtext) when
    // saved and again when served; the page's CSP forbids inline script besides.
    body.innerHTML = v.script;
    this.script.append(el("h3", {}, this.ctx.t("op.script")), body);
  }

  /** Plumbing, not customer data (bots/runner.py ``is_technical``): ``_``-prefixed names and
   * the server's list (``technical_variables`` in the boot data). */
  protected isTechnical(name: string): boolean {
    return name.startsWith("_") || this.ctx.technicalVariables.includes(name);
  }

  /** What the bot collected before the hand-off (read-only; hidden when there is nothing). */
  protected renderBotData(): void {
    clear(this.botData);
    const vars = Object.entries(this.view?.conversation.variables ?? {}).filter(([k]) => !this.isTechnical(k));
    this.botData.classList.toggle("hidden", vars.length === 0);
    if (!vars.length) return;
    const t = this.ctx.t;
    this.botData.append(
      el("h3", {}, t("op.bot_data")),
      el(
        "dl",
        { class: "bot-vars" },
        ...vars.flatMap(([k, v]) => [
          el("dt", {}, k),
          el("dd", { "data-testid": `bot-var-${k}` }, typeof v === "string" ? v : JSON.stringify(v)),
        ]),
      ),
    );
  }
}
