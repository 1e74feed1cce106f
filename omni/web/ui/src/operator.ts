// The operator single window: status, offers, own conversations, the waiting line and the
// missed list on the left; the open conversation in the centre; card, script and actions on
// the right. Lists come from `snapshot` (server truth) and are refreshed as events arrive;
// the open conversation is updated from events directly. A reconnect replays what was missed
// (`resume` after the last seq seen), then reloads the lists and the open conversation.
import { Ack, Boot, boot, call, connect, el, translator } from "./common";
import { bindShortcuts, typingIn } from "./keys";
import { armOnFirstClick, beep, notify } from "./operator/alerts";
import { dialBox } from "./operator/call";
import { CampaignPanel } from "./operator/campaign";
import { ConversationPane } from "./operator/conversation";
import { OperatorKeys, operatorKeymap } from "./operator/keymap";
import { BulkSelection } from "./operator/bulk";
import { labelCatalogue } from "./operator/organise";
import { ConsoleSearch } from "./operator/search";
import { SlaBoard } from "./operator/sla";
import { Softphone } from "./operator/softphone";
import { StatsPanel } from "./operator/stats";
import { LeftHandlers, renderCallbacks, renderMine, renderOffers, renderStatus, renderWaiting } from "./operator/left";
import {
  Callback,
  Conversation,
  DialQueue,
  Message,
  Offer,
  OfferWhy,
  Presence,
  Snapshot,
  StatusOption,
  WireEvent,
  isCallback,
} from "./operator/types";
import { failed, tick, toast } from "./operator/ui";

const data: Boot = boot();
const t = translator(data.strings);
const me = data.user.id;
const statuses = (data.statuses as StatusOption[] | undefined) ?? [];
const dialQueues = (data.dial_queues as DialQueue[] | undefined) ?? [];
const REFRESH_DELAY_MS = 200;

const state = {
  presence: null as Presence | null,
  mine: [] as Conversation[],
  offers: [] as Offer[],
  waiting: [] as Conversation[],
  callbacks: [] as Callback[],
  unread: new Set<number>(),
  seenOffers: new Set<number>(),
  /** Offers whose accept/decline is on its way to the server. */
  answering: new Set<number>(),
  /** Offers this window has answered: a snapshot read before the answer can't bring them back. */
  answered: new Set<number>(),
  lastSeq: 0,
  loaded: false,
};

const root = document.getElementById("app") as HTMLElement;
root.classList.add("op-window");
const banner = el("div", { class: "connection hidden", "data-testid": "connection" });
const statusBox = el("section", { class: "panel panel-status", "data-testid": "status" });
const offersBox = el("div", {});
const mineBox = el("div", {});
const waitingBox = el("div", {});
const callbacksBox = el("div", {});
const dialSlot = el("div", {});
const stats = new StatsPanel(t);
const socket = connect("/operator");
// Reply deadlines: my chats and my queues' waiting ones alert me once per breach.
const sla = new SlaBoard(t, "op.", (s) => s.user_id === me || s.user_id === null, (text, s) => {
  beep();
  notify(text, "", () => void openConversation(s.conversation_id));
});
const campaigns = new CampaignPanel(socket, t, data.lang);
const softphone = new Softphone(socket, t, () => pane.phoneChanged());
// Search in the console: a hit opens its conversation here, at the message (read-only if not mine).
const finder = new ConsoleSearch(t, data.lang, (hit) => {
  if (hit.conversation_id !== null) void openConversation(hit.conversation_id, { messageId: hit.message_id });
});
// Selection mode of my conversations: bulk actions with a report of what could not be done.
const bulk: BulkSelection = new BulkSelection(socket, t, data.lang, () => renderMineNow(), () => scheduleRefresh());
function renderMineNow(): void {
  renderMine(mineBox, state.mine, pane.id, state.unread, t, handlers, bulk);
}
// The list's label chips need the names and colours before any conversation is opened.
void labelCatalogue({ socket }).then(() => renderMineNow());
const left = el("aside", { class: "op-left" }, statusBox, finder.box, softphone.box, dialSlot, campaigns.box, offersBox, mineBox, waitingBox, callbacksBox, stats.box);
const centre = el("section", { class: "op-centre" });
const right = el("aside", { class: "op-right" });
root.append(banner, el("div", { class: "op-columns" }, left, centre, right));

/** Why Take is not possible (see left.ts ``TakeBlock``): the queue, the status, the capacity.
 * ``fits`` comes from the server with every waiting item (the snapshot is re-read on every
 * change of the operator's own conversations and offers), so the button follows capacity live. */
