// Supervisor live monitoring: a snapshot from `monitor`, then pushed events. Events patch what
// they carry (presence) and ask for a fresh snapshot at most once a second; nothing polls.
// Time counters tick in the browser, corrected for the server's clock.
import { boot, call, clear, connect, el, translator } from "./common";
import type { Ack } from "./common";
import { bindShortcuts } from "./keys";
import { Softphone } from "./operator/softphone";
import { SlaBoard } from "./operator/sla";
import { CampaignsView } from "./supervisor/campaigns";
import { OrganiseView } from "./supervisor/organise";
import type { LabelInfo } from "./operator/organise";
import { debounced } from "./supervisor/format";
import { supervisorKeymap } from "./supervisor/keymap";
import type {
  CurrentConversation,
  OperatorRow,
  PresenceEvent,
  Snapshot,
  SpyMode,
  SpyRights,
  StatusOption,
  WireEvent,
} from "./supervisor/types";
import { OperatorTable, queueTable, swatch } from "./supervisor/view";
import type { Ticker, ViewContext } from "./supervisor/view";

const data = boot();
const t = translator(data.strings);
const statuses = new Map<string, StatusOption>(
  ((data.statuses as StatusOption[] | undefined) ?? []).map((s) => [s.code, s]),
);
const spyRights: SpyRights = (data.spy as SpyRights | undefined) ?? { modes: {}, group_user_ids: [] };
const app = document.getElementById("app") as HTMLElement;
app.setAttribute("data-user", String(data.user.id));

let snapshot: Snapshot | null = null;
let lastSeq = 0;
let skewMs = 0;
let tickers: Ticker[] = [];

const link = el("span", { class: "sv-link lost", "data-testid": "link-state" }, t("sv.link.lost"));
const dayNote = el("p", { class: "muted", "data-testid": "day-note" });
const queuesBox = el("div", { "data-testid": "queues" });
const operatorsBox = el("div", { "data-testid": "operators" });
/** Shows only the operators whose name has these letters ("/" focuses it). */
const operatorFilter = el("input", {
  type: "search",
  class: "sv-filter",
  "data-testid": "operator-filter",
  placeholder: t("sv.filter_operators"),
  "aria-label": t("sv.filter_operators"),
});
operatorFilter.addEventListener("input", () => filterOperators());
const panel = el("aside", { class: "sv-panel card", "data-testid": "action-panel", hidden: true });
const socket = connect("/supervisor");
const campaigns = new CampaignsView(socket, t);
/** The same softphone as the operator window's: a supervisor whose phone is the browser
 * listens, whispers and barges here (those calls answer by themselves) and answers others. */
const softphone = new Softphone(socket, t, () => undefined);
const me = data.user.id;
const organise = new OrganiseView(t, (s) => t(`enum.status.${s}`), data.lang);
/** Filter the operators' conversations by a label (their chips come from the snapshot). */
const labelFilter = el("select", { "data-testid": "label-filter", "aria-label": t("sv.label_filter") });
let onlyLabel: number | null = null;
labelFilter.addEventListener("change", () => {
  onlyLabel = labelFilter.value ? Number(labelFilter.value) : null;
  render();
});
function fillLabelFilter(): void {
  clear(labelFilter);
  labelFilter.append(el("option", { value: "" }, t("sv.label_all")));
  for (const l of organise.labels) {
    const option = el("option", { value: l.id }, l.name);
    option.selected = l.id === onlyLabel;
    labelFilter.append(option);
  }
}
organise.onLoaded = () => {
  fillLabelFilter();
  render();
};
void organise.load();
app.append(
  el(
    "div",
    { class: "sv" },
    el("header", { class: "sv-head" }, el("h1", {}, t("sv.title")), link),
    softphone.box,
    dayNote,
    el("section", {}, el("h2", {}, t("sv.queues")), queuesBox),
    el(
      "section",
      {},
      el("div", { class: "sv-section-head" }, el("h2", {}, t("sv.operators")), operatorFilter),
      el("label", { class: "sv-label-filter" }, `${t("sv.label_filter")} `, labelFilter),
      operatorsBox,
    ),
    el("section", {}, el("h2", {}, t("sv.campaigns")), campaigns.box),
    el("section", {}, el("h2", {}, t("sv.org_views")), organise.box),
  ),
  panel,
);

