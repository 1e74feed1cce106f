// The left column: status, offers, my conversations, the waiting line, missed/callbacks.
import { PartSpec, clear, el, keepParts } from "../common";
import { icon } from "../icons";
import { whyText } from "../why";
import { Callback, Conversation, Offer, Presence, StatusOption, channelIcon, isCallback } from "./types";
import { T, addSeconds, since, until } from "./ui";
import { knownLabels, labelChips } from "./organise";
import type { BulkSelection } from "./bulk";

export interface LeftHandlers {
  /** Where a ringing call is answered (the desk phone, or this window's softphone). */
  answerHint?: () => string;
  setStatus(code: string): void;
  accept(offer: Offer): void;
  decline(offer: Offer): void;
  open(conversationId: number): void;
  take(conversationId: number): void;
  claimCallback(cb: Callback): void;
  finishCallback(cb: Callback, done: boolean): void;
}

/** A list section redrawn on every event and snapshot, item by item: an item (an offer, a
 * conversation, a callback) whose facts did not change keeps its nodes. Rebuilding the whole
 * list lost clicks: a press and release that straddle a redraw reach two different buttons, so
 * an Accept or Take clicked as an unrelated event arrived did nothing. ``parts`` come after the
 * heading, which is a part too (its title and count). */
function keptSection(box: HTMLElement, testid: string, title: string, count: number, parts: PartSpec[]): void {
  let panel = box.firstElementChild as HTMLElement | null;
  if (!panel || panel.dataset.testid !== testid || box.childNodes.length !== 1) {
    clear(box);
    panel = el("section", { class: `panel panel-${testid}`, "data-testid": testid });
    box.append(panel);
  }
  const heading: PartSpec = {
    name: "heading",
    facts: [title, count],
    build: () => [el("h3", {}, title, el("span", { class: "badge" }, String(count)))],
  };
  keepParts(panel, [heading, ...parts]);
}

/** The "nothing here" line of a section, as a part. */
function nonePart(text: string): PartSpec {
  return { name: "none", facts: text, build: () => [el("p", { class: "muted" }, text)] };
}

function who(c: Conversation, t: T): string {
  return c.contact_name || t("op.customer_n", { id: c.contact_id });
}

/** The status row, part by part: the select is kept while the statuses and the current one
 * stay the same, so an offer arriving (which changes the activity badge and asks for a snapshot)
 * does not take the focus or an open list from under an operator about to pick a status. */
export function renderStatus(
  box: HTMLElement,
  presence: Presence | null,
  statuses: StatusOption[],
  t: T,
  h: LeftHandlers,
): void {
  if (!presence) {
    clear(box);
    return;
  }
  let row = box.firstElementChild as HTMLElement | null;
  if (!row || !row.classList.contains("status-row") || box.childNodes.length !== 1) {
    clear(box);
    row = el("div", { class: "status-row" });
    box.append(row);
  }
  const current = statuses.find((s) => s.code === presence.status);
  const colour = /^#[0-9a-fA-F]{3,8}$/.test(presence.colour) ? presence.colour : "#888";
  const choices = statuses.filter((s) => s.selectable || s.code === presence.status);
  const limit = current?.max_duration_seconds || 0;
  const activity = presence.activity && presence.activity !== presence.status ? presence.activity : null;
  keepParts(row, [
    { name: "dot", facts: colour, build: () => [el("span", { class: "dot", style: `background:${colour}` })] },
    {
      name: "select",
      facts: [choices.map((s) => [s.code, s.name, s.selectable]), presence.status, t("op.status")],
      build: () => {
        const select = el("select", {
          "data-testid": "status-select",
          "aria-label": t("op.status"),
          onchange: (ev: Event) => h.setStatus((ev.target as HTMLSelectElement).value),
        });
        for (const s of choices) {
          const opt = el("option", { value: s.code, disabled: !s.selectable }, s.name);
          opt.selected = s.code === presence.status;
          select.append(opt);
        }
        return [select];
      },
    },
    {
      name: "timer",
      facts: [presence.since, limit, presence.over_limit],
      build: () => {
        const timer = since(presence.since, { "data-testid": "status-time", ...(limit ? { "data-limit": limit } : {}) });
        if (presence.over_limit) timer.classList.add("over-limit");
        return [timer];
      },
    },
    {
      name: "activity",
      facts: activity ? t(`op.activity.${activity}`) : null,
      build: () =>
        activity ? [el("span", { class: `badge activity-${activity}`, "data-testid": "activity" }, t(`op.activity.${activity}`))] : [],
    },
  ]);
  // A kept select shows what the server says: a pick it refused goes back to the status held.
  const select = row.querySelector<HTMLSelectElement>("[data-testid=status-select]");
  if (select && select.value !== presence.status) select.value = presence.status;
}