function takeBlock(c: Conversation): string | null {
  if (!c.manual_pick || c.status !== "queued") return null;
  const status = statuses.find((s) => s.code === state.presence?.status);
  if (!status) return null;
  const voice = c.medium === "voice";
  if (!(voice ? status.receives_voice : status.receives_chats)) {
    return t(voice ? "op.take_status_calls" : "op.take_status_chats", { status: status.name });
  }
  const listed = state.waiting.find((w) => w.id === c.id);
  if ((listed ?? c).fits === false) return t("op.take_no_capacity");
  return "";
}

function currentFromHash(): number | null {
  const match = /^#c=(\d+)$/.exec(location.hash);
  return match ? Number(match[1]) : null;
}

const pane: ConversationPane = new ConversationPane(
  {
    t,
    lang: data.lang,
    me,
    socket,
    changed: () => scheduleRefresh(),
    closed: () => {
      pane.reset();
      history.replaceState(null, "", location.pathname);
      scheduleRefresh();
    },
    takeBlock: (c: Conversation): string | null => takeBlock({ ...c, manual_pick: pane.view?.queue?.manual_pick ?? false }),
    dialQueues,
    dial: (number, queueId) => void dial(number, queueId),
    technicalVariables: (data.technical_variables as string[] | undefined) ?? [],
    phone: softphone,
  },
  centre,
  right,
);

/** Click-to-call: the operator's phone rings first, then the customer's; the new voice
 * conversation (already the operator's) opens at once. */
async function dial(number: string, queueId: number): Promise<void> {
  if (softphone.enabled()) softphone.expectOwnCall(); // the first leg rings this window
  const ack = await call(socket, "click_to_call", { number, queue_id: queueId });
  if (!ack.ok) {
    failed(t, ack);
    return;
  }
  toast(t("op.calling"), "info");
  await openConversation(Number(ack.conversation_id));
  scheduleRefresh();
}

if (dialQueues.length) dialSlot.append(dialBox(dialQueues, t, (number, queueId) => void dial(number, queueId)));

/** A ringing call shows its caller's card and history at once (answering is on the phone),
 * unless the operator is in the middle of another conversation. */
function showRingingCall(offer: Offer): void {
  if (offer.conversation?.medium !== "voice" || isCallback(offer.conversation)) return;
  const open = pane.view?.conversation;
  const busy = open && open.id !== offer.conversation_id && open.assigned_user_id === me && open.status !== "closed";
  if (!busy && pane.id !== offer.conversation_id) void openConversation(offer.conversation_id);
}

async function openConversation(id: number, hit?: { messageId: number | null }): Promise<void> {
  state.unread.delete(id);
  if (await pane.open(id, hit)) {
    history.replaceState(null, "", `#c=${id}`);
  } else if (pane.id === null) {
    history.replaceState(null, "", location.pathname);
  }
  renderLeft();
}

const handlers: LeftHandlers = {
  answerHint: () => t(softphone.enabled() ? "op.answer_in_softphone" : "op.answer_on_phone"),
  setStatus: async (code) => {
    const ack = await call(socket, "set_status", { status: code });
    if (!ack.ok) failed(t, ack);
    else state.presence = ack.presence as Presence;
    renderStatus(statusBox, state.presence, statuses, t, handlers);
    renderWaiting(waitingBox, state.waiting, takeBlock, t, handlers);
    pane.takeMayHaveChanged();
  },
  accept: async (offer) => {
    // One answer per offer: a double click (or the notification and the button) must not send
    // a second one; the card stays, disabled, until the server has answered.
    if (state.answering.has(offer.id)) return;
    state.answering.add(offer.id);
    renderOffers(offersBox, state.offers, t, handlers, state.answering);
    const ack = await call(socket, "accept", { offer_id: offer.id });
    state.answering.delete(offer.id);
    if (!ack.ok && ack.error === "timeout") {
      await noAnswer(offer, ack);
      return;
    }
    state.answered.add(offer.id);
    state.offers = state.offers.filter((o) => o.id !== offer.id);
    renderLeft();
    if (!ack.ok) failed(t, ack);
    else await openConversation(offer.conversation_id);
    scheduleRefresh();
  },
  decline: async (offer) => {
    if (state.answering.has(offer.id)) return;
    state.answering.add(offer.id);
    renderOffers(offersBox, state.offers, t, handlers, state.answering);
    const ack = await call(socket, "decline", { offer_id: offer.id });
    state.answering.delete(offer.id);
    if (!ack.ok && ack.error === "timeout") {
      await noAnswer(offer, ack);
      return;
    }
    state.answered.add(offer.id);
    state.offers = state.offers.filter((o) => o.id !== offer.id);
    renderLeft();
    if (!ack.ok) failed(t, ack);
    scheduleRefresh();
  },
  open: (id) => {
    // A click on the conversation already open keeps it as it is: re-reading it would redraw
    // the thread under the operator (scroll, selection) for nothing; live events keep it fresh.
    if (id === pane.id) {
      state.unread.delete(id);
      renderMineNow();
    } else void openConversation(id);
  },
  take: async (id) => {
    const ack = await call(socket, "take", { conversation_id: id });
    if (!ack.ok) failed(t, ack);
    else await openConversation(id);
    scheduleRefresh();
  },
  claimCallback: async (cb) => {
    const ack = await call(socket, "claim_callback", { callback_id: cb.id });
    if (!ack.ok) failed(t, ack);
    else if (cb.conversation_id) await openConversation(cb.conversation_id);
    scheduleRefresh();
  },
  finishCallback: async (cb, done) => {
    const ack = await call(socket, "finish_callback", { callback_id: cb.id, done });
    if (!ack.ok) failed(t, ack);
    scheduleRefresh();
  },
};