const view: ViewContext = {
  t,
  statuses,
  skewMs: () => skewMs,
  onStatus: (op) => openStatus(op),
  onMessage: (op) => openMessage(op),
  onWhisper: (op, conv) => openWhisper(op, conv),
  onTakeOver: (op, conv) => openTakeOver(op, conv),
  onSpy: (op, conv, mode) => spy(op, conv, mode),
  canSpy: (op, mode) => {
    const scope = spyRights.modes[mode];
    if (scope === "all") return true;
    return scope === "group" && spyRights.group_user_ids.includes(op.id);
  },
  onForceEnd: (op, conv) => openForceEnd(op, conv),
  gradePath: (data.grade_path as string | null | undefined) ?? null,
  labels: () => organise.labels,
  labelFilter: () => onlyLabel,
};

const operators = new OperatorTable(operatorsBox, view);

function render(): void {
  if (!snapshot) return;
  const next: Ticker[] = [];
  clear(queuesBox);
  queuesBox.append(queueTable(snapshot.queues, view, next));
  operators.render(snapshot.operators, next);
  filterOperators();
  tickers = next;
  // "Today" starts at local midnight of the install's zone (the reports' today), shown in that zone.
  const time = new Date(snapshot.day_start).toLocaleTimeString("en-GB", {
    timeZone: snapshot.timezone,
    hour: "2-digit",
    minute: "2-digit",
  });
  dayNote.textContent = t("sv.day_note", { time, zone: snapshot.timezone, grace: snapshot.short_abandon_seconds });
}

function filterOperators(): void {
  const words = operatorFilter.value.trim().toLowerCase();
  operatorsBox.querySelectorAll<HTMLElement>("[data-testid=operator-row]").forEach((row) => {
    const name = row.querySelector("[data-testid=operator-name]")?.textContent?.toLowerCase() ?? "";
    row.hidden = words !== "" && !name.includes(words);
  });
}

bindShortcuts(t, (overlay) =>
  supervisorKeymap(
    t,
    {
      focusFilter: () => {
        operatorFilter.focus();
        operatorFilter.select();
        return true;
      },
      clearFilter: () => {
        if (document.activeElement !== operatorFilter) return false;
        operatorFilter.value = "";
        filterOperators();
        operatorFilter.blur();
        return true;
      },
    },
    overlay,
  ),
);

async function refresh(): Promise<void> {
  const ack = await call(socket, "monitor");
  if (!ack.ok) return;
  const snap = ack as unknown as Snapshot;
  skewMs = Date.parse(snap.now) - Date.now();
  snapshot = snap;
  lastSeq = Math.max(lastSeq, snap.last_seq);
  render();
  app.setAttribute("data-seq", String(lastSeq));
}

const refreshSoon = debounced(refresh, 1000);

/** Apply a presence event at once (the status cell must not lag behind the debounce). */
function patchPresence(ev: PresenceEvent): void {
  if (!snapshot || ev.user_id === null) return;
  const op = snapshot.operators.find((o) => o.id === ev.user_id);
  if (!op) return;
  const d = ev.data;
  const status = statuses.get(d.status);
  op.status = d.status;
  op.status_name = d.status_name;
  op.colour = d.colour;
  op.since = d.since;
  op.reason = d.reason;
  op.activity = d.activity;
  op.activity_since = d.activity_since;
  op.over_limit = d.over_limit;
  op.connected = d.connected;
  op.max_duration_seconds = status ? status.max_duration_seconds : op.max_duration_seconds;
  const activity = statuses.get(op.activity);
  if (activity) op.activity_colour = activity.colour;
  render();
}

