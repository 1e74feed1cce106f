// The centre (messages, composer with canned replies and notes, contact history) and the
// right column (customer card, script, actions) for the open conversation.
import { Socket } from "socket.io-client";
import { Ack, CallName, Calls, call, clear, el } from "../common";
import { icon } from "../icons";
import type { CardUpdateIn } from "../generated/contracts";
import { callIsLive, renderCall } from "./call";
import { takeButton } from "./left";
import { Canned, Card, CardField, Conversation, DialQueue, HistoryEntry, Message, View, channelIcon } from "./types";
import { T, addSeconds, clockAt, failed, time, toast, until } from "./ui";

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
}

const MARKS: Record<string, string> = { pending: "…", stored: "", sent: "✓", delivered: "✓✓", read: "✓✓", failed: "⚠" };
const TYPING_EVERY_MS = 2500;
const TYPING_IDLE_MS = 4000;
const HANDLING = ["active", "on_hold"];

/** Written by the system (a bot scenario's message or hand-off note, a queue notice), not by
 * a person: no author. */
function isAutomated(msg: Message): boolean {
  return (msg.direction === "out" || msg.direction === "note") && msg.author_user_id === null;
}

function buttonsOf(msg: Message): { id: string; label: string }[] {
  for (const a of msg.attachments || []) {
    if (a.kind === "buttons" && Array.isArray(a.buttons)) {
      return (a.buttons as { id?: unknown; label?: unknown }[]).map((b) => ({ id: String(b.id ?? ""), label: String(b.label ?? "") }));
    }
  }
  return [];
}

