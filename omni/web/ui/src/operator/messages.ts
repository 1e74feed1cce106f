// The open conversation's shared state and the message list: how one message reads (author,
// bot buttons and presses, attachments, delivery marks).
import { Socket } from "socket.io-client";
import { call, clear, el } from "../common";
import { icon } from "../icons";
import { Canned, Conversation, DialQueue, Message, View, channelIcon } from "./types";
import { T, failed, time, toast } from "./ui";

export interface PaneContext {
  t: T;
  lang: string;
  me: number;
  socket: Socket;
  /** Something changed server-side that the left column shows: refresh it. */
  changed(): void;
  /** The open conversation is no longer ours to show (e.g. transferred away). */
  closed(): void;
  /** Why Take is not possible now (``null``: no manual pick, ``""``: it is). */
  takeBlock(c: Conversation): string | null;
  /** Queues the operator may call from (click-to-call); empty when voice is off. */
  dialQueues: DialQueue[];
  dial(number: string, queueId: number): void;
  /** Conversation variables never shown on the card (boot data, from bots/runner.py). */
  technicalVariables: string[];
  /** The browser softphone, when this operator's endpoint is the browser (softphone.ts). */
  phone?: PanePhone;
}

/** What the call panel asks of the softphone: answer Omni's ringing offer here, end the call here. */
export interface PanePhone {
  enabled(): boolean;
  ringing(): boolean;
  answer(): void;
  hangup(): void;
}

export const MARKS: Record<string, string> = { pending: "…", stored: "", sent: "✓", delivered: "✓✓", read: "✓✓", failed: "⚠" };
export const TYPING_EVERY_MS = 2500;
export const TYPING_IDLE_MS = 4000;
export const HANDLING = ["active", "on_hold"];

/** Written by the system (a bot scenario's message or hand-off note, a queue notice), not by
 * a person: no author. */
export function isAutomated(msg: Message): boolean {
  return (msg.direction === "out" || msg.direction === "note") && msg.author_user_id === null;
}

export function buttonsOf(msg: Message): { id: string; label: string }[] {
  for (const a of msg.attachments || []) {
    if (a.kind === "buttons" && Array.isArray(a.buttons)) {
      return (a.buttons as { id?: unknown; label?: unknown }[]).map((b) => ({ id: String(b.id ?? ""), label: String(b.label ?? "") }));
    }
  }
  return [];
}

