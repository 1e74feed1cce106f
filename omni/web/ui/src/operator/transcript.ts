// "Send the transcript": the operator mails the customer the conversation (on their request),
// to the address on the card or one typed here — POST /api/v1/conversations/{id}/transcript —
// or downloads what the customer would get as a PDF (GET …/transcript.pdf).
import { el } from "../common";

type T = (key: string, params?: Record<string, string | number>) => string;

export function transcriptForm(t: T, conversationId: number, email: string): HTMLElement {
  const input = el("input", {
    type: "email",
    value: email,
    maxlength: 254,
    placeholder: t("op.transcript.email"),
    "aria-label": t("op.transcript.email"),
    "data-testid": "transcript-email",
  });
  const result = el("p", { class: "muted", role: "status", "data-testid": "transcript-result" });
  const send = async (): Promise<void> => {
    result.textContent = "";
    const resp = await fetch(`/api/v1/conversations/${conversationId}/transcript`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Omni-CSRF": "1" },
      body: JSON.stringify({ email: input.value.trim() || null }),
    });
    const body = (await resp.json().catch(() => ({}))) as { to?: string; detail?: string };
    result.textContent = resp.ok ? t("op.transcript.sent", { to: body.to ?? "" }) : body.detail || String(resp.status);
    result.className = resp.ok ? "muted" : "error";
  };
  return el(
    "div",
    { class: "transcript-form", "data-testid": "transcript" },
    el("strong", {}, t("op.transcript.title")),
    input,
    el("button", { type: "button", "data-testid": "transcript-send", onclick: () => void send() }, t("op.transcript.send")),
    el(
      "a",
      { href: `/api/v1/conversations/${conversationId}/transcript.pdf`, download: "", "data-testid": "transcript-pdf" },
      t("op.transcript.pdf"),
    ),
    result,
  );
}