function clientId(): string {
  return `op-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

export class ConversationPane {
  view: View | null = null;
  private canned: Canned[] = [];
  private pickerItems: Canned[] = [];
  private pickerIndex = 0;
  private typingSentAt = 0;
  private typingStop = 0;
  private customerTypingTimer = 0;
  private callRefresh = 0;

  private readonly header = el("header", { class: "conv-header", "data-testid": "conversation-header" });
  private readonly messages = el("div", { class: "messages", "data-testid": "messages", "aria-live": "polite" });
  private readonly typing = el("div", { class: "typing hidden", "data-testid": "customer-typing" });
  private readonly picker = el("div", { class: "canned-picker hidden", "data-testid": "canned-picker", role: "listbox" });
  private readonly composer = el("textarea", { "data-testid": "composer", rows: 3 });
  private readonly noteToggle = el("input", { type: "checkbox", "data-testid": "note-toggle" });
  private readonly composerBox: HTMLElement;
  private readonly history = el("details", { class: "history", "data-testid": "history" });
  private readonly callBox = el("section", { class: "panel call-panel hidden", "data-testid": "call" });
  private readonly card = el("section", { class: "panel card-panel", "data-testid": "card" });
  private readonly botData = el("section", { class: "panel bot-data", "data-testid": "bot-data" });
  private readonly script = el("section", { class: "panel script-panel", "data-testid": "script" });
  private readonly actions = el("section", { class: "panel actions-panel", "data-testid": "actions" });
  private readonly myCanned = el("section", { class: "panel canned-panel", "data-testid": "my-canned" });
  private readonly empty: HTMLElement;

  constructor(
    private readonly ctx: PaneContext,
    private readonly centre: HTMLElement,
    private readonly right: HTMLElement,
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

  reset(): void {
    this.view = null;
    clear(this.centre);
    clear(this.right);
    this.centre.append(this.empty);
  }

  async open(id: number): Promise<boolean> {
    const ack = await call(this.ctx.socket, "open", { conversation_id: id });
    if (!ack.ok) {
      failed(this.ctx.t, ack);
      return false;
    }
    const switching = this.id !== id;
    this.view = ack as unknown as View;
    if (switching) {
      this.composer.value = "";
      this.noteToggle.checked = false;
      this.composerBox.classList.remove("note-mode");
      this.typingSentAt = 0;
    }
    // A call has no text channel: the composer writes private notes only.
    const voice = this.isVoice();
    this.noteToggle.disabled = voice;
    if (voice) this.noteToggle.checked = true;
    this.composerBox.classList.toggle("note-mode", this.noteToggle.checked);
    this.composer.placeholder = voice ? this.ctx.t("op.notes_only") : this.ctx.t("op.composer_hint");
    this.layout();
    void this.loadHistory(id);
    void this.loadCanned(id);
    return true;
  }

  private layout(): void {
    const v = this.view;
    if (!v) return;
    clear(this.centre);
    clear(this.right);
    clear(this.messages);
    for (const msg of v.messages) this.messages.append(this.messageNode(msg));
    this.showTyping(false);
    this.centre.append(this.header, this.messages, this.typing, this.composerBox, this.history);
    this.renderHeader();
    this.renderCall();
    this.renderCard(v.card);
    this.renderBotData();
    this.renderScript();
    this.renderActions();
    this.renderMyCanned();
    this.right.append(this.callBox, this.card, this.botData, this.actions, this.script, this.myCanned);
    this.scrollDown();
  }

  private scrollDown(): void {
    this.messages.scrollTop = this.messages.scrollHeight;
  }

  // --- live updates -------------------------------------------------------------------

  applyMessage(msg: Message): void {
    if (!this.view || msg.conversation_id !== this.view.conversation.id) return;
    if (this.view.messages.some((m) => m.id === msg.id)) return;
    this.view.messages.push(msg);
    this.messages.append(this.messageNode(msg));
    if (msg.direction === "in") this.showTyping(false);
    this.scrollDown();
  }

  applyDelivery(messageId: number, delivery: string): void {
    const msg = this.view?.messages.find((m) => m.id === messageId);
    if (!msg) return;
    msg.delivery = delivery;
    const node = this.messages.querySelector<HTMLElement>(`[data-id="${messageId}"] .mark`);
    if (node) {
      node.textContent = MARKS[delivery] ?? "";
      node.className = `mark mark-${delivery}`;
      node.dataset.delivery = delivery;
    }
  }

  applyConversation(data: Conversation): void {
    if (!this.view || data.id !== this.view.conversation.id) return;
    const before = this.view.conversation.status;
    this.view.conversation = { ...this.view.conversation, ...data };
    if (this.isVoice()) this.refreshCallSoon();
    this.renderHeader();
    this.renderCall();
    this.renderBotData();
    this.renderActions();
    if (before !== data.status && data.status === "queued" && data.assigned_user_id !== this.ctx.me) {
      // Transferred away from us: keep it readable, the actions already reflect it.
      this.ctx.changed();
    }
  }

  private isVoice(): boolean {
    return this.view?.conversation.medium === "voice";
  }

  /** Call facts live in ``calls`` (written by the voice adapter after the core's event):
   * re-read them shortly after any event of the open voice conversation. */
  private refreshCallSoon(): void {
    window.clearTimeout(this.callRefresh);
    const id = this.id;
    this.callRefresh = window.setTimeout(async () => {
      if (id === null) return;
      const ack = await call(this.ctx.socket, "open", { conversation_id: id });
      if (!ack.ok || !this.view || this.id !== id) return;
      const fresh = ack as unknown as View;
      this.view.call = fresh.call;
      this.view.conversation = { ...this.view.conversation, ...fresh.conversation };
      this.renderHeader();
      this.renderCall();
      this.renderActions();
    }, 300);
  }

  private renderCall(): void {
    const v = this.view;
    if (!v) return;
    const c = v.conversation;
    renderCall(this.callBox, c, v.call, c.assigned_user_id === this.ctx.me, this.ctx.t, {
      hold: (on) => void this.callAct("call_hold", { conversation_id: c.id, hold: on }),
      hangup: () => void this.callAct("call_hangup", { conversation_id: c.id }),
    });
  }

  private async callAct<E extends CallName>(event: E, data: Calls[E]): Promise<void> {
    const ack = await this.act(event, data);
    if (ack.ok && ack.conversation) this.applyConversation(ack.conversation as Conversation);
    this.refreshCallSoon();
  }

  showTyping(on: boolean): void {
    window.clearTimeout(this.customerTypingTimer);
    this.typing.textContent = on ? this.ctx.t("op.customer_typing") : "";
    this.typing.classList.toggle("hidden", !on);
    if (on) this.customerTypingTimer = window.setTimeout(() => this.showTyping(false), 6000);
  }

  // --- messages -----------------------------------------------------------------------

  private author(msg: Message): string {
    const v = this.view;
    if (msg.direction === "in") return v?.conversation.contact_name || this.ctx.t("op.customer");
    if (msg.direction === "system") return this.ctx.t("op.system");
    if (isAutomated(msg)) return this.ctx.t("op.bot");
    return (msg.author_user_id !== null && v?.authors[String(msg.author_user_id)]) || this.ctx.t("op.operator");
  }

  /** What a press answered: the label of the button the bot offered with that id. */
  private pressedLabel(msg: Message, id: string): string {
    const earlier = this.view?.messages ?? [];
    for (let i = earlier.length - 1; i >= 0; i--) {
      const offered = buttonsOf(earlier[i]).find((b) => b.id === id);
      if (offered) return offered.label;
    }
    return msg.body || id;
  }

  /** Attachments as an operator reads them: files as links, the bot's buttons as the list of
   * choices it offered, a customer's press as the choice made, keypad digits as digits. */
  private extras(msg: Message): HTMLElement[] {
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

  private messageNode(msg: Message, authorName?: string): HTMLElement {
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
      msg.direction === "out"
        ? el("span", { class: `mark mark-${msg.delivery}`, "data-testid": "mark", "data-delivery": msg.delivery }, MARKS[msg.delivery] ?? "")
        : null,
    );
  }

  private renderHeader(): void {
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

  // --- composer -----------------------------------------------------------------------

  private onKey(ev: KeyboardEvent): void {
    if (!this.picker.classList.contains("hidden") && this.pickerItems.length) {
      if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
        ev.preventDefault();
        const n = this.pickerItems.length;
        this.pickerIndex = (this.pickerIndex + (ev.key === "ArrowDown" ? 1 : n - 1)) % n;
        this.renderPicker();
        return;
      }
      if (ev.key === "Enter" || ev.key === "Tab") {
        ev.preventDefault();
        this.pick(this.pickerItems[this.pickerIndex]);
        return;
      }
      if (ev.key === "Escape") {
        this.closePicker();
        return;
      }
    }
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      void this.send();
    }
  }

  private onInput(): void {
    const value = this.composer.value;
    const match = /^\/(\S*)$/.exec(value);
    if (match) this.openPicker(match[1].toLowerCase());
    else this.closePicker();
    this.sendTyping(value.length > 0);
  }

  private sendTyping(active: boolean): void {
    const v = this.view;
    if (!v || this.noteToggle.checked || !HANDLING.includes(v.conversation.status)) return;
    const id = v.conversation.id;
    window.clearTimeout(this.typingStop);
    if (!active) {
      if (this.typingSentAt) void call(this.ctx.socket, "typing", { conversation_id: id, typing: false });
      this.typingSentAt = 0;
      return;
    }
    const now = Date.now();
    if (now - this.typingSentAt > TYPING_EVERY_MS) {
      this.typingSentAt = now;
      void call(this.ctx.socket, "typing", { conversation_id: id, typing: true });
    }
    this.typingStop = window.setTimeout(() => this.sendTyping(false), TYPING_IDLE_MS);
  }

  private async send(): Promise<void> {
    const v = this.view;
    const body = this.composer.value.trim();
    if (!v || !body) return;
    const priv = this.noteToggle.checked;
    const button = this.composerBox.querySelector<HTMLButtonElement>("[data-testid=send]");
    if (button) button.disabled = true;
    const ack = await call(this.ctx.socket, "send", {
      conversation_id: v.conversation.id,
      body,
      client_id: clientId(),
      private: priv,
    });
    if (button) button.disabled = false;
    if (!ack.ok) {
      failed(this.ctx.t, ack);
      return;
    }
    this.composer.value = "";
    this.closePicker();
    if (!priv) this.sendTyping(false);
    this.applyMessage(ack.message as Message);
    this.composer.focus();
  }

  // --- canned replies -----------------------------------------------------------------

  private async loadCanned(id: number | null): Promise<void> {
    const ack = await call(this.ctx.socket, "canned", id ? { conversation_id: id } : {});
    if (ack.ok) {
      this.canned = ack.replies as Canned[];
      this.renderMyCanned();
    }
  }

  private openPicker(prefix: string): void {
    this.pickerItems = this.canned.filter(
      (c) => c.shortcut.toLowerCase().startsWith(prefix) || c.title.toLowerCase().includes(prefix),
    );
    this.pickerIndex = 0;
    this.renderPicker();
  }

  private renderPicker(): void {
    clear(this.picker);
    this.picker.classList.remove("hidden");
    if (!this.pickerItems.length) {
      this.picker.append(el("div", { class: "muted" }, this.ctx.t("op.canned_none")));
      return;
    }
    this.pickerItems.forEach((c, i) => {
      this.picker.append(
        el(
          "div",
          {
            class: `canned-option${i === this.pickerIndex ? " selected" : ""}`,
            role: "option",
            "data-testid": "canned-option",
            "data-shortcut": c.shortcut,
            onmousedown: (ev: Event) => {
              ev.preventDefault();
              this.pick(c);
            },
          },
          el("strong", {}, `/${c.shortcut}`),
          ` ${c.title} `,
          el("small", { class: "muted" }, this.ctx.t(`op.scope.${c.scope}`)),
          el("div", { class: "canned-text" }, c.text),
        ),
      );
    });
  }

  private closePicker(): void {
    this.picker.classList.add("hidden");
    this.pickerItems = [];
  }

  private pick(c: Canned): void {
    this.composer.value = c.text;
    this.closePicker();
    this.composer.focus();
  }

  private renderMyCanned(): void {
    const t = this.ctx.t;
    clear(this.myCanned);
    const own = this.canned.filter((c) => c.scope === "personal");
    const shortcut = el("input", { placeholder: t("op.shortcut"), "data-testid": "canned-shortcut", maxlength: 32 });
    const title = el("input", { placeholder: t("op.title"), maxlength: 128 });
    const body = el("textarea", { placeholder: t("op.canned_body"), rows: 2, "data-testid": "canned-body" });
    this.myCanned.append(
      el("h3", {}, t("op.my_canned")),
      ...own.map((c) =>
        el(
          "div",
          { class: "canned-own", "data-testid": "canned-own" },
          el("strong", {}, `/${c.shortcut}`),
          ` ${c.title}`,
          el(
            "button",
            {
              class: "link danger",
              title: t("op.delete"),
              onclick: async () => {
                const ack = await call(this.ctx.socket, "canned_delete", { id: c.id });
                if (!ack.ok) failed(t, ack);
                void this.loadCanned(this.id);
              },
            },
            "✕",
          ),
        ),
      ),
      el(
        "form",
        {
          class: "stack",
          onsubmit: async (ev: Event) => {
            ev.preventDefault();
            const ack = await call(this.ctx.socket, "canned_save", {
              shortcut: shortcut.value,
              title: title.value,
              body: body.value,
            });
            if (!ack.ok) {
              failed(t, ack);
              return;
            }
            void this.loadCanned(this.id);
          },
        },
        shortcut,
        title,
        body,
        el("small", { class: "muted" }, t("op.placeholders_hint")),
        el("button", { type: "submit", "data-testid": "canned-save" }, t("op.save")),
      ),
    );
  }

  // --- contact history ----------------------------------------------------------------

  private async loadHistory(id: number): Promise<void> {
    const t = this.ctx.t;
    const ack = await call(this.ctx.socket, "history", { conversation_id: id });
    if (this.id !== id) return;
    clear(this.history);
    if (!ack.ok) {
      this.history.append(el("summary", {}, t("op.history")));
      return;
    }
    const items = ack.conversations as HistoryEntry[];
    const hidden = Number(ack.hidden || 0);
    this.history.append(
      el("summary", {}, `${t("op.history")} (${items.length})`),
      ...items.map((c) =>
        el(
          "details",
          { class: "history-item", "data-testid": "history-item", "data-id": c.id, "data-channel": c.channel },
          el(
            "summary",
            {},
            el("span", { class: "icon" }, channelIcon(c.channel, c.medium)),
            ` ${time(c.created_at, this.ctx.lang)} · ${c.queue_name || t(`enum.channel.${c.channel}`)} · ${t(`op.st.${c.status}`)}`,
            c.result_code_name ? ` · ${c.result_code_name}` : "",
          ),
          ...c.messages.map((m) => this.messageNode(m, m.direction === "in" ? undefined : isAutomated(m) ? t("op.bot") : m.direction === "note" ? t("op.note_label") : t("op.operator"))),
        ),
      ),
    );
    if (hidden) this.history.append(el("p", { class: "muted" }, t("op.history_hidden", { n: hidden })));
    if (!items.length && !hidden) this.history.append(el("p", { class: "muted" }, t("op.history_empty")));
  }

  // --- customer card ------------------------------------------------------------------

  private fieldInput(key: string, kind: string, value: unknown, f?: CardField): HTMLElement {
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

  private renderCard(card: Card): void {
    const t = this.ctx.t;
    const c = card.contact;
    clear(this.card);
    const inputs: { key: string; node: HTMLInputElement | HTMLSelectElement; original: unknown }[] = [];
    const row = (key: string, label: string, kind: string, value: unknown, f?: CardField): HTMLElement => {
      const node = this.fieldInput(key, kind, value, f) as HTMLInputElement | HTMLSelectElement;
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
        c.phone && this.ctx.dialQueues.length
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
    );
  }

  private renderScript(): void {
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
  private isTechnical(name: string): boolean {
    return name.startsWith("_") || this.ctx.technicalVariables.includes(name);
  }

  /** What the bot collected before the hand-off (read-only; hidden when there is nothing). */
  private renderBotData(): void {
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

  // --- actions ------------------------------------------------------------------------

  private async act<E extends CallName>(event: E, data: Calls[E]): Promise<Ack> {
    const ack = await call(this.ctx.socket, event, data);
    if (!ack.ok) failed(this.ctx.t, ack);
    this.ctx.changed();
    return ack;
  }

  /** The operator's capacity or status changed: redraw the actions if Take's state did. */
  takeMayHaveChanged(): void {
    const c = this.view?.conversation;
    if (!c || c.status !== "queued") return;
    if (this.ctx.takeBlock(c) !== this.takeShown) this.renderActions();
  }

  private takeShown: string | null = null;
  /** The result code the operator picked in this conversation: the actions are redrawn on every
   * event of the conversation (its own wrap-up included), and the pick must survive that. */
  private pickedCode: { id: number; value: string } | null = null;

  private renderActions(): void {
    const v = this.view;
    if (!v) return;
    this.takeShown = v.conversation.status === "queued" ? this.ctx.takeBlock(v.conversation) : null;
    const t = this.ctx.t;
    const c = v.conversation;
    const id = c.id;
    const mineNow = c.assigned_user_id === this.ctx.me;
    clear(this.actions);
    this.actions.append(el("h3", {}, t("op.actions")));
    this.composer.disabled = false;

    if (mineNow && (HANDLING.includes(c.status) || c.status === "wrap_up")) {
      const row = el("div", { class: "row" });
      if (HANDLING.includes(c.status) && c.medium === "voice" && callIsLive(v.call)) {
        // Hold and hang-up are the call panel's (they reach the phone system too).
      } else if (HANDLING.includes(c.status)) {
        row.append(
          el("button", { "data-testid": "end", onclick: () => void this.act("end", { conversation_id: id }) }, t("op.end")),
          el(
            "button",
            { "data-testid": "hold", onclick: () => void this.act("hold", { conversation_id: id, hold: c.status === "active" }) },
            c.status === "active" ? t("op.hold") : t("op.unhold"),
          ),
        );
      } else {
        row.append(
          el("span", {}, `${t("op.wrap_up")}: `),
          until(addSeconds(c.wrap_up_at, c.wrap_up_seconds || 0), { "data-testid": "wrap-up" }),
        );
      }
      const picked = this.pickedCode?.id === id ? this.pickedCode.value : null;
      const codes = el("select", {
        "data-testid": "close-code",
        "aria-label": t("op.result_code"),
        onchange: () => {
          this.pickedCode = { id, value: codes.value };
        },
      });
      codes.append(el("option", { value: "" }, t("op.result_code")));
      for (const rc of v.result_codes) {
        const opt = el("option", { value: rc.id }, (this.ctx.lang === "ru" && rc.name_ru) || rc.name);
        opt.selected = picked !== null ? String(rc.id) === picked : rc.id === v.default_result_code_id;
        codes.append(opt);
      }
      this.actions.append(
        row,
        el(
          "div",
          { class: "row" },
          codes,
          el(
            "button",
            {
              class: "primary",
              "data-testid": "close-submit",
              onclick: async () => {
                if (!codes.value) {
                  toast(t("op.pick_result_code"));
                  return;
                }
                const ack = await this.act("close", { conversation_id: id, result_code_id: Number(codes.value) });
                if (ack.ok) this.applyConversation(ack.conversation as Conversation);
              },
            },
            t("op.close"),
          ),
        ),
      );
    } else if (c.status === "queued" && this.ctx.takeBlock(c) !== null) {
      const take = takeButton(c, (x) => this.ctx.takeBlock(x), t, async () => {
        const ack = await this.act("take", { conversation_id: id });
        if (ack.ok) void this.open(id);
      }, "primary");
      const reason = this.ctx.takeBlock(c);
      this.actions.append(
        ...[take, reason ? el("p", { class: "take-reason", "data-testid": "take-reason" }, reason) : null].filter((n): n is HTMLElement => n !== null),
      );
    } else {
      this.actions.append(el("p", { class: "muted", "data-testid": "read-only" }, t(`op.st.${c.status}`)));
    }

    if (mineNow && HANDLING.includes(c.status)) this.actions.append(this.transferForm(id));
    if (mineNow && (HANDLING.includes(c.status) || c.status === "wrap_up") && v.bot_scenarios?.length) {
      this.actions.append(this.botForm(id, v.bot_scenarios));
    }
    this.actions.append(this.callbackForm(id));
    if (!v.card.contact.blacklisted) {
      this.actions.append(
        el(
          "button",
          {
            class: "danger",
            "data-testid": "blacklist",
            onclick: async () => {
              if (!window.confirm(t("op.blacklist_confirm"))) return;
              const ack = await this.act("blacklist", { conversation_id: id });
              if (ack.ok && this.view) {
                this.view.card.contact.blacklisted = true;
                this.renderCard(this.view.card);
                this.renderActions();
              }
            },
          },
          t("op.blacklist"),
        ),
      );
    }
  }

  private transferForm(id: number): HTMLElement {
    const t = this.ctx.t;
    const v = this.view as View;
    const voice = v.conversation.medium === "voice" && callIsLive(v.call);
    // A live call may also go to the IVR: a published scenario picks the caller up
    // (`call_transfer {to_scenario}`); blind only, an IVR has no one to consult.
    const scenarios = voice ? (v.bot_scenarios ?? []) : [];
    const kind = el(
      "select",
      { "data-testid": "transfer-kind" },
      el("option", { value: "queue" }, t("op.to_queue")),
      el("option", { value: "operator" }, t("op.to_operator")),
      scenarios.length ? el("option", { value: "ivr" }, t("op.to_ivr")) : null,
    );
    const target = el("select", { "data-testid": "transfer-target" });
    const fill = (): void => {
      clear(target);
      if (kind.value === "ivr") {
        for (const s of scenarios) target.append(el("option", { value: s.key }, s.name));
        return;
      }
      const list = kind.value === "queue" ? v.transfer.queues : v.transfer.operators;
      for (const item of list) target.append(el("option", { value: item.id }, item.name));
    };
    const attended = el("input", { type: "checkbox", "data-testid": "transfer-attended" });
    const attendedRow = el("label", { class: voice ? "" : "hidden" }, attended, ` ${t("op.attended")}`);
    kind.addEventListener("change", () => {
      fill();
      attended.disabled = kind.value !== "operator";
      if (attended.disabled) attended.checked = false;
    });
    fill();
    attended.disabled = kind.value !== "operator";
    const note = el("input", { placeholder: t("op.transfer_note"), "data-testid": "transfer-note" });
    const targetField = (): Record<string, string | number> => {
      if (kind.value === "ivr") return { to_scenario: target.value };
      return { [kind.value === "queue" ? "to_queue_id" : "to_user_id"]: Number(target.value) };
    };
    return el(
      "form",
      {
        class: "stack",
        onsubmit: async (ev: Event) => {
          ev.preventDefault();
          if (!target.value) return;
          const ack = await this.act(voice ? "call_transfer" : "transfer", {
            conversation_id: id,
            ...targetField(),
            note: note.value,
            ...(voice ? { attended: attended.checked } : {}),
          });
          if (ack.ok && voice && attended.checked) {
            // The operator stays on the call until Asterisk reports the transfer done.
            toast(t("op.transferred"), "info");
          } else if (ack.ok) {
            toast(t("op.transferred"), "info");
            this.ctx.closed();
          }
        },
      },
      el("h4", {}, t("op.transfer")),
      el("div", { class: "row" }, kind, target),
      attendedRow,
      voice ? null : note,
      el("button", { type: "submit", "data-testid": "transfer-submit" }, t("op.transfer")),
    );
  }

  /** "Hand to a bot scenario (e.g. a survey)": a published scenario takes the conversation
   * ("Start the scenario"); it ends the handling. */
  private botForm(id: number, scenarios: { key: string; name: string }[]): HTMLElement {
    const t = this.ctx.t;
    const pick = el("select", { "data-testid": "bot-scenario" });
    for (const s of scenarios) pick.append(el("option", { value: s.key }, s.name));
    return el(
      "form",
      {
        class: "stack",
        onsubmit: async (ev: Event) => {
          ev.preventDefault();
          if (!pick.value || !window.confirm(t("op.hand_to_bot_confirm"))) return;
          // On a live call the scenario runs in the IVR: the caller is transferred there.
          const v = this.view as View;
          const live = v.conversation.medium === "voice" && callIsLive(v.call);
          const ack = live
            ? await this.act("call_transfer", { conversation_id: id, to_scenario: pick.value })
            : await this.act("hand_to_bot", { conversation_id: id, scenario: pick.value });
          if (ack.ok) {
            this.applyConversation(ack.conversation as Conversation);
            toast(t("op.handed_to_bot"), "info");
          }
        },
      },
      el("h4", {}, t("op.hand_to_bot")),
      pick,
      el("button", { type: "submit", "data-testid": "bot-submit" }, t("op.hand_to_bot_submit")),
    );
  }

  private callbackForm(id: number): HTMLElement {
    const t = this.ctx.t;
    const due = el("input", { type: "datetime-local", "data-testid": "callback-due" });
    const note = el("input", { placeholder: t("op.callback_note"), "data-testid": "callback-note" });
    const mine = el("input", { type: "checkbox" });
    return el(
      "form",
      {
        class: "stack",
        onsubmit: async (ev: Event) => {
          ev.preventDefault();
          const when = due.value ? new Date(due.value) : null;
          const ack = await this.act("schedule_callback", {
            conversation_id: id,
            due_at: when ? when.toISOString() : null,
            note: note.value,
            kind: mine.checked ? "operator" : "standard",
          });
          if (ack.ok) {
            due.value = "";
            note.value = "";
            toast(t("op.callback_scheduled"), "info");
          }
        },
      },
      el("h4", {}, t("op.schedule_callback")),
      due,
      note,
      el("label", {}, mine, ` ${t("op.callback_mine")}`),
      el("button", { type: "submit", "data-testid": "callback-submit" }, t("op.schedule")),
    );
  }
}
