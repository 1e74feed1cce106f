// The composer: replies and private notes, the typing signal, canned replies (picker and own).
import { call, clear, el } from "../common";
import { Canned, Message } from "./types";
import { failed } from "./ui";
import { HistoryPart } from "./history";
import { TYPING_EVERY_MS, TYPING_IDLE_MS, HANDLING, clientId } from "./messages";

export abstract class ComposerPart extends HistoryPart {
  // --- composer -----------------------------------------------------------------------

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

  protected async send(): Promise<void> {
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