/** What the keyboard shortcuts do (operator/keymap.ts lists them, with their keys). */
const keys: OperatorKeys = {
  acceptOffer: () => {
    // The first offer that can be accepted here (a ringing call is answered on the phone).
    const offer = state.offers.find((o) => !state.answering.has(o.id) && (o.conversation?.medium !== "voice" || isCallback(o.conversation)));
    if (offer) void handlers.accept(offer);
    return Boolean(offer);
  },
  declineOffer: () => {
    const offer = state.offers.find((o) => !state.answering.has(o.id));
    if (offer) void handlers.decline(offer);
    return Boolean(offer);
  },
  nextConversation: (step) => {
    const list = state.mine;
    if (!list.length) return false;
    const at = list.findIndex((c) => c.id === pane.id);
    const next = at < 0 ? (step > 0 ? 0 : list.length - 1) : (at + step + list.length) % list.length;
    void openConversation(list[next].id);
    return true;
  },
  reply: () => pane.focusComposer(),
  cannedPicker: () => pane.cannedPicker(),
  toggleNote: () => pane.toggleNote(),
  hold: () => pane.keyHold(),
  end: () => pane.keyEnd(),
  closeWithCode: () => pane.keyClose(),
  transfer: () => pane.keyTransfer(),
  leaveField: () => {
    const active = document.activeElement;
    if (!typingIn(active)) return false;
    (active as HTMLElement).blur();
    return true;
  },
  unavailable: (label) => {
    toast(t("op.kb.unavailable", { action: label }), "info");
    return true;
  },
};
bindShortcuts(t, (overlay) => operatorKeymap(t, keys, overlay));

function renderLeft(): void {
  pane.takeMayHaveChanged();
  renderStatus(statusBox, state.presence, statuses, t, handlers);
  renderOffers(offersBox, state.offers, t, handlers, state.answering);
  renderMineNow();
  renderWaiting(waitingBox, state.waiting, takeBlock, t, handlers);
  renderCallbacks(callbacksBox, state.callbacks, me, t, handlers);
}

function announce(offer: Offer): void {
  if (state.seenOffers.has(offer.id)) return;
  state.seenOffers.add(offer.id);
  if (!state.loaded) return;
  beep();
  const c = offer.conversation;
  notify(t("op.new_offer"), c?.contact_name || `#${offer.conversation_id}`, () => void handlers.accept(offer));
}

/** Bumped per snapshot asked for: an older answer arriving after a newer one (two refreshes in
 * flight, answered out of order) must not bring back an offer already accepted. */
let refreshSeq = 0;

async function refresh(): Promise<void> {
  const seq = ++refreshSeq;
  const ack: Ack = await call(socket, "snapshot");
  if (seq !== refreshSeq) return;
  if (!ack.ok) {
    failed(t, ack);
    return;
  }
  const snap = ack as unknown as Snapshot;
  state.presence = snap.presence;
  state.mine = snap.conversations;
  state.offers = snap.offers.filter((o) => !state.answered.has(o.id));
  state.waiting = snap.waiting;
  state.callbacks = snap.callbacks;
  state.lastSeq = Math.max(state.lastSeq, snap.last_seq);
  snap.offers.forEach(announce);
  if (!state.loaded) snap.offers.forEach(showRingingCall); // e.g. a reload while the phone rings
  state.loaded = true;
  renderLeft();
}

/** An accept or decline the server did not answer in time: it may never have arrived, or still
 * be on its way, so the offer is not taken as answered (that hid its card for good, while the
 * server still offered it). The lists are read again: an offer still pending comes back to be
 * answered again (an accept repeated is answered with the conversation); one accepted meanwhile
 * opens, as the answer would have. */
async function noAnswer(offer: Offer, ack: Ack): Promise<void> {
  await refresh();
  // "Mine" lists the conversations offered to me too: taken only once it is no longer offered.
  if (state.mine.some((c) => c.id === offer.conversation_id && c.status !== "offered")) await openConversation(offer.conversation_id);
  else {
    renderLeft();
    failed(t, ack);
  }
}