/** Offer cards: the customer's full name on its own line (never squeezed by the buttons),
 * then the countdown and Accept/Decline. ``pending`` offers have an answer on its way: their
 * buttons are disabled so a second click can't send a second answer. */
export function renderOffers(
  box: HTMLElement,
  offers: Offer[],
  t: T,
  h: LeftHandlers,
  pending: ReadonlySet<number> = new Set(),
): void {
  if (!offers.length) {
    clear(box);
    return;
  }
  const parts = offers.map((o): PartSpec => {
    const busy = pending.has(o.id);
    return {
      name: `offer-${o.id}`,
      // What the card shows, not the whole offer: the snapshot's copy of an offer and the live
      // event's differ in fields the card never reads, and must not redraw it.
      facts: offerFacts(o, busy, t, h),
      build: () => [offerCard(o, busy, t, h)],
    };
  });
  keptSection(box, "offers", t("op.offers"), offers.length, parts);
}

function offerFacts(o: Offer, busy: boolean, t: T, h: LeftHandlers): unknown[] {
  const c = o.conversation;
  const phone = c?.medium === "voice" && !isCallback(c);
  return [o.id, o.conversation_id, o.expires_at, c ? who(c, t) : null, c?.channel, c?.medium, c?.queue_name, o.why ? [o.why.rule, whyText(o.why, t)] : null, phone ? h.answerHint?.() : t("op.accept"), busy];
}

function offerCard(o: Offer, busy: boolean, t: T, h: LeftHandlers): HTMLElement {
  const c = o.conversation;
  return el(
    "div",
    { class: "offer", "data-testid": "offer", "data-conversation": o.conversation_id, "aria-busy": busy ? "true" : "false" },
    el(
      "div",
      { class: "offer-who" },
      el("span", { class: "icon" }, channelIcon(c?.channel, c?.medium)),
      el("span", { class: "offer-name", "data-testid": "offer-name" }, c ? who(c, t) : `#${o.conversation_id}`),
      until(o.expires_at, { "data-testid": "offer-countdown" }),
    ),
    c?.queue_name ? el("div", { class: "offer-queue muted", "data-testid": "offer-queue" }, c.queue_name) : null,
    o.why ? el("div", { class: "offer-why muted", "data-testid": "offer-why", "data-rule": o.why.rule }, whyText(o.why, t)) : null,
    el(
      "div",
      { class: "offer-buttons" },
      c?.medium === "voice" && !isCallback(c)
        ? el("span", { class: "answer-hint", "data-testid": "answer-on-phone" }, icon("voice"), ` ${h.answerHint?.() ?? t("op.answer_on_phone")}`)
        : el("button", { class: "primary", "data-testid": "offer-accept", disabled: busy, onclick: () => h.accept(o) }, t("op.accept")),
      el("button", { "data-testid": "offer-decline", disabled: busy, onclick: () => h.decline(o) }, t("op.decline")),
    ),
  );
}

export function renderMine(
  box: HTMLElement,
  mine: Conversation[],
  current: number | null,
  unread: Set<number>,
  t: T,
  h: LeftHandlers,
  bulk?: BulkSelection,
): void {
  const selecting = bulk?.active === true;
  bulk?.sync(mine);
  const labels = knownLabels();
  const items = mine.map(
    (c): PartSpec => ({
      name: `conversation-${c.id}`,
      facts: [
        who(c, t),
        c.channel,
        c.medium,
        c.status,
        c.status === "wrap_up" ? addSeconds(c.wrap_up_at, c.wrap_up_seconds || 0) : t(`op.st.${c.status}`),
        c.label_ids?.length ? [c.label_ids, labels] : null,
        c.id === current,
        unread.has(c.id),
        selecting,
        selecting && bulk?.selected.has(c.id),
      ],
      build: () => [
        el(
          "div",
          {
            class: `conv-item${c.id === current ? " current" : ""}${unread.has(c.id) ? " unread" : ""}`,
            "data-testid": "conversation-item",
            "data-id": c.id,
            "data-status": c.status,
            onclick: () => h.open(c.id),
          },
          selecting && bulk ? bulk.checkbox(c) : null,
          el("span", { class: "icon" }, channelIcon(c.channel, c.medium)),
          el("span", { class: "grow" }, who(c, t)),
          c.label_ids?.length ? labelChips(labels, c.label_ids) : null,
          unread.has(c.id) ? el("span", { class: "unread-dot", "data-testid": "unread", title: t("op.unread") }) : null,
          c.status === "wrap_up"
            ? until(addSeconds(c.wrap_up_at, c.wrap_up_seconds || 0), { "data-testid": "wrap-up-countdown" })
            : el("small", { class: `st st-${c.status}` }, t(`op.st.${c.status}`)),
        ),
      ],
    }),
  );
  const withTools = Boolean(bulk && (mine.length || selecting));
  const tools: PartSpec = {
    name: "tools",
    facts: [withTools, selecting, t("op.bulk_select")],
    build: () => (bulk && withTools ? [bulk.toggle(), ...(selecting ? [bulk.bar] : []), bulk.report] : []),
  };
  keptSection(box, "mine", t("op.mine"), mine.length, [tools, ...(items.length ? items : [nonePart(t("op.none"))])]);
}

