// The contact's other conversations (the history under the messages).
import { call, clear, el } from "../common";
import { HistoryEntry, channelIcon } from "./types";
import { time } from "./ui";
import { PaneBase } from "./messages";
import { isAutomated } from "./messages";
import { openOthers, renderThread } from "./thread";

export abstract class HistoryPart extends PaneBase {
  /** The customer's other open conversations, on the card (thread.ts). */
  protected readonly thread = el("section", { class: "panel thread-panel hidden", "data-testid": "thread" });
  private threadIds = new Set<number>();

  /** A message or change in one of the thread's conversations: read the thread again. */
  threadChanged(conversationId: number): void {
    if (this.id !== null && this.threadIds.has(conversationId)) void this.loadHistory(this.id);
  }

  // --- contact history ----------------------------------------------------------------

  protected async loadHistory(id: number): Promise<void> {
    const t = this.ctx.t;
    const ack = await call(this.ctx.socket, "history", { conversation_id: id });
    if (this.id !== id) return;
    clear(this.history);
    if (!ack.ok) {
      clear(this.thread);
      this.thread.classList.add("hidden");
      this.history.append(el("summary", {}, t("op.history")));
      return;
    }
    const items = ack.conversations as HistoryEntry[];
    const hidden = Number(ack.hidden || 0);
    this.threadIds = new Set(openOthers(items).map((c) => c.id));
    renderThread(this.thread, items, t, (m) =>
      this.messageNode(m, m.direction === "in" ? undefined : isAutomated(m) ? t("op.bot") : m.direction === "note" ? t("op.note_label") : t("op.operator")),
    );
    this.history.append(
      el("summary", {}, `${t("op.history")} (${items.length})`),
      ...items.map((c) =>
        el(
          "details",
          { class: "history-item", "data-testid": "history-item", "data-id": c.id, "data-channel": c.channel },
          el(
            "summary",
            {},
            el("span", { class: "icon" }, channelIcon(c.channel, c.medium)),
            ` ${time(c.created_at, this.ctx.lang)} · ${c.queue_name || t(`enum.channel.${c.channel}`)} · ${t(`op.st.${c.status}`)}`,
            c.result_code_name ? ` · ${c.result_code_name}` : "",
          ),
          ...c.messages.map((m) => this.messageNode(m, m.direction === "in" ? undefined : isAutomated(m) ? t("op.bot") : m.direction === "note" ? t("op.note_label") : t("op.operator"))),
        ),
      ),
    );
    if (hidden) this.history.append(el("p", { class: "muted" }, t("op.history_hidden", { n: hidden })));
    if (!items.length && !hidden) this.history.append(el("p", { class: "muted" }, t("op.history_empty")));
  }
}