/** Apply a label change at once: the chips (and the label filter) must not wait for the
 * debounced snapshot. A label created since the page loaded comes with the event. */
function patchLabels(d: { id: number; label_ids?: number[]; labels: Record<string, unknown>[] }): void {
  for (const raw of d.labels) {
    const l = raw as unknown as LabelInfo;
    if (!organise.labels.some((x) => x.id === l.id)) {
      organise.labels.push(l);
      fillLabelFilter();
    }
  }
  if (!snapshot) return;
  for (const op of snapshot.operators) {
    for (const c of op.conversations) if (c.id === d.id) c.label_ids = d.label_ids ?? d.labels.map((l) => Number(l.id));
  }
  render();
}

function relevant(type: string): boolean {
  return type.startsWith("conversation.") || type.startsWith("presence.");
}

const sla = new SlaBoard(t, "sv.", () => true); // every breach in the supervisor's scope
socket.on("connect", () => {
  link.textContent = t("sv.link.live");
  link.className = "sv-link live";
  void softphone.start();
  void refresh();
  void sla.load();
  void campaigns.refresh();
});
// Campaign figures aggregate the campaign's targets and attempts (about 0.7 s at 1,000,000 of
// each on a loaded 2-core test box): at most one refresh every 3 s, however busy the dialer.
const campaignsSoon = debounced(() => campaigns.refresh(), 3000);
// The server's Redis link had a hole while this socket stayed up: the snapshot is the truth.
socket.on("sync", () => {
  void refresh();
  void sla.load(); // the clocks are not in the snapshot: reload them too (the operator's resync does)
  void campaigns.refresh();
});
socket.on("disconnect", () => {
  link.textContent = t("sv.link.lost");
  link.className = "sv-link lost";
});
socket.on("event", (ev: WireEvent) => {
  // The clocks are not in the monitoring snapshot: a snapshot's last_seq must not swallow
  // an sla event that arrives after it (the badge of a chat already answered stayed red).
  sla.apply(ev);
  if (ev.seq <= lastSeq) return; // already in the snapshot, or a duplicate delivery
  lastSeq = ev.seq;
  app.setAttribute("data-seq", String(lastSeq));
  if (ev.type === "presence.changed" || ev.type === "presence.over_limit") patchPresence(ev);
  if (ev.type === "conversation.labels_changed") patchLabels(ev.data);
  if (relevant(ev.type)) refreshSoon();
  if (ev.type.startsWith("campaign.")) campaignsSoon();
  // An admin changed my phone (desk ↔ browser): the softphone follows at once.
  if (ev.type === "admin.changed" && ev.user_id === me && ev.data.entity === "user") void softphone.start();
});

window.setInterval(() => {
  for (const tick of tickers) tick();
  sla.decorate(document);
}, 1000);

// --- the action panel ------------------------------------------------------------------------

function outcome(ack: Ack, result: HTMLElement, done: string): boolean {
  result.textContent = ack.ok ? done : t("sv.failed", { detail: ack.detail ?? ack.error ?? "" });
  result.className = ack.ok ? "ok" : "bad";
  return ack.ok;
}

function openPanel(title: string, kind: string, ...body: HTMLElement[]): HTMLElement {
  clear(panel);
  const result = el("p", { "data-testid": "action-result", role: "status" });
  panel.append(
    el(
      "div",
      { class: "sv-panel-head" },
      el("strong", { "data-testid": "panel-title" }, title),
      el("button", { type: "button", "data-testid": "panel-close", onclick: closePanel }, t("sv.close")),
    ),
    ...body,
    result,
  );
  panel.setAttribute("data-kind", kind);
  panel.hidden = false;
  return result;
}

function closePanel(): void {
  panel.hidden = true;
  clear(panel);
}