/** Why the operator can't take ``c`` by hand right now: ``null`` = the queue has no manual
 * pick (no button at all), ``""`` = they can, any other text = the reason (button disabled). */
export type TakeBlock = (c: Conversation) => string | null;

export function takeButton(c: Conversation, block: TakeBlock, t: T, onTake: () => void, cls = ""): HTMLElement | null {
  const reason = block(c);
  if (reason === null) return null;
  return el(
    "button",
    {
      class: cls,
      "data-testid": "take",
      disabled: reason !== "",
      title: reason,
      "aria-disabled": reason !== "" ? "true" : "false",
      onclick: () => {
        if (!block(c)) onTake();
      },
    },
    t("op.take"),
  );
}

export function renderWaiting(
  box: HTMLElement,
  waiting: Conversation[],
  block: TakeBlock,
  t: T,
  h: LeftHandlers,
): void {
  const reasons = new Set<string>();
  const items = waiting.map((c): PartSpec => {
    const reason = block(c);
    if (reason) reasons.add(reason);
    return {
      name: `waiting-${c.id}`,
      facts: [who(c, t), c.channel, c.medium, c.queue_name, c.position, c.first_enqueued_at || c.created_at, reason, t("op.take")],
      build: () => [
        el(
          "div",
          { class: "queue-item", "data-testid": "queue-item", "data-id": c.id },
          el("span", { class: "icon" }, channelIcon(c.channel, c.medium)),
          el(
            "span",
            { class: "grow" },
            who(c, t),
            el("small", { class: "muted" }, ` · ${c.queue_name || ""} · ${t("op.position", { n: c.position || 0 })}`),
          ),
          since(c.first_enqueued_at || c.created_at, { "data-testid": "wait-time" }),
          takeButton(c, block, t, () => h.take(c.id)),
        ),
      ],
    };
  });
  // Why Take is greyed out, said once above the line (a disabled button shows no tooltip on touch).
  const notes: PartSpec = {
    name: "notes",
    facts: [...reasons],
    build: () => [...reasons].map((r) => el("p", { class: "take-reason", "data-testid": "take-reason" }, r)),
  };
  keptSection(box, "queue", t("op.queue"), waiting.length, [notes, ...(items.length ? items : [nonePart(t("op.queue_empty"))])]);
}

export function renderCallbacks(box: HTMLElement, callbacks: Callback[], me: number, t: T, h: LeftHandlers): void {
  const items = callbacks.map((cb): PartSpec => {
    const mine = cb.state === "claimed" && cb.claimed_by_id === me;
    return {
      name: `callback-${cb.id}`,
      facts: [cb.contact_name, cb.contact_phone, cb.contact_id, cb.channel, cb.reason, cb.due_at, cb.note, cb.conversation_id, mine, t("op.take_callback")],
      build: () => [
        el(
          "div",
          { class: `cb-item${mine ? " mine" : ""}`, "data-testid": "callback-item", "data-id": cb.id },
          el("span", { class: "icon" }, channelIcon(cb.channel)),
          el(
            "span",
            { class: "grow clickable", onclick: () => cb.conversation_id && h.open(cb.conversation_id) },
            cb.contact_name || cb.contact_phone || t("op.customer_n", { id: cb.contact_id }),
            el("small", { class: "muted" }, ` · ${t(`op.reason.${cb.reason}`)}`),
            cb.due_at ? el("small", { class: "muted" }, ` · ${new Date(cb.due_at).toLocaleString()}`) : null,
            cb.note ? el("div", { class: "cb-note" }, cb.note) : null,
          ),
          mine
            ? el(
                "span",
                {},
                el("button", { "data-testid": "callback-done", onclick: () => h.finishCallback(cb, true) }, t("op.done")),
                el("button", { "data-testid": "callback-release", onclick: () => h.finishCallback(cb, false) }, t("op.release")),
              )
            : el("button", { "data-testid": "take-callback", onclick: () => h.claimCallback(cb) }, t("op.take_callback")),
        ),
      ],
    };
  });
  keptSection(box, "callbacks", t("op.callbacks"), callbacks.length, items.length ? items : [nonePart(t("op.none"))]);
}