export function clientId(): string {
  return `op-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

/** The open conversation's state and elements, shared by the pane's parts (history, composer,
 * card, actions: one module each, chained by inheritance; conversation.ts ties them together),
 * and how a message reads. */
export abstract class PaneBase {
  view: View | null = null;
  protected takeShown: string | null = null;
  /** The result code the operator picked in this conversation: the actions are redrawn when the
   * conversation's state changes (its own wrap-up included), and the pick must survive that. */
  protected pickedCode: { id: number; value: string } | null = null;
  /** The transfer the operator is filling in (kind, target, note, attended), kept across those
   * redraws too: an event arriving between picking a queue and pressing Transfer sent the
   * conversation to the first queue of the list. */
  protected pickedTransfer: { id: number; kind: string; target: string; note: string; attended: boolean } | null = null;
  /** The close form's callback time, "for me" and the server's refusal, kept across the same
   * redraws: a refusal answered while an event redrew the actions went to the replaced form and
   * was never seen (CI's campaign journey). */
  protected closeForm: { id: number; at: string; forMe: boolean; error: string } | null = null;
  /** What the operator typed or picked in the rest of the actions (the callback's time and note,
   * the bot scenario, the snooze time, the transcript's address…), per conversation and field
   * (test id), for a part of the actions rebuilt when its facts change (actions.ts, keepInputs):
   * each conversation gets back its own, never another's. Forgotten when it closes. */
  protected readonly actionInputs = new Map<number, Record<string, string | boolean>>();
  protected canned: Canned[] = [];
  protected pickerItems: Canned[] = [];
  protected pickerIndex = 0;
  /** The picker was opened by its shortcut over a draft: the pick is added to the draft. */
  protected pickerAppend = false;
  protected typingSentAt = 0;
  protected typingStop = 0;
  protected customerTypingTimer = 0;
  protected callRefresh = 0;

  protected readonly header = el("header", { class: "conv-header", "data-testid": "conversation-header" });
  protected readonly messages = el("div", { class: "messages", "data-testid": "messages", "aria-live": "polite" });
  protected readonly typing = el("div", { class: "typing hidden", "data-testid": "customer-typing" });
  protected readonly picker = el("div", { class: "canned-picker hidden", "data-testid": "canned-picker", role: "listbox" });
  protected readonly composer = el("textarea", { "data-testid": "composer", rows: 3 });
  protected readonly noteToggle = el("input", { type: "checkbox", "data-testid": "note-toggle" });
  protected readonly composerBox: HTMLElement;
  protected readonly history = el("details", { class: "history", "data-testid": "history" });
  protected readonly callBox = el("section", { class: "panel call-panel hidden", "data-testid": "call" });
  protected readonly card = el("section", { class: "panel card-panel", "data-testid": "card" });
  protected readonly botData = el("section", { class: "panel bot-data", "data-testid": "bot-data" });
  protected readonly script = el("section", { class: "panel script-panel", "data-testid": "script" });
  protected readonly actions = el("section", { class: "panel actions-panel", "data-testid": "actions" });
  protected readonly myCanned = el("section", { class: "panel canned-panel", "data-testid": "my-canned" });
  protected readonly empty: HTMLElement;

  constructor(
    protected readonly ctx: PaneContext,
    protected readonly centre: HTMLElement,
    protected readonly right: HTMLElement,
  ) {
    const t = ctx.t;
    this.empty = el("div", { class: "empty muted", "data-testid": "no-conversation" }, t("op.pick_conversation"));
    this.composer.placeholder = t("op.composer_hint");
    this.composer.addEventListener("keydown", (ev) => this.onKey(ev));
    this.composer.addEventListener("input", () => this.onInput());
    this.noteToggle.addEventListener("change", () => this.composerBox.classList.toggle("note-mode", this.noteToggle.checked));
    this.composerBox = el(
      "form",
      {
        class: "composer",
        onsubmit: (ev: Event) => {
          ev.preventDefault();
          void this.send();
        },
      },
      this.picker,
      this.composer,
      el(
        "div",
        { class: "composer-bar" },
        el("label", { class: "note-label" }, this.noteToggle, " ", t("op.private_note")),
        el("button", { type: "submit", class: "primary", "data-testid": "send" }, t("op.send")),
      ),
    );
    this.reset();
  }


  get id(): number | null {
    return this.view ? this.view.conversation.id : null;
  }

  // Defined by the parts that own them (composer.ts, conversation.ts).
  protected abstract onKey(ev: KeyboardEvent): void;
  protected abstract onInput(): void;
  protected abstract send(): Promise<void>;
  abstract reset(): void;
  abstract open(id: number): Promise<boolean>;
  abstract applyMessage(msg: Message): boolean;
  abstract applyConversation(data: Conversation): void;

  // --- messages -----------------------------------------------------------------------

  protected author(msg: Message): string {
    const v = this.view;
    if (msg.direction === "in") return v?.conversation.contact_name || this.ctx.t("op.customer");
    if (msg.direction === "system") return this.ctx.t("op.system");
    if (isAutomated(msg)) return this.ctx.t("op.bot");
    return (msg.author_user_id !== null && v?.authors[String(msg.author_user_id)]) || this.ctx.t("op.operator");
  }

  /** What a press answered: the label of the button the bot offered with that id. */
  protected pressedLabel(msg: Message, id: string): string {
    const earlier = this.view?.messages ?? [];
    for (let i = earlier.length - 1; i >= 0; i--) {
      const offered = buttonsOf(earlier[i]).find((b) => b.id === id);
      if (offered) return offered.label;
    }
    return msg.body || id;
  }

  /** Attachments as an operator reads them: files as links, the bot's buttons as the list of
   * choices it offered, a customer's press as the choice made, keypad digits as digits. */
  protected extras(msg: Message): HTMLElement[] {
    const t = this.ctx.t;
    const out: HTMLElement[] = [];
    for (const a of msg.attachments || []) {
      const kind = typeof a.kind === "string" ? a.kind : "";
      if (kind === "buttons") {
        const buttons = buttonsOf(msg);
        out.push(
          el(
            "div",
            { class: "bot-choices", "data-testid": "bot-choices" },
            el("span", { class: "muted" }, t("op.bot_offered")),
            el("ul", {}, ...buttons.map((b) => el("li", { "data-testid": "bot-choice", "data-id": b.id }, b.label))),
          ),
        );
      } else if (kind === "button_reply") {
        continue; // the body shows the chosen label (messageNode)
      } else if (kind === "dtmf") {
        out.push(el("div", { class: "bot-chosen", "data-testid": "bot-dtmf" }, `${t("op.bot_keypad")}: `, el("strong", {}, String(a.digits ?? ""))));
      } else if (kind === "recording" && typeof a.url === "string" && a.url.startsWith("/")) {
        // A customer's voice reply (an agentless call's record node): play it here or download it.
        out.push(
          el(
            "div",
            { class: "attachment", "data-testid": "voice-reply" },
            el("audio", { controls: true, preload: "none", src: a.url }),
            el("a", { href: a.url, download: "" }, icon("attachment"), ` ${typeof a.name === "string" ? a.name : a.url}`),
          ),
        );
      } else if (kind === "prompt") {
        out.push(el("div", { class: "muted attachment", "data-testid": "bot-prompt" }, `${t("op.bot_prompt")}: ${String(a.file ?? "")}`));
      } else {
        const url = typeof a.url === "string" && a.url.startsWith("/") ? a.url : "";
        const name = typeof a.name === "string" ? a.name : "";
        if (!url && !name) continue; // nothing a person could open or read
        out.push(
          url
            ? el("a", { class: "attachment", href: url, target: "_blank", rel: "noopener" }, icon("attachment"), ` ${name || url}`)
            : el("span", { class: "attachment" }, icon("attachment"), ` ${name}`),
        );
      }
    }
    return out;
  }

  protected messageNode(msg: Message, authorName?: string): HTMLElement {
    const t = this.ctx.t;
    const bot = isAutomated(msg);
    const press = (msg.attachments || []).find((a) => a.kind === "button_reply");
    const pressedId = press ? String(press.id ?? "") : null;
    return el(
      "div",
      {
        class: `message msg-${msg.direction}${bot ? " msg-bot" : ""}`,
        "data-testid": "message",
        "data-id": msg.id,
        "data-direction": msg.direction,
        "data-author": bot ? "bot" : msg.direction === "in" ? "customer" : msg.direction === "out" ? "operator" : msg.direction,
      },
      el(
        "div",
        { class: "msg-meta" },
        msg.direction === "note" ? el("span", { class: "note-tag", "data-testid": "note-tag" }, t("op.note_label")) : null,
        bot ? icon("bot") : null,
        el("span", { "data-testid": "message-author" }, authorName ?? this.author(msg)),
        el("span", { class: "muted" }, ` ${time(msg.created_at, this.ctx.lang)}`),
      ),
      // A button press reads as the choice made (the label the bot offered), marked as a press.
      pressedId !== null
        ? el(
            "div",
            { class: "msg-body", "data-testid": "message-body" },
            el("span", { class: "chosen-tag", "data-testid": "bot-chosen-tag" }, t("op.bot_chosen")),
            " ",
            el("strong", { class: "chosen", "data-testid": "bot-chosen", "data-id": pressedId }, this.pressedLabel(msg, pressedId)),
          )
        : el("div", { class: "msg-body", "data-testid": "message-body" }, msg.body),
      ...this.extras(msg),
      msg.masked && this.view?.card.contact.can_reveal
        ? el(
            "button",
            {
              type: "button",
              class: "link",
              "data-testid": "message-reveal",
              onclick: (ev: Event) => void this.revealMessage(msg, ev.currentTarget as HTMLElement),
            },
            t("op.reveal_message"),
          )
        : null,
      msg.direction === "out"
        ? el("span", { class: `mark mark-${msg.delivery}`, "data-testid": "mark", "data-delivery": msg.delivery }, MARKS[msg.delivery] ?? "")
        : null,
    );
  }

  /** The customer's message with the phones and e-mails in it in full: the reveal grant,
   * written to the audit log. The text stays text (``textContent``). */
  protected async revealMessage(msg: Message, button: HTMLElement): Promise<void> {
    const resp = await fetch(`/api/v1/messages/${msg.id}/reveal`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-Omni-CSRF": "1" },
    });
    const data = (await resp.json().catch(() => ({}))) as { body?: string; detail?: string };
    if (!resp.ok || typeof data.body !== "string") {
      toast(data.detail || resp.statusText);
      return;
    }
    msg.body = data.body;
    msg.masked = false;
    const node = button.closest("[data-testid=message]");
    const body = node?.querySelector("[data-testid=message-body]");
    if (body) body.textContent = data.body;
    button.remove();
    toast(this.ctx.t("op.revealed"), "info");
  }

  protected renderHeader(): void {
    const v = this.view;
    if (!v) return;
    const c = v.conversation;
    const t = this.ctx.t;
    clear(this.header);
    this.header.append(
      el("span", { class: "icon" }, channelIcon(c.channel, c.medium)),
      el("strong", { "data-testid": "conversation-contact" }, c.contact_name || t("op.customer")),
      el("span", { class: "muted" }, ` #${c.id} · ${c.queue_name || ""} · `),
      el("span", { class: `st st-${c.status}`, "data-testid": "conversation-status" }, t(`op.st.${c.status}`)),
    );
  }
}
