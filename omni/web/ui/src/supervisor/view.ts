// DOM of the monitoring page: the queue table, the operator table, the action panel.
// Every piece of text goes through el() (text nodes only); colours are checked before use.
import { PartSpec, duration, el, keepParts, recordingPlayer, setText } from "../common";
import { channelSvg } from "../icons";
import { whyText } from "../why";
import { LabelInfo, labelChips } from "../operator/organise";
import { elapsed, percentOrDash, secondsOrDash, waitLevel } from "./format";
import type { CurrentConversation, OperatorRow, QueueStat, SpyMode, StatusOption } from "./types";

export type T = (key: string, values?: Record<string, string | number>) => string;

export interface ViewContext {
  t: T;
  statuses: Map<string, StatusOption>;
  skewMs: () => number;
  onStatus: (op: OperatorRow) => void;
  onMessage: (op: OperatorRow) => void;
  onWhisper: (op: OperatorRow, conv: CurrentConversation) => void;
  onTakeOver: (op: OperatorRow, conv: CurrentConversation) => void;
  onSpy: (op: OperatorRow, conv: CurrentConversation, mode: SpyMode) => void;
  /** Whether the caller's grants let them join this operator's call in this mode. */
  canSpy: (op: OperatorRow, mode: SpyMode) => boolean;
  onForceEnd: (op: OperatorRow, conv: CurrentConversation) => void;
  /** The grading panel (omni/web/qa.py) when the supervisor may grade; null hides the link. */
  gradePath: string | null;
  /** The labels the supervisor may see (chips' names and colours). */
  labels: () => LabelInfo[];
  /** Show only the conversations carrying this label (``null``: all). */
  labelFilter: () => number | null;
}

const SPY_MODES: SpyMode[] = ["listen", "whisper", "barge"];

/** The operator and conversation a control acts on: the latest snapshot's (a control outlives
 * the snapshot it was built from). */
type Current = () => [OperatorRow, CurrentConversation];

/** A call's row: ChanSpy buttons and force-end while it is up, its recording when there is one. */
function callControls(op: OperatorRow, conv: CurrentConversation, ctx: ViewContext, now: Current): HTMLElement {
  const { t } = ctx;
  const box = el("span", { class: "sv-call", "data-testid": "call-controls" });
  if (conv.call_live) {
    for (const mode of SPY_MODES) {
      if (!ctx.canSpy(op, mode)) continue; // the server refuses it too (grants.check_spy)
      box.append(
        el("button", { type: "button", "data-testid": `call-${mode}`, onclick: () => ctx.onSpy(...now(), mode) }, t(`sv.call.${mode}`)),
      );
    }
    box.append(
      el("button", { type: "button", class: "danger", "data-testid": "call-force-end", onclick: () => ctx.onForceEnd(...now()) }, t("sv.call.force_end")),
    );
  }
  if (conv.recording_url) {
    const url = conv.recording_url;
    const slot = el("div", { class: "sv-recording" });
    box.append(
      el(
        "button",
        {
          type: "button",
          "data-testid": "call-recording",
          onclick: () => {
            if (slot.firstChild) slot.replaceChildren();
            else slot.append(recordingPlayer(url, { speed: t("sv.call.speed"), download: t("sv.call.download") }));
          },
        },
        t("sv.call.recording"),
      ),
      slot,
    );
  }
  return box;
}

/** Called every second to move the counters on; gathered again with each render. */
export type Ticker = () => void;

const COLOUR = /^#[0-9a-fA-F]{3,8}$/;

export function swatch(colour: string): HTMLElement {
  const dot = el("span", { class: "sv-dot", "aria-hidden": "true" });
  if (COLOUR.test(colour)) dot.style.backgroundColor = colour;
  return dot;
}

function th(text: string): HTMLTableCellElement {
  return el("th", { scope: "col" }, text);
}

