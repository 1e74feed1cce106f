// The centre (messages, composer with canned replies and notes, contact history) and the
// right column (customer card, script, actions) for the open conversation. The parts live in
// messages.ts, history.ts, composer.ts, card.ts and actions.ts; this module opens a
// conversation, lays the parts out and applies live updates.
import { CallName, Calls, call, clear, el } from "../common";
import { campaignCard } from "./campaign";
import { renderCall } from "./call";
import { Conversation, Message, View } from "./types";
import { failed } from "./ui";
import { ActionsPart } from "./actions";
import { MARKS } from "./messages";
import { AutomationPanel } from "./automation";

export type { PaneContext } from "./messages";

export class ConversationPane extends ActionsPart {
  /** Macros and the queue's operator script (issue 18). */
  readonly automation = new AutomationPanel(this.ctx.t);
  /** Opened from a search hit (search.ts): the message to mark; read-only unless it is mine. */
  protected found: { id: number; messageId: number | null } | null = null;

  /** The open in flight: a second request for the same conversation (the offer's accept opens
   * it while the operator clicks it in the list) shares its answer instead of laying the pane
   * out twice under the operator's typing. */
  private opening: { id: number; promise: Promise<boolean> } | null = null;
  /** Bumped per open: an answer that arrives after a newer open was asked for is dropped, so a
   * slow answer for the previous conversation can't replace the one clicked last. */
  private openTicket = 0;
  /** What arrived for the conversation being opened before its view did: the view may have
   * been read before it (a customer's message, the call a callback's accept dials). An event
   * for a conversation not yet shown was dropped, and one applied to the view being replaced
   * was lost with it: the pane missed them until a reload. */
  private missed: { id: number; messages: Message[]; last: Conversation | null } | null = null;

  reset(): void {
    if (this.view) this.keepDraft(this.view.conversation.id);
    this.view = null;
    clear(this.centre);
    clear(this.right);
    this.centre.append(this.empty);
  }

  open(id: number, hit?: { messageId: number | null }): Promise<boolean> {
    if (!hit && this.opening?.id === id) return this.opening.promise;
    const promise = this.load(id, hit).finally(() => {
      if (this.opening?.promise === promise) this.opening = null;
    });
    this.opening = { id, promise };
    return promise;
  }

