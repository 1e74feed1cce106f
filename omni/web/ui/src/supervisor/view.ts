// DOM of the monitoring page: the queue table, the operator table, the action panel.
// Every piece of text goes through el() (text nodes only); colours are checked before use.
import { duration, el, recordingPlayer } from "../common";
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

/** A call's row: ChanSpy buttons and force-end while it is up, its recording when there is one. */
function callControls(op: OperatorRow, conv: CurrentConversation, ctx: ViewContext): HTMLElement {
  const { t } = ctx;
  const box = el("span", { class: "sv-call", "data-testid": "call-controls" });
  if (conv.call_live) {
    for (const mode of SPY_MODES) {
      if (!ctx.canSpy(op, mode)) continue; // the server refuses it too (grants.check_spy)
      box.append(
        el("button", { type: "button", "data-testid": `call-${mode}`, onclick: () => ctx.onSpy(op, conv, mode) }, t(`sv.call.${mode}`)),
      );
    }
    box.append(
      el("button", { type: "button", class: "danger", "data-testid": "call-force-end", onclick: () => ctx.onForceEnd(op, conv) }, t("sv.call.force_end")),
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

/** Called every second to move the counters on; rebuilt with each render. */
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

function conversationItem(op: OperatorRow, conv: CurrentConversation, ctx: ViewContext): HTMLElement {
  const { t } = ctx;
  return el(
    "li",
    { "data-testid": "conversation", "data-conversation-id": conv.id },
    el("span", { class: "icon", "data-testid": "channel-icon" }, channelSvg(conv.channel, conv.medium)),
    " ",
    el("span", { class: "sv-conv" }, t("sv.conversation", { id: conv.id, channel: t(`enum.channel.${conv.channel}`) })),
    " ",
    el("span", { class: "badge" }, t(`sv.conv_status.${conv.status}`)),
    " ",
    conv.label_ids?.length ? labelChips(ctx.labels(), conv.label_ids) : null,
    " ",
    conv.why && conv.why.rule !== "turn"
      ? el("span", { class: "muted sv-why", "data-testid": "why", "data-rule": conv.why.rule }, whyText(conv.why, t), " ")
      : null,
    conv.medium === "voice" ? callControls(op, conv, ctx) : null,
    el("button", { type: "button", "data-testid": "whisper", onclick: () => ctx.onWhisper(op, conv) }, t("sv.whisper")),
    conv.status === "wrap_up"
      ? null
      : el(
          "button",
          { type: "button", "data-testid": "take-over", onclick: () => ctx.onTakeOver(op, conv) },
          t("sv.take_over"),
        ),
    ctx.gradePath
      ? el(
          "a",
          { href: `${ctx.gradePath}/${conv.id}?mode=live`, target: "_blank", rel: "noopener", "data-testid": "grade-live" },
          t("sv.grade_live"),
        )
      : null,
  );
}

export function operatorTable(ops: OperatorRow[], ctx: ViewContext, tickers: Ticker[]): HTMLElement {
  const { t } = ctx;
  const dash = t("sv.none");
  if (!ops.length) return el("p", { class: "muted", "data-testid": "no-operators" }, t("sv.no_operators"));
  const body = el("tbody");
  const only = ctx.labelFilter();
  const shown = (op: OperatorRow): CurrentConversation[] =>
    only === null ? op.conversations : op.conversations.filter((c) => (c.label_ids ?? []).includes(only));
  for (const op of ops) {
    // The label filter keeps the operators handling a conversation with that label.
    if (only !== null && !shown(op).length) continue;
    const time = el("span", { "data-testid": "time-in-status" });
    const flag = el("span", { class: "sv-flag", "data-testid": "over-limit" });
    const row = el("tr", { "data-testid": "operator-row", "data-user-id": op.id, "data-status": op.status });
    const limit = op.max_duration_seconds;
    const tick = (): void => {
      const secs = elapsed(op.since, ctx.skewMs());
      time.textContent = duration(secs);
      const over = op.over_limit || (limit !== null && secs >= limit);
      row.classList.toggle("over-limit", over);
      flag.textContent = over ? t("sv.over_limit") : "";
      flag.hidden = !over;
    };
    tick();
    tickers.push(tick);
    const busy = op.activity !== op.status;
    const activity = el("td", { "data-testid": "activity" });
    if (busy) {
      const since = el("span", { class: "muted" });
      const tickActivity = (): void => {
        since.textContent = ` ${duration(elapsed(op.activity_since, ctx.skewMs()))}`;
      };
      tickActivity();
      tickers.push(tickActivity);
      activity.append(swatch(op.activity_colour), statusName(ctx, op.activity, op.activity_name), since);
    } else {
      activity.append(dash);
    }
    const convs = el("ul", { class: "sv-convs" }, ...shown(op).map((c) => conversationItem(op, c, ctx)));
    row.append(
      el(
        "td",
        { class: "sv-name" },
        el("span", { "data-testid": "operator-name" }, op.name),
        op.connected ? null : el("span", { class: "muted sv-offline" }, ` (${t("sv.not_connected")})`),
      ),
      el(
        "td",
        { "data-testid": "status" },
        swatch(op.colour),
        el("span", { "data-testid": "status-name" }, statusName(ctx, op.status, op.status_name)),
        op.reason ? el("span", { class: "muted sv-reason", "data-testid": "status-reason" }, ` · ${reasonLabel(op.reason, t)}`) : null,
      ),
      el(
        "td",
        { class: "num" },
        time,
        limit !== null ? el("span", { class: "muted" }, ` (${t("sv.limit", { time: duration(limit) })})`) : null,
        " ",
        flag,
      ),
      activity,
      el(
        "td",
        {},
        el("span", { "data-testid": "conversation-count", class: "badge" }, String(op.conversation_count)),
        convs,
      ),
      el("td", { "data-testid": "handled-today", class: "num" }, String(op.handled_today)),
      el(
        "td",
        { class: "sv-actions" },
        el("button", { type: "button", "data-testid": "status-change", onclick: () => ctx.onStatus(op) }, t("sv.change_status")),
        el("button", { type: "button", "data-testid": "message-operator", onclick: () => ctx.onMessage(op) }, t("sv.message")),
      ),
    );
    body.append(row);
  }
  if (!body.childElementCount) return el("p", { class: "muted", "data-testid": "no-labelled" }, t("sv.label_none"));
  return el(
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
    body,
  );
}

/** A reason the system set (``disconnected``) by its label; a supervisor's own words as typed. */
function reasonLabel(reason: string, t: (key: string) => string): string {
  const key = `enum.presence_reason.${reason}`;
  const label = t(key);
  return label === key ? reason : label;
}