export function queueTable(queues: QueueStat[], ctx: ViewContext, tickers: Ticker[]): HTMLElement {
  const { t } = ctx;
  const dash = t("sv.none");
  if (!queues.length) return el("p", { class: "muted", "data-testid": "no-queues" }, t("sv.no_queues"));
  const body = el("tbody");
  for (const q of queues) {
    const longest = el("td", { "data-testid": "longest-wait", class: "sv-wait" });
    const tick = (): void => {
      const secs = q.longest_wait_since ? elapsed(q.longest_wait_since, ctx.skewMs()) : 0;
      const level = q.longest_wait_since ? waitLevel(secs, q.thresholds) : "green";
      longest.textContent = q.longest_wait_since ? duration(secs) : dash;
      longest.className = `sv-wait wait-${level}`;
      longest.setAttribute("data-level", level);
    };
    tick();
    tickers.push(tick);
    longest.title = t("sv.sla_hint", { sla: q.sla_seconds, amber: q.thresholds.amber, red: q.thresholds.red });
    body.append(
      el(
        "tr",
        { "data-testid": "queue-row", "data-queue-id": q.id },
        el("td", { class: "sv-name" }, q.name),
        el("td", { "data-testid": "waiting", class: "num" }, String(q.waiting)),
        longest,
        el("td", { "data-testid": "in-service", class: "num" }, String(q.in_service)),
        el("td", { "data-testid": "service-level", class: "num" }, percentOrDash(q.service_level_pct, dash)),
        el("td", { "data-testid": "answered", class: "num" }, `${q.answered_today} / ${q.offered_today}`),
        el("td", { "data-testid": "abandoned", class: "num" }, String(q.abandoned_today)),
        el("td", { "data-testid": "asa", class: "num" }, secondsOrDash(q.asa_seconds, dash)),
        el("td", { "data-testid": "aht", class: "num" }, secondsOrDash(q.aht_seconds, dash)),
      ),
    );
  }
  return el(
    "table",
    { class: "grid sv-table", "data-testid": "queue-table" },
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        th(t("sv.col.queue")),
        th(t("sv.col.waiting")),
        th(t("sv.col.longest")),
        th(t("sv.col.in_service")),
        th(t("sv.col.sl")),
        th(t("sv.col.answered")),
        th(t("sv.col.abandoned")),
        th(t("sv.col.asa")),
        th(t("sv.col.aht")),
      ),
    ),
    body,
  );
}

function statusName(ctx: ViewContext, code: string, fallback: string): string {
  return ctx.statuses.get(code)?.name ?? fallback;
}

/** One operator's row, kept while the operator is in the snapshot: each redraw fills it again
 * from the latest facts, and each piece is rebuilt only when what it shows changed, so a
 * supervisor's press on a control is not lost to a redraw, nor an open recording. */
class OperatorRowView {
  readonly row: HTMLTableRowElement;
  private readonly name = el("td", { class: "sv-name" });
  private readonly status = el("td", { "data-testid": "status" });
  private readonly time = el("span", { "data-testid": "time-in-status" });
  private readonly limit = el("span", { class: "muted" });
  private readonly flag = el("span", { class: "sv-flag", "data-testid": "over-limit" });
  private readonly activity = el("td", { "data-testid": "activity" });
  private readonly activitySince = el("span", { class: "muted" });
  private readonly count = el("span", { "data-testid": "conversation-count", class: "badge" });
  private readonly convs = el("ul", { class: "sv-convs" });
  private readonly handled = el("td", { "data-testid": "handled-today", class: "num" });
  /** The latest snapshot's conversations of the operator, by id (what the controls act on). */
  private conversations = new Map<number, CurrentConversation>();

  constructor(
    public op: OperatorRow,
    private readonly ctx: ViewContext,
  ) {
    const { t } = ctx;
    this.row = el(
      "tr",
      { "data-testid": "operator-row", "data-user-id": op.id },
      this.name,
      this.status,
      el("td", { class: "num" }, this.time, this.limit, " ", this.flag),
      this.activity,
      el("td", {}, this.count, this.convs),
      this.handled,
      el(
        "td",
        { class: "sv-actions" },
        el("button", { type: "button", "data-testid": "status-change", onclick: () => ctx.onStatus(this.op) }, t("sv.change_status")),
        el("button", { type: "button", "data-testid": "message-operator", onclick: () => ctx.onMessage(this.op) }, t("sv.message")),
      ),
    );
  }

