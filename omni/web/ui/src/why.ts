/** "Why this was offered": the routing rule behind an offer (``omni.domain.place.offer_why``),
 * shown in the operator's offer cards and next to the supervisor's conversations. */
import type { OfferWhy } from "./operator/types";

/** "Why this was offered to me" in one line, in the operator's language. */
export function whyText(why: OfferWhy, t: (key: string, values?: Record<string, string | number>) => string): string {
  const since = why.since ? new Date(why.since).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "";
  switch (why.rule) {
    case "affinity":
      return t("op.why.affinity", { id: why.conversation_id ?? "" });
    case "transfer":
      return t("op.why.transfer");
    case "reoffered":
      return t("op.why.reoffered", { since });
    case "callback":
      return t("op.why.callback", { since });
    default:
      return t("op.why.turn", { since, priority: why.priority ?? 0 });
  }
}
