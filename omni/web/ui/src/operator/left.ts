// The left column: status, offers, my conversations, the waiting line, missed/callbacks.
import { clear, el } from "../common";
import { Callback, Conversation, Offer, Presence, StatusOption, channelIcon } from "./types";
import { T, addSeconds, since, until } from "./ui";

export interface LeftHandlers {
  setStatus(code: string): void;
  accept(offer: Offer): void;
  decline(offer: Offer): void;
  open(conversationId: number): void;
  take(conversationId: number): void;
  claimCallback(cb: Callback): void;
  finishCallback(cb: Callback, done: boolean): void;
}

function section(testid: string, title: string, count: number | null, ...body: Node[]): HTMLElement {
  return el(
    "section",
    { class: `panel panel-${testid}`, "data-testid": testid },
    el("h3", {}, title, count !== null ? el("span", { class: "badge" }, String(count)) : null),
    ...body,
  );
}

function who(c: Conversation, t: T): string {
  return c.contact_name || t("op.customer_n", { id: c.contact_id });
}

export function renderStatus(
  box: HTMLElement,
  presence: Presence | null,
  statuses: StatusOption[],
  t: T,
  h: LeftHandlers,
): void {
  clear(box);
  if (!presence) return;
  const current = statuses.find((s) => s.code === presence.status);
  const select = el("select", {
    "data-testid": "status-select",
    "aria-label": t("op.status"),
    onchange: (ev: Event) => h.setStatus((ev.target as HTMLSelectElement).value),
  });
  for (const s of statuses) {
    if (!s.selectable && s.code !== presence.status) continue;
    const opt = el("option", { value: s.code, disabled: !s.selectable }, s.name);
    opt.selected = s.code === presence.status;
    select.append(opt);
  }
  const limit = current?.max_duration_seconds || 0;
  const timer = since(presence.since, { "data-testid": "status-time", ...(limit ? { "data-limit": limit } : {}) });
  if (presence.over_limit) timer.classList.add("over-limit");
  const activity =
    presence.activity && presence.activity !== presence.status
      ? el("span", { class: `badge activity-${presence.activity}`, "data-testid": "activity" }, t(`op.activity.${presence.activity}`))
      : null;
  box.append(
    el(
      "div",
      { class: "status-row" },
      el("span", { class: "dot", style: `background:${/^#[0-9a-fA-F]{3,8}$/.test(presence.colour) ? presence.colour : "#888"}` }),
      select,
      timer,
      activity,
    ),
  );
}

export function renderOffers(box: HTMLElement, offers: Offer[], t: T, h: LeftHandlers): void {
  clear(box);
  if (!offers.length) return;
  box.append(
    section(
      "offers",
      t("op.offers"),
      offers.length,
      ...offers.map((o) => {
        const c = o.conversation;
        return el(
          "div",
          { class: "offer", "data-testid": "offer", "data-conversation": o.conversation_id },
          el("span", { class: "icon" }, channelIcon(c?.channel, c?.medium)),
          el("span", { class: "grow" }, c ? who(c, t) : `#${o.conversation_id}`, c?.queue_name ? el("small", { class: "muted" }, ` · ${c.queue_name}`) : null),
          until(o.expires_at, { "data-testid": "offer-countdown" }),
          c?.medium === "voice"
            ? el("span", { class: "answer-hint", "data-testid": "answer-on-phone" }, `☎ ${t("op.answer_on_phone")}`)
            : el("button", { class: "primary", "data-testid": "offer-accept", onclick: () => h.accept(o) }, t("op.accept")),
          el("button", { "data-testid": "offer-decline", onclick: () => h.decline(o) }, t("op.decline")),
        );
      }),
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
): void {
  clear(box);
  const items = mine.map((c) =>
    el(
      "div",
      {
        class: `conv-item${c.id === current ? " current" : ""}${unread.has(c.id) ? " unread" : ""}`,
        "data-testid": "conversation-item",
        "data-id": c.id,
        "data-status": c.status,
        onclick: () => h.open(c.id),
      },
      el("span", { class: "icon" }, channelIcon(c.channel, c.medium)),
      el("span", { class: "grow" }, who(c, t)),
      unread.has(c.id) ? el("span", { class: "unread-dot", "data-testid": "unread", title: t("op.unread") }) : null,
      c.status === "wrap_up"
        ? until(addSeconds(c.wrap_up_at, c.wrap_up_seconds || 0), { "data-testid": "wrap-up-countdown" })
        : el("small", { class: `st st-${c.status}` }, t(`op.st.${c.status}`)),
    ),
  );
  box.append(section("mine", t("op.mine"), mine.length, ...(items.length ? items : [el("p", { class: "muted" }, t("op.none"))])));
}

export function renderWaiting(
  box: HTMLElement,
  waiting: Conversation[],
  canTake: (c: Conversation) => boolean,
  t: T,
  h: LeftHandlers,
): void {
  clear(box);
  const items = waiting.map((c) =>
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
      canTake(c) ? el("button", { "data-testid": "take", onclick: () => h.take(c.id) }, t("op.take")) : null,
    ),
  );
  box.append(section("queue", t("op.queue"), waiting.length, ...(items.length ? items : [el("p", { class: "muted" }, t("op.queue_empty"))])));
}

export function renderCallbacks(box: HTMLElement, callbacks: Callback[], me: number, t: T, h: LeftHandlers): void {
  clear(box);
  const items = callbacks.map((cb) => {
    const mine = cb.state === "claimed" && cb.claimed_by_id === me;
    return el(
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
    );
  });
  box.append(section("callbacks", t("op.callbacks"), callbacks.length, ...(items.length ? items : [el("p", { class: "muted" }, t("op.none"))])));
}