  /** Shows ``op`` (the latest snapshot's) with these of its conversations. */
  update(op: OperatorRow, convs: CurrentConversation[]): void {
    const { t } = this.ctx;
    const ctx = this.ctx;
    this.op = op;
    this.conversations = new Map(convs.map((c) => [c.id, c]));
    this.row.setAttribute("data-status", op.status);
    keepParts(this.name, [
      {
        name: "name",
        facts: [op.name, op.connected],
        build: () => [
          el("span", { "data-testid": "operator-name" }, op.name),
          ...(op.connected ? [] : [el("span", { class: "muted sv-offline" }, ` (${t("sv.not_connected")})`)]),
        ],
      },
    ]);
    const name = statusName(ctx, op.status, op.status_name);
    const reason = op.reason ? reasonLabel(op.reason, t) : null;
    keepParts(this.status, [
      {
        name: "status",
        facts: [op.colour, name, reason],
        build: () => [
          swatch(op.colour),
          el("span", { "data-testid": "status-name" }, name),
          ...(reason ? [el("span", { class: "muted sv-reason", "data-testid": "status-reason" }, ` · ${reason}`)] : []),
        ],
      },
    ]);
    const limit = op.max_duration_seconds;
    setText(this.limit, limit !== null ? ` (${t("sv.limit", { time: duration(limit) })})` : "");
    this.limit.hidden = limit === null;
    const activity = statusName(ctx, op.activity, op.activity_name);
    keepParts(
      this.activity,
      op.activity !== op.status
        ? [
            {
              name: "busy",
              facts: [op.activity_colour, activity],
              build: () => [swatch(op.activity_colour), document.createTextNode(activity), this.activitySince],
            },
          ]
        : [{ name: "idle", facts: [], build: () => [document.createTextNode(t("sv.none"))] }],
    );
    setText(this.count, String(op.conversation_count));
    keepParts(
      this.convs,
      convs.map((c) => ({
        name: String(c.id),
        facts: [],
        build: () => [el("li", { "data-testid": "conversation", "data-conversation-id": c.id })],
      })),
    );
    for (const item of this.convs.children) {
      const conv = this.conversations.get(Number((item as HTMLElement).dataset.conversationId));
      if (conv) this.fillConversation(item as HTMLElement, conv);
    }
    setText(this.handled, String(op.handled_today));
    this.tick();
  }

  private fillConversation(item: HTMLElement, conv: CurrentConversation): void {
    const { t } = this.ctx;
    const ctx = this.ctx;
    const op = this.op;
    const now: Current = () => [this.op, this.conversations.get(conv.id) ?? conv];
    const labels = conv.label_ids ?? [];
    const why = conv.why && conv.why.rule !== "turn" ? conv.why : null;
    const voice = conv.medium === "voice";
    keepParts(item, [
      {
        name: "what",
        facts: [conv.id, conv.channel, conv.medium],
        build: () => [
          el("span", { class: "icon", "data-testid": "channel-icon" }, channelSvg(conv.channel, conv.medium)),
          document.createTextNode(" "),
          el("span", { class: "sv-conv" }, t("sv.conversation", { id: conv.id, channel: t(`enum.channel.${conv.channel}`) })),
          document.createTextNode(" "),
        ],
      },
      { name: "status", facts: [conv.status], build: () => [el("span", { class: "badge" }, t(`sv.conv_status.${conv.status}`)), document.createTextNode(" ")] },
      {
        name: "labels",
        facts: [labels, ctx.labels().filter((l) => labels.includes(l.id))],
        build: () => [...(labels.length ? [labelChips(ctx.labels(), labels)] : []), document.createTextNode(" ")],
      },
      {
        name: "why",
        facts: [why],
        build: () => (why ? [el("span", { class: "muted sv-why", "data-testid": "why", "data-rule": why.rule }, whyText(why, t), " ")] : []),
      },
      {
        name: "call",
        facts: [voice, conv.call_live, conv.recording_url, SPY_MODES.map((mode) => ctx.canSpy(op, mode))],
        build: () => (voice ? [callControls(op, conv, ctx, now)] : []),
      },
      {
        name: "whisper",
        facts: [],
        build: () => [el("button", { type: "button", "data-testid": "whisper", onclick: () => ctx.onWhisper(...now()) }, t("sv.whisper"))],
      },
      {
        name: "take-over",
        facts: [conv.status === "wrap_up"],
        build: () =>
          conv.status === "wrap_up"
            ? []
            : [el("button", { type: "button", "data-testid": "take-over", onclick: () => ctx.onTakeOver(...now()) }, t("sv.take_over"))],
      },
      {
        name: "grade",
        facts: [ctx.gradePath],
        build: () =>
          ctx.gradePath
            ? [
                el(
                  "a",
                  { href: `${ctx.gradePath}/${conv.id}?mode=live`, target: "_blank", rel: "noopener", "data-testid": "grade-live" },
                  t("sv.grade_live"),
                ),
              ]
            : [],
      },
    ]);
  }

