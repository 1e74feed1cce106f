// One thread on the card: the customer's other conversations that are open now (a chat while
// they call, a second channel), at the top of the right column: each with its channel icon, a
// link that opens it, and its messages readable inline — not only in the history below.
import { clear, el } from "../common";
import { HistoryEntry, Message, channelIcon } from "./types";
import { T } from "./ui";

/** The statuses in which a conversation is open (``OPEN_STATUSES`` of the models). */
const OPEN = new Set(["bot", "queued", "offered", "active", "on_hold", "wrap_up"]);
/** The newest messages shown inline per conversation (the history has them all). */
const INLINE_MESSAGES = 20;

export function openOthers(items: HistoryEntry[]): HistoryEntry[] {
  return items.filter((c) => OPEN.has(c.status));
}

export function renderThread(
  box: HTMLElement,
  items: HistoryEntry[],
  t: T,
  node: (msg: Message) => HTMLElement,
): void {
  clear(box);
  const open = openOthers(items);
  box.classList.toggle("hidden", open.length === 0);
  if (!open.length) return;
  box.append(el("h3", {}, t("op.thread", { n: open.length })));
  for (const c of open) {
    const channel = t(`enum.channel.${c.channel}`);
    box.append(
      el(
        "article",
        { class: "thread-item", "data-testid": "thread-item", "data-id": c.id, "data-channel": c.channel },
        el(
          "a",
          { href: `#c=${c.id}`, class: "thread-link", "data-testid": "thread-link", title: t("op.thread_open") },
          el("span", { class: "icon", "data-testid": "thread-icon", "aria-label": channel }, channelIcon(c.channel, c.medium)),
          ` ${channel} · #${c.id} · ${t(`op.st.${c.status}`)}`,
        ),
        el("div", { class: "thread-messages" }, ...c.messages.slice(-INLINE_MESSAGES).map((m) => node(m))),
      ),
    );
  }
}
