// Chat service levels in the live lists (operator and supervisor): every conversation with a
// running reply clock gets a countdown and a colour (ok → warning → breached) and moves up by
// time to breach; a breach raises an alert once per wait. The clocks come from
// GET /api/v1/sla/open (on connect and resync) and `sla.changed` / `sla.breached` events; the
// colours change on the page's own tick, so no reload or event is needed to turn amber or red.
import type { SlaPayload } from "../generated/contracts";
import { el } from "../common";

type T = (key: string, params?: Record<string, string | number>) => string;
type State = "ok" | "warning" | "breached";

/** List items that show a conversation, and where each keeps its id. */
const ITEMS = '[data-testid="conversation-item"], [data-testid="queue-item"], [data-testid="conversation"]';

function idOf(node: HTMLElement): number {
  return Number(node.dataset.id || node.dataset.conversationId || 0);
}

function stateAt(s: SlaPayload, now: number): State {
  if (s.breached_at || now >= Date.parse(s.due_at || "")) return "breached";
  return now >= Date.parse(s.warning_at || "") ? "warning" : "ok";
}

function clock(ms: number): string {
  const total = Math.floor(Math.abs(ms) / 1000);
  const text = `${Math.floor(total / 60)}:${String(total % 60).padStart(2, "0")}`;
  return ms < 0 ? `−${text}` : text;
}

export class SlaBoard {
  private byConversation = new Map<number, SlaPayload>();
  /** Per conversation, the seq of the last event applied and the `version` it was applied at:
   * an event is applied once and in order (a replay or a duplicate is ignored), and a `load()`
   * answer that left the server before an event must not undo it. */
  private seqOf = new Map<number, number>();
  private touched = new Map<number, number>();
  private version = 0;
  private alerted = new Set<number>();
  private alerts: HTMLElement | null = null;

  /** `mine`: whether a breach is this viewer's to hear about (an operator: their chats and
   * their queues' waiting ones; a supervisor: all they receive). */
  constructor(
    private t: T,
    private prefix: "op." | "sv.",
    private mine: (s: SlaPayload) => boolean,
    private onBreach: (text: string, s: SlaPayload) => void = () => undefined,
  ) {}

  async load(): Promise<void> {
    const started = this.version;
    const resp = await fetch("/api/v1/sla/open", { credentials: "same-origin" });
    if (!resp.ok) return;
    const rows = (await resp.json()) as SlaPayload[];
    const newer = (id: number): boolean => (this.touched.get(id) ?? -1) > started;
    for (const id of [...this.byConversation.keys()]) if (!newer(id)) this.byConversation.delete(id);
    for (const s of rows) {
      if (newer(s.conversation_id)) continue; // an event since the request is the fresher truth
      this.byConversation.set(s.conversation_id, s);
      if (s.breached_at) this.alerted.add(s.id); // breached before this page loaded: no new alert
    }
    this.decorate(document);
  }

  /** Apply an `sla.*` event. Call it for every event the socket delivers, before any
   * snapshot-based de-duplication: the lists' snapshots don't carry the clocks. */
  apply(e: { type: string; data: unknown; seq?: number }): void {
    if (e.type !== "sla.changed" && e.type !== "sla.breached") return;
    const s = e.data as SlaPayload;
    if (e.seq !== undefined) {
      if (e.seq <= (this.seqOf.get(s.conversation_id) ?? 0)) return;
      this.seqOf.set(s.conversation_id, e.seq);
    }
    this.touched.set(s.conversation_id, ++this.version);
    if (s.ended_at) this.byConversation.delete(s.conversation_id);
    else this.byConversation.set(s.conversation_id, s);
    if (e.type === "sla.breached" && !this.alerted.has(s.id) && this.mine(s)) {
      this.alerted.add(s.id);
      this.raise(s);
    }
    this.decorate(document);
  }

  private raise(s: SlaPayload): void {
    if (!this.alerts) {
      this.alerts = el("div", { class: "sla-alerts", role: "alert", "data-testid": "sla-alerts" });
      document.body.append(this.alerts);
    }
    const text = this.t(`${this.prefix}sla.breach_${s.kind}`, { id: s.conversation_id });
    const item = el(
      "div",
      { class: "sla-alert", "data-testid": "sla-alert", "data-conversation": s.conversation_id },
      el("span", {}, text),
      el("button", { type: "button", "aria-label": this.t(`${this.prefix}sla.dismiss`), onclick: () => item.remove() }, "×"),
    );
    this.alerts.append(item);
    this.onBreach(text, s);
  }

  /** Colour, count down and order the list items under `root` (called on every tick). */
  decorate(root: ParentNode): void {
    const now = Date.now();
    const parents = new Set<HTMLElement>();
    root.querySelectorAll<HTMLElement>(ITEMS).forEach((node) => {
      const s = this.byConversation.get(idOf(node));
      let badge = node.querySelector<HTMLElement>(':scope > [data-testid="sla"]');
      node.classList.remove("sla-ok", "sla-warning", "sla-breached");
      if (!s) {
        badge?.remove();
        delete node.dataset.sla;
        return;
      }
      const state = stateAt(s, now);
      node.classList.add(`sla-${state}`);
      node.dataset.sla = state;
      node.dataset.slaDue = s.due_at || "";
      if (!badge) {
        badge = el("span", { class: "sla-badge", "data-testid": "sla" });
        node.append(badge);
      }
      badge.title = this.t(`${this.prefix}sla.${s.kind}`);
      // Time left; once breached, how long it is overdue (never a positive count on red).
      const left = Date.parse(s.due_at || "") - now;
      badge.textContent = clock(state === "breached" ? Math.min(left, -0.001) : left);
      if (node.parentElement) parents.add(node.parentElement);
    });
    for (const parent of parents) this.order(parent);
  }

  /** Items with a clock first, soonest breach first; the others keep their order after them. */
  private order(parent: HTMLElement): void {
    const items = [...parent.children].filter((n): n is HTMLElement => n instanceof HTMLElement && n.matches(ITEMS));
    const due = (n: HTMLElement): number => (n.dataset.slaDue ? Date.parse(n.dataset.slaDue) : Infinity);
    const sorted = [...items].sort((a, b) => due(a) - due(b));
    if (sorted.every((n, i) => n === items[i])) return;
    const anchor = items[items.length - 1].nextSibling;
    for (const n of sorted) parent.insertBefore(n, anchor);
  }
}
