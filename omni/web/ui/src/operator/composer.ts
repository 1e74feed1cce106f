// The composer: replies and private notes, the typing signal, canned replies (picker and own).
import { call, clear, el } from "../common";
import { Canned, Message } from "./types";
import { failed } from "./ui";
import { HistoryPart } from "./history";
import { TYPING_EVERY_MS, TYPING_IDLE_MS, HANDLING, clientId } from "./messages";

/** Drafts live in the tab's session storage: a reload (or a reconnect that reloads the page)
 * keeps what the operator was typing; closing the tab forgets it. */
const DRAFTS_KEY = "omni.op.drafts";

let drafts: Record<string, string> | null = null;

/** The tab's drafts, read from storage once (the composer writes on every keystroke). */
function storedDrafts(): Record<string, string> {
  if (drafts === null) {
    try {
      const raw = JSON.parse(sessionStorage.getItem(DRAFTS_KEY) || "{}") as unknown;
      drafts = raw && typeof raw === "object" ? (raw as Record<string, string>) : {};
    } catch {
      drafts = {};
    }
  }
  return drafts;
}

export abstract class ComposerPart extends HistoryPart {
  // --- composer -----------------------------------------------------------------------

  /** Keep the composer's text as the draft of conversation ``id`` (an empty one is forgotten). */
  protected keepDraft(id: number): void {
    this.setDraft(id, this.composer.value);
  }

  protected draftOf(id: number): string {
    return storedDrafts()[String(id)] ?? "";
  }

  private setDraft(id: number, text: string): void {
    const all = storedDrafts();
    const key = String(id);
    if ((all[key] ?? "") === (text.trim() ? text : "")) return;
    if (text.trim()) all[key] = text;
    else delete all[key];
    try {
      sessionStorage.setItem(DRAFTS_KEY, JSON.stringify(all));
    } catch {
      // Storage full or disabled: the draft still lives in the composer while it is open.
    }
  }

  protected onKey(ev: KeyboardEvent): void {
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
        ev.preventDefault(); // the picker closes; the composer keeps the focus
        this.closePicker();
        return;
      }
    }
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      void this.send();
    }
  }

  protected onInput(): void {
    const value = this.composer.value;
    const match = /^\/(\S*)$/.exec(value);
    if (match) this.openPicker(match[1].toLowerCase());
    else this.closePicker();
    if (this.view) this.keepDraft(this.view.conversation.id);
    this.sendTyping(value.length > 0);
  }

  protected sendTyping(active: boolean): void {
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

  /** A reply on its way: a second Enter before the answer must not send the text twice. */
  private sending = false;

  protected async send(): Promise<void> {
    const v = this.view;
    const body = this.composer.value.trim();
    if (!v || !body || this.sending) return;
    const priv = this.noteToggle.checked;
    const sent = v.conversation.id;
    const button = this.composerBox.querySelector<HTMLButtonElement>("[data-testid=send]");
    if (button) button.disabled = true;
    this.sending = true;
    let ack;
    try {
      ack = await call(this.ctx.socket, "send", { conversation_id: sent, body, client_id: clientId(), private: priv });
    } finally {
      this.sending = false;
      if (button) button.disabled = false;
    }
    if (!ack.ok) {
      failed(this.ctx.t, ack); // the text stays in the composer, to send again
      return;
    }
    if (this.id === sent) {
      // What was typed while it was sending stays; only the text that went leaves the composer.
      const now = this.composer.value.trimStart();
      this.composer.value = now.startsWith(body) ? now.slice(body.length).trimStart() : now;
      this.keepDraft(sent);
      this.closePicker();
      if (!priv) this.sendTyping(false);
      this.applyMessage(ack.message as Message);
      this.composer.focus();
    } else if (this.draftOf(sent).trim() === body) {
      this.setDraft(sent, ""); // switched away while it was sending: the text went
    }
  }

  // --- canned replies -----------------------------------------------------------------

  /** The replies come rendered for the conversation (``{{contact.name}}``…): an answer for a
   * conversation no longer open is dropped, and an open picker is refilled with the fresh list. */
  protected async loadCanned(id: number | null): Promise<void> {
    const ack = await call(this.ctx.socket, "canned", id ? { conversation_id: id } : {});
    if (!ack.ok || this.id !== id) return;
    this.canned = ack.replies as Canned[];
    this.renderMyCanned();
    if (this.picker.classList.contains("hidden")) return;
    if (this.pickerAppend) this.openPicker("");
    else this.onInput();
  }

  protected openPicker(prefix: string): void {
    this.pickerItems = this.canned.filter(
      (c) => c.shortcut.toLowerCase().startsWith(prefix) || c.title.toLowerCase().includes(prefix),
    );
    this.pickerIndex = 0;
    this.renderPicker();
  }

  protected renderPicker(): void {
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

  protected closePicker(): void {
    this.picker.classList.add("hidden");
    this.pickerItems = [];
    this.pickerAppend = false;
  }

  protected pick(c: Canned): void {
    const draft = this.composer.value.trimEnd();
    this.composer.value = this.pickerAppend && draft ? `${draft} ${c.text}` : c.text;
    this.closePicker();
    this.composer.focus();
  }

  protected renderMyCanned(): void {
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
}