  private async load(id: number, hit?: { messageId: number | null }): Promise<boolean> {
    const ticket = ++this.openTicket;
    this.missed = { id, messages: [], last: null };
    const ack = await call(this.ctx.socket, "open", { conversation_id: id });
    if (ticket !== this.openTicket) return false; // the operator has asked for another since
    const missed = this.missed;
    this.missed = null;
    if (!ack.ok) {
      failed(this.ctx.t, ack);
      return false;
    }
    const previous = this.id;
    const switching = previous !== id;
    if (hit) this.found = { id, messageId: hit.messageId };
    else if (switching) this.found = null;
    if (switching && previous !== null) this.keepDraft(previous);
    this.view = ack as unknown as View;
    if (switching) {
      this.canned = []; // rendered for the previous customer: loadCanned below brings this one's
      this.closePicker();
      this.composer.value = this.draftOf(id);
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
    if (switching) {
      clear(this.crmBox);
      this.crmBox.classList.add("hidden");
      void this.loadCrmCard(id);
      void this.automation.load(id);
    }
    this.automation.showPriority(this.view.conversation.priority);
    if (missed) {
      for (const msg of missed.messages) this.applyMessage(msg); // those the view has are skipped
      // The view may predate the last change: read it again when that says something else (or
      // for a call, whose facts no event carries). Not always: a re-read that finds the facts
      // changed redraws those parts of the actions, under an operator who has just started on them.
      const last = missed.last;
      const c = this.view.conversation;
      if (last && (this.isVoice() || last.status !== c.status || last.assigned_user_id !== c.assigned_user_id)) this.refreshCallSoon();
    }
    return true;
  }

  protected layout(): void {
    const v = this.view;
    if (!v) return;
    // The composer and the note toggle outlive a re-layout (the same conversation re-read after
    // a reconnect or an accept): detaching them would take the focus from under the operator's
    // typing, and their Enter would then reach nothing.
    const active = document.activeElement;
    const focused = active instanceof HTMLElement && (this.centre.contains(active) || this.right.contains(active)) ? active : null;
    const caret = focused === this.composer ? [this.composer.selectionStart, this.composer.selectionEnd] : null;
    clear(this.centre);
    clear(this.right);
    clear(this.messages);
    for (const msg of v.messages) this.messages.append(this.messageNode(msg));
    this.showTyping(false);
    // A conversation found by search that someone else handles reads as the search page's
    // transcript does: no composer, a note saying why.
    const found = this.found?.id === v.conversation.id ? this.found : null;
    const readOnly = found !== null && v.conversation.assigned_user_id !== this.ctx.me;
    const banner = readOnly ? el("div", { class: "read-only muted", "data-testid": "search-read-only" }, this.ctx.t("op.search_read_only")) : null;
    this.centre.append(this.header, this.messages, this.typing, banner ?? this.composerBox, this.history);
    this.renderHeader();
    this.renderCall();
    this.renderCard(v.card);
    if (v.campaign) this.card.prepend(el("h3", {}, this.ctx.t("op.campaign_card")), campaignCard(v.campaign, this.ctx.t));
    this.renderBotData();
    this.renderScript();
    this.renderActions();
    this.renderMyCanned();
    // What the bot collected goes below what the operator acts on: it shows up or grows when a
    // rating or the bot's data arrive, and above the actions it moved them under the pointer.
    this.right.append(this.callBox, this.thread, this.card, this.actions, this.automation.box, this.botData, this.script, this.myCanned);
    this.scrollDown();
    if (found?.messageId) this.markHit(v.conversation.id, found.messageId);
    if (focused?.isConnected) {
      focused.focus();
      if (caret) this.composer.setSelectionRange(caret[0], caret[1]);
    }
  }

  /** Scroll to the message a search hit names and outline it; one older than the console's
   * window of messages is offered in the search page's full transcript. */
  protected markHit(conversationId: number, messageId: number): void {
    const node = this.messages.querySelector<HTMLElement>(`[data-id="${messageId}"]`);
    if (node) {
      node.classList.add("search-hit-message");
      node.setAttribute("data-hit", "true");
      node.scrollIntoView({ block: "center" });
      return;
    }
    const href = `/search/conversations/${conversationId}?hit=${messageId}#m-${messageId}`;
    this.messages.prepend(
      el("p", { class: "muted", "data-testid": "hit-older" }, el("a", { href, target: "_blank", rel: "noopener" }, this.ctx.t("op.search_older"))),
    );
  }

  protected scrollDown(): void {
    this.messages.scrollTop = this.messages.scrollHeight;
  }

  // --- live updates -------------------------------------------------------------------

  /** Shows a message of the open conversation (or keeps one of the conversation being opened);
   * false when it belongs to neither, for the list's unread marks. */
  applyMessage(msg: Message): boolean {
    const opening = this.missed?.id === msg.conversation_id;
    if (opening) this.missed?.messages.push(msg);
    if (!this.view || msg.conversation_id !== this.view.conversation.id) return opening;
    if (this.view.messages.some((m) => m.id === msg.id)) return true;
    this.view.messages.push(msg);
    this.messages.append(this.messageNode(msg));
    if (msg.direction === "in") this.showTyping(false);
    this.scrollDown();
    return true;
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
    if (this.missed?.id === data.id) this.missed.last = data;
    if (!this.view || data.id !== this.view.conversation.id) return;
    const before = this.view.conversation.status;
    this.view.conversation = { ...this.view.conversation, ...data };
    if (this.isVoice()) this.refreshCallSoon();
    this.renderHeader();
    this.renderCall();
    this.renderBotData();
    this.renderActions();
    this.automation.showPriority(this.view.conversation.priority);
    if (before !== data.status && data.status === "queued" && data.assigned_user_id !== this.ctx.me) {
      // Transferred away from us: keep it readable, the actions already reflect it.
      this.ctx.changed();
    }
  }

  protected isVoice(): boolean {
    return this.view?.conversation.medium === "voice";
  }

  /** Call facts live in ``calls`` (written by the voice adapter after the core's event):
   * re-read them shortly after any event of the open voice conversation, and the conversation
   * with them (also after an open that events overtook). */
  protected refreshCallSoon(): void {
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

  protected renderCall(): void {
    const v = this.view;
    if (!v) return;
    const c = v.conversation;
    const phone = this.ctx.phone;
    renderCall(this.callBox, c, v.call, c.assigned_user_id === this.ctx.me, this.ctx.t, {
      hold: (on) => void this.callAct("call_hold", { conversation_id: c.id, hold: on }),
      // Omni ends the call (the core state stays true), then the browser's SIP call ends too.
      hangup: () => void this.callAct("call_hangup", { conversation_id: c.id }).then(() => phone?.hangup()),
      answerHere: phone?.ringing() ? () => phone.answer() : undefined,
      answerHint: phone?.enabled() ? this.ctx.t("op.answer_in_softphone") : undefined,
    });
  }

  /** The softphone started or stopped ringing: the call panel shows or hides Answer. */
  phoneChanged(): void {
    this.renderCall();
  }

  protected async callAct<E extends CallName>(event: E, data: Calls[E]): Promise<void> {
    const ack = await this.act(event, data);
    if (ack.ok && ack.conversation) this.applyConversation(ack.conversation as Conversation);
    this.refreshCallSoon();
  }

  // --- keyboard (operator/keymap.ts) -------------------------------------------------------

  /** Press the first present, enabled button of these (Hold is the call panel's on a call). */
  private press(...testids: string[]): boolean {
    for (const id of testids) {
      const button = this.right.querySelector<HTMLButtonElement>(`button[data-testid="${id}"]`);
      if (button && !button.disabled) {
        button.click();
        return true;
      }
    }
    return false;
  }

  private focusIn(box: HTMLElement, testid: string): boolean {
    const field = box.querySelector<HTMLElement>(`[data-testid="${testid}"]`);
    if (!this.view || !field || (field as HTMLSelectElement).disabled) return false;
    field.scrollIntoView({ block: "nearest" });
    field.focus();
    return true;
  }

  focusComposer(): boolean {
    if (!this.view) return false;
    this.composer.focus();
    return true;
  }

  /** The canned replies: on an empty composer as typing "/" does; over a draft, appended to it. */
  cannedPicker(): boolean {
    if (!this.view) return false;
    this.composer.focus();
    if (!this.composer.value.trim()) {
      this.composer.value = "/";
      this.onInput();
    } else {
      this.pickerAppend = true;
      this.openPicker("");
    }
    return true;
  }

  toggleNote(): boolean {
    if (!this.view || this.noteToggle.disabled) return false;
    this.noteToggle.checked = !this.noteToggle.checked;
    this.noteToggle.dispatchEvent(new Event("change"));
    return true;
  }

  keyHold(): boolean {
    return this.press("hold", "call-hold");
  }

  keyEnd(): boolean {
    return this.press("end");
  }

  /** The result code list gets the focus: arrows pick a code, Enter closes (actions.ts). */
  keyClose(): boolean {
    return this.focusIn(this.actions, "close-code");
  }

  /** The transfer target gets the focus: arrows pick, Enter transfers (actions.ts). */
  keyTransfer(): boolean {
    return this.focusIn(this.actions, "transfer-target");
  }

  showTyping(on: boolean): void {
    window.clearTimeout(this.customerTypingTimer);
    this.typing.textContent = on ? this.ctx.t("op.customer_typing") : "";
    this.typing.classList.toggle("hidden", !on);
    if (on) this.customerTypingTimer = window.setTimeout(() => this.showTyping(false), 6000);
  }
}
