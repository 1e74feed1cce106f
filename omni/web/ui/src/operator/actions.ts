// The actions panel: end, hold, close with a result code, take, transfer, hand to a bot,
// blacklist, schedule a callback.
import { Ack, CallName, Calls, ShownParts, call, clear, el, keepParts } from "../common";
import { callIsLive } from "./call";
import { takeButton } from "./left";
import { Conversation, View } from "./types";
import { addSeconds, failed, toast, until } from "./ui";
import { CardPart } from "./card";
import { HANDLING } from "./messages";
import { transcriptForm } from "./transcript";
import { organisePanel } from "./organise";

/** Enter on a focused list presses the button that goes with it (a select has no Enter of its own). */
function enterClicks(ev: KeyboardEvent, selector: string, box: HTMLElement): void {
  if (ev.key !== "Enter" || ev.altKey || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
  ev.preventDefault();
  box.querySelector<HTMLButtonElement>(selector)?.click();
}

/** One part of the actions panel: the facts it shows (it is rebuilt when they change, and only
 * then) and how it is built. */
interface ActionsPartSpec {
  name: string;
  facts: unknown[];
  build: () => HTMLElement[];
}

/** Fields that keep what the operator entered by themselves (``closeForm``, ``pickedCode``,
 * ``pickedTransfer``), or that act on the pick (a label is added at once). */
const KEPT_ELSEWHERE = new Set([
  "close-code",
  "close-callback-at",
  "close-callback-me",
  "close-callback-anyone",
  "transfer-kind",
  "transfer-target",
  "transfer-note",
  "transfer-attended",
  "label-pick",
]);

interface FocusedField {
  node: HTMLElement;
  testid: string;
  selection: [number, number] | null;
}

/** The focused field of a part about to be rebuilt, to focus its successor (by its test id). */
function fieldState(node: HTMLElement): FocusedField | null {
  const testid = node.dataset.testid;
  if (!testid) return null;
  const text = node instanceof HTMLInputElement || node instanceof HTMLTextAreaElement ? node : null;
  // Only text-like inputs have a caret (selectionStart is null for a date, a checkbox…).
  const selection: [number, number] | null =
    text && text.selectionStart !== null && text.selectionEnd !== null ? [text.selectionStart, text.selectionEnd] : null;
  return { node, testid, selection };
}

function restoreField(node: HTMLElement, was: FocusedField): void {
  node.focus();
  if (was.selection && (node instanceof HTMLInputElement || node instanceof HTMLTextAreaElement) && node.selectionStart !== null) {
    node.setSelectionRange(...was.selection);
  }
}

export abstract class ActionsPart extends CardPart {
  // --- actions ------------------------------------------------------------------------

  protected async act<E extends CallName>(event: E, data: Calls[E]): Promise<Ack> {
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

  /** The parts of the actions on screen, by name: the facts each was built for and its nodes;
   * and the conversation they are for. */
  private readonly shownParts: ShownParts = new Map();
  private shownFor: number | null = null;

  /** Lays out the actions for the open conversation. Called on every event of it (a rating, a
   * status change, a voice call's re-read…), so each part is rebuilt only when the facts it
   * shows changed: a part rebuilt under the operator lost a click whose press and release
   * straddled it (they reached two different buttons) and what was being typed or picked in it
   * (the callback time, a bot scenario…). */
  protected renderActions(): void {
    const v = this.view;
    if (!v) return;
    this.takeShown = v.conversation.status === "queued" ? this.ctx.takeBlock(v.conversation) : null;
    const t = this.ctx.t;
    const c = v.conversation;
    const id = c.id;
    const mineNow = c.assigned_user_id === this.ctx.me;
    const handling = HANDLING.includes(c.status);
    const live = c.medium === "voice" && callIsLive(v.call);
    this.composer.disabled = false;
    if (c.status === "closed") this.actionInputs.delete(id);
    const parts: ActionsPartSpec[] = [
      { name: "title", facts: [], build: () => [el("h3", {}, t("op.actions"))] },
      {
        name: "state",
        facts: [
          c.status,
          c.assigned_user_id,
          live,
          c.wrap_up_at,
          c.wrap_up_seconds,
          this.takeShown,
          v.result_codes.map((rc) => [rc.id, rc.name, rc.name_ru, rc.action]),
          v.default_result_code_id,
        ],
        build: () => this.stateNodes(v),
      },
    ];
    if (mineNow && handling) {
      const scenarios = live ? (v.bot_scenarios ?? []).map((s) => [s.key, s.name]) : [];
      parts.push({ name: "transfer", facts: [live, v.transfer, scenarios], build: () => [this.transferForm(id)] });
    }
    if (mineNow) {
      parts.push({
        name: "organise",
        facts: [c.status === "snoozed", handling && c.medium !== "voice", c.queue_id, c.label_ids ?? []],
        build: () => [organisePanel(this.ctx, c, (x) => this.applyConversation(x))],
      });
    }
    const scenarios = v.bot_scenarios ?? [];
    if (mineNow && (handling || c.status === "wrap_up") && scenarios.length) {
      parts.push({ name: "bot", facts: scenarios.map((s) => [s.key, s.name]), build: () => [this.botForm(id, scenarios)] });
    }
    parts.push({ name: "callback", facts: [], build: () => [this.callbackForm(id)] });
    if (c.medium === "chat") {
      const email = v.card.contact.email ?? "";
      parts.push({ name: "transcript", facts: [email], build: () => [transcriptForm(t, id, email)] });
    }
    if (!v.card.contact.blacklisted) parts.push({ name: "blacklist", facts: [], build: () => [this.blacklistButton(id)] });
    this.showParts(id, parts);
  }

  /** Puts ``parts`` in the panel in their order (``keepParts``): a part whose facts are those it
   * was built for stays as it is (never taken out and put back: that too would drop a click on
   * it); the others are built afresh, with what the operator had entered in them for this
   * conversation and the focus that was in them. */
  private showParts(id: number, parts: ActionsPartSpec[]): void {
    const active = document.activeElement;
    const same = this.shownFor === id; // the focus never moves into another conversation's actions
    const focused = same && active instanceof HTMLElement && this.actions.contains(active) ? fieldState(active) : null;
    this.shownFor = id;
    keepParts(
      this.actions,
      parts.map((part) => ({ name: part.name, facts: [id, part.facts], build: () => this.keepInputs(id, part.build()) })),
      this.shownParts,
    );
    if (focused && !focused.node.isConnected) {
      const successor = this.actions.querySelectorAll<HTMLElement>(`[data-testid="${focused.testid}"]`);
      if (successor.length === 1) restoreField(successor[0], focused);
    }
  }

  /** What the operator types or picks in the actions (bar the close and transfer forms, which
   * keep theirs themselves, and the label pick, which acts at once): recorded per conversation
   * as it is entered, and put back into a part rebuilt for the same conversation. */
  private keepInputs(id: number, nodes: HTMLElement[]): HTMLElement[] {
    const kept = this.actionInputs.get(id) ?? {};
    for (const node of nodes) {
      const fields = [node, ...node.querySelectorAll<HTMLElement>("[data-testid]")].filter(
        (f): f is HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement =>
          (f instanceof HTMLInputElement || f instanceof HTMLSelectElement || f instanceof HTMLTextAreaElement) &&
          !!f.dataset.testid &&
          !KEPT_ELSEWHERE.has(f.dataset.testid),
      );
      for (const field of fields) {
        const testid = field.dataset.testid as string;
        const checkable = field instanceof HTMLInputElement && (field.type === "checkbox" || field.type === "radio");
        const value = kept[testid];
        if (checkable && typeof value === "boolean") field.checked = value;
        else if (typeof value === "string" && (!(field instanceof HTMLSelectElement) || [...field.options].some((o) => o.value === value))) {
          field.value = value;
        }
        const remember = (): void => {
          const values = this.actionInputs.get(id) ?? {};
          values[testid] = checkable ? (field as HTMLInputElement).checked : field.value;
          this.actionInputs.set(id, values);
        };
        field.addEventListener("input", remember);
        field.addEventListener("change", remember);
      }
    }
    return nodes;
  }

  /** The state of the conversation and what it allows: End / Hold or the wrap-up time and the
   * close form (mine), Take (a queue's, to pick), or the status (read only). */
  private stateNodes(v: View): HTMLElement[] {
    const t = this.ctx.t;
    const c = v.conversation;
    const id = c.id;
    const mineNow = c.assigned_user_id === this.ctx.me;
    const nodes: HTMLElement[] = [];

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
      // A campaign callback code asks when to call back, and for whom (me / anyone).
      const cbAt = el("input", { type: "datetime-local", "data-testid": "close-callback-at", "aria-label": t("op.callback_time") });
      const forMe = el("input", { type: "radio", name: `cb-for-${id}`, value: "me", "data-testid": "close-callback-me" });
      const forAnyone = el("input", { type: "radio", name: `cb-for-${id}`, value: "anyone", "data-testid": "close-callback-anyone" });
      const kept = this.closeForm?.id === id ? this.closeForm : null;
      cbAt.value = kept?.at ?? "";
      forMe.checked = kept?.forMe ?? true;
      forAnyone.checked = !forMe.checked;
      const closeError = el("div", { class: "form-error", "data-testid": "close-error" }, kept?.error ?? "");
      const remember = (error: string): void => {
        this.closeForm = { id, at: cbAt.value, forMe: forMe.checked, error };
      };
      for (const input of [cbAt, forMe, forAnyone]) {
        for (const kind of ["input", "change"]) input.addEventListener(kind, () => remember(closeError.textContent ?? ""));
      }
      const cbRow = el(
        "div",
        { class: "stack hidden", "data-testid": "close-callback" },
        el("label", {}, `${t("op.callback_time")} `, cbAt),
        el("div", { class: "row" }, el("label", {}, forMe, ` ${t("op.for_me")}`), el("label", {}, forAnyone, ` ${t("op.for_anyone")}`)),
      );
      const showCallback = (): void => {
        const rc = v.result_codes.find((x) => String(x.id) === codes.value);
        cbRow.classList.toggle("hidden", rc?.action !== "callback");
      };
      codes.addEventListener("change", showCallback);
      showCallback();
      // Keyboard: "c" focuses the list, the arrows pick a code, Enter closes (keymap.ts).
      codes.addEventListener("keydown", (ev) => enterClicks(ev, '[data-testid="close-submit"]', this.actions));
      nodes.push(
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
                closeError.textContent = "";
                remember("");
                if (!codes.value) {
                  toast(t("op.pick_result_code"));
                  return;
                }
                const callback = !cbRow.classList.contains("hidden");
                const ack = await this.act("close", {
                  conversation_id: id,
                  result_code_id: Number(codes.value),
                  ...(callback ? { callback_at: cbAt.value ? new Date(cbAt.value).toISOString() : null, for_me: forMe.checked } : {}),
                });
                if (ack.ok) {
                  this.closeForm = null;
                  this.applyConversation(ack.conversation as Conversation);
                  return;
                }
                // Into the form on screen now (an event may have redrawn the actions meanwhile), if
                // it is still this conversation's.
                const error = ack.detail || ack.error || "?";
                if (this.closeForm?.id === id) this.closeForm.error = error;
                const shown = this.view?.conversation.id === id ? this.actions.querySelector<HTMLElement>('[data-testid="close-error"]') : null;
                if (shown) shown.textContent = error;
              },
            },
            t("op.close"),
          ),
        ),
        cbRow,
        closeError,
      );
    } else if (c.status === "queued" && this.ctx.takeBlock(c) !== null) {
      const take = takeButton(c, (x) => this.ctx.takeBlock(x), t, async () => {
        const ack = await this.act("take", { conversation_id: id });
        if (ack.ok) void this.open(id);
      }, "primary");
      const reason = this.ctx.takeBlock(c);
      nodes.push(
        ...[take, reason ? el("p", { class: "take-reason", "data-testid": "take-reason" }, reason) : null].filter((n): n is HTMLElement => n !== null),
      );
    } else {
      nodes.push(el("p", { class: "muted", "data-testid": "read-only" }, t(`op.st.${c.status}`)));
    }
    return nodes;
  }

  private blacklistButton(id: number): HTMLElement {
    const t = this.ctx.t;
    return el(
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
    );
  }

  protected transferForm(id: number): HTMLElement {
    const t = this.ctx.t;
    const v = this.view as View;
    const voice = v.conversation.medium === "voice" && callIsLive(v.call);
    // A live call may also go to the IVR: a published scenario picks the caller up
    // (`call_transfer {to_scenario}`); blind only, an IVR has no one to consult.
    const scenarios = voice ? (v.bot_scenarios ?? []) : [];
    const kind = el(
      "select",
      { "data-testid": "transfer-kind", "aria-label": t("op.transfer_kind") },
      el("option", { value: "queue" }, t("op.to_queue")),
      el("option", { value: "operator" }, t("op.to_operator")),
      scenarios.length ? el("option", { value: "ivr" }, t("op.to_ivr")) : null,
    );
    const target = el("select", { "data-testid": "transfer-target", "aria-label": t("op.transfer_target") });
    const fill = (): void => {
      clear(target);
      if (kind.value === "ivr") {
        for (const s of scenarios) target.append(el("option", { value: s.key }, s.name));
        return;
      }
      const list = kind.value === "queue" ? v.transfer.queues : v.transfer.operators;
      for (const item of list) target.append(el("option", { value: item.id }, item.name));
    };
    target.addEventListener("keydown", (ev) => enterClicks(ev, '[data-testid="transfer-submit"]', this.actions));
    const attended = el("input", { type: "checkbox", "data-testid": "transfer-attended" });
    const attendedRow = el("label", { class: voice ? "" : "hidden" }, attended, ` ${t("op.attended")}`);
    const note = el("input", { placeholder: t("op.transfer_note"), "data-testid": "transfer-note" });
    const remember = (): void => {
      this.pickedTransfer = { id, kind: kind.value, target: target.value, note: note.value, attended: attended.checked };
    };
    kind.addEventListener("change", () => {
      fill();
      attended.disabled = kind.value !== "operator";
      if (attended.disabled) attended.checked = false;
      remember();
    });
    const kept = this.pickedTransfer?.id === id ? this.pickedTransfer : null;
    if (kept && [...kind.options].some((o) => o.value === kept.kind)) kind.value = kept.kind;
    fill();
    attended.disabled = kind.value !== "operator";
    if (kept && kept.kind === kind.value) {
      if ([...target.options].some((o) => o.value === kept.target)) target.value = kept.target;
      note.value = kept.note;
      attended.checked = kept.attended && !attended.disabled;
    }
    target.addEventListener("change", remember);
    note.addEventListener("input", remember);
    attended.addEventListener("change", remember);
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
          if (ack.ok) this.pickedTransfer = null;
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
  protected botForm(id: number, scenarios: { key: string; name: string }[]): HTMLElement {
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

  protected callbackForm(id: number): HTMLElement {
    const t = this.ctx.t;
    const due = el("input", { type: "datetime-local", "data-testid": "callback-due", "aria-label": t("op.callback_time") });
    const note = el("input", { placeholder: t("op.callback_note"), "data-testid": "callback-note" });
    const mine = el("input", { type: "checkbox", "data-testid": "callback-mine" });
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
            for (const field of [due, note]) {
              field.value = "";
              field.dispatchEvent(new Event("input")); // and forgotten (keepInputs)
            }
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