  /** Moves the counters on in place (the time in status, its limit, the activity's time). */
  tick(): void {
    const { t } = this.ctx;
    const op = this.op;
    const secs = elapsed(op.since, this.ctx.skewMs());
    setText(this.time, duration(secs));
    const limit = op.max_duration_seconds;
    const over = op.over_limit || (limit !== null && secs >= limit);
    this.row.classList.toggle("over-limit", over);
    setText(this.flag, over ? t("sv.over_limit") : "");
    this.flag.hidden = !over;
    if (op.activity !== op.status) setText(this.activitySince, ` ${duration(elapsed(op.activity_since, this.ctx.skewMs()))}`);
  }
}

/** The operator table, kept across redraws: a row per operator (by id), its cells and controls
 * updated where what they show changed; the counters tick in place. */
export class OperatorTable {
  private readonly rows = new Map<number, OperatorRowView>();
  private readonly body = el("tbody");
  private readonly table: HTMLElement;

  constructor(
    private readonly box: HTMLElement,
    private readonly ctx: ViewContext,
  ) {
    const { t } = ctx;
    this.table = el(
      "table",
      { class: "grid sv-table", "data-testid": "operator-table" },
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          th(t("sv.col.operator")),
          th(t("sv.col.status")),
          th(t("sv.col.time")),
          th(t("sv.col.activity")),
          th(t("sv.col.conversations")),
          th(t("sv.col.handled")),
          th(t("sv.col.actions")),
        ),
      ),
      this.body,
    );
  }

  /** Shows the snapshot's operators; ``tickers`` gets their counters. */
  render(ops: OperatorRow[], tickers: Ticker[]): void {
    const { t } = this.ctx;
    const only = this.ctx.labelFilter();
    const ids = new Set(ops.map((op) => op.id));
    for (const id of [...this.rows.keys()]) if (!ids.has(id)) this.rows.delete(id);
    const shown: OperatorRowView[] = [];
    for (const op of ops) {
      const convs = only === null ? op.conversations : op.conversations.filter((c) => (c.label_ids ?? []).includes(only));
      // The label filter keeps the operators handling a conversation with that label.
      if (only !== null && !convs.length) continue;
      const view = this.rows.get(op.id) ?? new OperatorRowView(op, this.ctx);
      this.rows.set(op.id, view);
      view.update(op, convs);
      tickers.push(() => view.tick());
      shown.push(view);
    }
    keepParts(
      this.body,
      shown.map((view) => ({ name: String(view.op.id), facts: [], build: () => [view.row] })),
    );
    let part: PartSpec;
    if (!ops.length) {
      part = { name: "none", facts: [], build: () => [el("p", { class: "muted", "data-testid": "no-operators" }, t("sv.no_operators"))] };
    } else if (!shown.length) {
      part = { name: "unlabelled", facts: [], build: () => [el("p", { class: "muted", "data-testid": "no-labelled" }, t("sv.label_none"))] };
    } else {
      part = { name: "table", facts: [], build: () => [this.table] };
    }
    keepParts(this.box, [part]);
  }
}

/** A reason the system set (``disconnected``) by its label; a supervisor's own words as typed. */
function reasonLabel(reason: string, t: (key: string) => string): string {
  const key = `enum.presence_reason.${reason}`;
  const label = t(key);
  return label === key ? reason : label;
}