let refreshTimer = 0;
function scheduleRefresh(): void {
  window.clearTimeout(refreshTimer);
  refreshTimer = window.setTimeout(() => void refresh(), REFRESH_DELAY_MS);
}

function apply(e: WireEvent): void {
  state.lastSeq = Math.max(state.lastSeq, e.seq);
  sla.apply(e);
  if (e.type === "conversation.offered" && e.user_id === me) {
    const d = e.data;
    const offer: Offer = {
      id: d.offer_id,
      conversation_id: d.id,
      expires_at: d.expires_at,
      conversation: d,
      why: (d.why as OfferWhy | null | undefined) ?? null,
    };
    // An offer already answered here stays answered: its event may come late (a resume
    // replays it), and must not bring back a card the server no longer offers.
    if (!state.answered.has(offer.id) && !state.offers.some((o) => o.id === offer.id)) state.offers.push(offer);
    renderOffers(offersBox, state.offers, t, handlers, state.answering);
    announce(offer);
    showRingingCall(offer);
  }
  if (e.type === "conversation.accepted" && e.user_id === me && e.data.variables?.campaign_id !== undefined && pane.id === null) {
    // A campaign call the customer answered: its card opens at once (as click-to-call does).
    void openConversation(e.data.id);
  }
  if (e.type.startsWith("conversation.")) {
    pane.applyConversation(e.data as Conversation);
    pane.threadChanged((e.data as Conversation).id);
    scheduleRefresh();
    // My statistics change when one of my conversations closes or its customer rates it.
    if ((e.type === "conversation.closed" || e.type === "conversation.rated") && (e.data as Conversation).assigned_user_id === me) {
      void stats.refresh();
    }
  } else if (e.type === "message.created") {
    const msg = e.data as Message;
    pane.threadChanged(msg.conversation_id);
    const shown = pane.applyMessage(msg); // or kept for the conversation being opened
    if (!shown && msg.direction === "in" && state.mine.some((c) => c.id === msg.conversation_id)) {
      state.unread.add(msg.conversation_id);
      renderMineNow();
    }
  } else if (e.type === "message.delivery") {
    pane.applyDelivery(e.data.message_id, e.data.delivery);
  } else if ((e.type === "presence.changed" || e.type === "presence.over_limit") && e.user_id === me) {
    state.presence = { ...(state.presence as Presence), ...e.data };
    if (e.type === "presence.over_limit") state.presence.over_limit = true;
    renderStatus(statusBox, state.presence, statuses, t, handlers);
    renderWaiting(waitingBox, state.waiting, takeBlock, t, handlers);
    pane.takeMayHaveChanged();
  } else if (e.type.startsWith("campaign.") && e.user_id === me) {
    // A preview reserved for me, its end, or a result I gave: the campaign panel from the server.
    void campaigns.refresh();
  } else if (e.type === "admin.changed" && e.user_id === me && e.data.entity === "user") {
    // An admin edited me (e.g. desk phone ↔ browser): the softphone follows at once.
    void softphone.start();
  } else if (e.type.startsWith("callback.") || e.type === "queue.members_changed") {
    // A queue joined or left (an admin changed its members): the lists come from the server.
    scheduleRefresh();
  }
}

socket.on("event", (e: WireEvent) => apply(e));
socket.on("typing", (d: { conversation_id: number; who: string; typing: boolean }) => {
  if (d.who === "customer" && d.conversation_id === pane.id) pane.showTyping(d.typing);
});
/** After a reconnect, or a `sync` from the server (its Redis link had a hole while this socket
 * stayed up): replay what follows the last seq, then reload the lists and the open
 * conversation from the server, which also covers events older than the last one seen. */
async function resync(): Promise<void> {
  if (state.loaded && state.lastSeq) {
    const ack = await call(socket, "resume", { after: state.lastSeq });
    if (ack.ok) for (const e of ack.events as WireEvent[]) apply(e);
  }
  await refresh();
  void sla.load();
  void stats.refresh();
  void campaigns.refresh();
  const id = pane.id ?? currentFromHash();
  if (id !== null) await openConversation(id);
}

socket.on("connect", async () => {
  banner.classList.add("hidden");
  void softphone.start();
  await resync();
});
socket.on("sync", () => void resync());
socket.on("disconnect", () => {
  banner.textContent = t("op.reconnecting");
  banner.classList.remove("hidden");
});
socket.on("connect_error", () => {
  banner.textContent = t("op.reconnecting");
  banner.classList.remove("hidden");
});
window.addEventListener("hashchange", () => {
  const id = currentFromHash();
  if (id !== null && id !== pane.id) void openConversation(id);
});

armOnFirstClick();
window.setInterval(() => {
  tick(document);
  sla.decorate(document);
}, 1000);
root.setAttribute("data-user", String(me));