function openStatus(op: OperatorRow): void {
  const select = el("select", { name: "status", "data-testid": "status-select" });
  for (const s of statuses.values()) {
    if (!s.settable) continue;
    const option = el("option", { value: s.code }, s.name);
    if (s.code === op.status) option.selected = true;
    select.append(option);
  }
  const reason = el("input", { name: "reason", required: true, maxlength: 256, "data-testid": "status-reason-input" });
  const form = el(
    "form",
    { class: "sv-form" },
    el("label", {}, t("sv.field.status"), " ", select),
    el("label", {}, t("sv.field.reason"), " ", reason),
    el("button", { type: "submit", class: "primary", "data-testid": "status-submit" }, t("sv.apply")),
  );
  const result = openPanel(t("sv.panel.status", { name: op.name }), "status", form);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void call(socket, "set_operator_status", { user_id: op.id, status: select.value, reason: reason.value }).then(
      (ack) => {
        if (outcome(ack, result, t("sv.done"))) reason.value = "";
      },
    );
  });
  reason.focus();
}

function textForm(
  title: string,
  kind: string,
  send: (text: string) => Promise<Ack>,
  heading?: HTMLElement,
): void {
  const text = el("textarea", { name: "text", rows: 3, maxlength: 2000, required: true, "data-testid": `${kind}-text` });
  const form = el(
    "form",
    { class: "sv-form" },
    el("label", {}, t("sv.field.text"), text),
    el("button", { type: "submit", class: "primary", "data-testid": `${kind}-submit` }, t("sv.send")),
  );
  const result = openPanel(title, kind, ...(heading ? [heading] : []), form);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void send(text.value).then((ack) => {
      if (outcome(ack, result, t("sv.sent"))) text.value = "";
    });
  });
  text.focus();
}

function openMessage(op: OperatorRow): void {
  textForm(t("sv.panel.message", { name: op.name }), "message", (text) =>
    call(socket, "message_operator", { user_id: op.id, text }),
  );
}

function openWhisper(op: OperatorRow, conv: CurrentConversation): void {
  textForm(t("sv.panel.whisper", { id: conv.id, name: op.name }), "whisper", (text) =>
    call(socket, "whisper", { conversation_id: conv.id, text }),
  );
}

function openTakeOver(op: OperatorRow, conv: CurrentConversation): void {
  const confirm = el("button", { type: "button", class: "primary", "data-testid": "take-over-confirm" }, t("sv.confirm"));
  const result = openPanel(
    t("sv.panel.take_over", { id: conv.id, name: op.name }),
    "take-over",
    el("p", {}, swatch(op.colour), op.name),
    confirm,
  );
  confirm.addEventListener("click", () => {
    confirm.disabled = true;
    void call(socket, "take_over", { conversation_id: conv.id }).then((ack) => {
      if (!outcome(ack, result, t("sv.done"))) confirm.disabled = false;
      refreshSoon();
    });
  });
}

// --- calls: listen / whisper / barge (the supervisor's phone rings), force end --------------

function spy(op: OperatorRow, conv: CurrentConversation, mode: SpyMode): void {
  const result = openPanel(t("sv.panel.call", { id: conv.id, name: op.name }), `call-${mode}`);
  if (softphone.enabled()) softphone.expectOwnCall(); // the spy call rings this page: answered here
  void call(socket, "call_spy", { conversation_id: conv.id, mode }).then((ack) => {
    outcome(ack, result, t(`sv.call.ringing.${mode}`));
  });
}

function openForceEnd(op: OperatorRow, conv: CurrentConversation): void {
  const confirm = el("button", { type: "button", class: "danger", "data-testid": "force-end-confirm" }, t("sv.call.force_end"));
  const result = openPanel(
    t("sv.panel.call", { id: conv.id, name: op.name }),
    "force-end",
    el("p", {}, t("sv.call.force_end_confirm", { id: conv.id, name: op.name })),
    confirm,
  );
  confirm.addEventListener("click", () => {
    confirm.disabled = true;
    void call(socket, "call_force_end", { conversation_id: conv.id }).then((ack) => {
      if (!outcome(ack, result, t("sv.call.ended"))) confirm.disabled = false;
      refreshSoon();
    });
  });
}
