// A voice conversation's call panel (right column, above the caller's card): ringing →
// "answer on your phone", then talk time ticking, Hold/Resume and Hang up, then the recording.
// Answering happens on the phone; the window only shows it. Facts come from the view's `call`.
import { icon } from "../icons";
import { clear, duration, el, keptPlayer, recordingPlayer } from "../common";
import { CallFacts, Conversation, DialQueue } from "./types";
import { T, since } from "./ui";

export interface CallActions {
  hold(on: boolean): void;
  hangup(): void;
  /** The browser softphone rings for this offer: answer it in this window. */
  answerHere?: () => void;
  /** Where calls are answered when not on the desk phone (the softphone: "here"). */
  answerHint?: string;
}

const STATE_KEYS: Record<string, string> = {
  ringing: "op.call_ringing",
  talking: "op.call_talking",
  on_hold: "op.call_on_hold",
  ended: "op.call_ended",
};

export function callIsLive(call: CallFacts | null | undefined): boolean {
  return !!call && (call.state === "talking" || call.state === "on_hold");
}

export function renderCall(
  box: HTMLElement,
  c: Conversation,
  call: CallFacts | null | undefined,
  mine: boolean,
  t: T,
  act: CallActions,
): void {
  const kept = call?.recording_url ? keptPlayer(box, call.recording_url) : null; // survives the re-render
  clear(box);
  box.classList.toggle("hidden", !call);
  if (!call) return;
  const key = call.state === "ringing" && call.direction === "out" ? "op.call_dialling" : STATE_KEYS[call.state];
  box.setAttribute("data-state", call.state);
  box.append(
    el(
      "h3",
      {},
      icon("voice"),
      " ",
      el("span", { "data-testid": "call-state", "data-state": call.state }, t(key)),
      call.number ? el("span", { class: "call-number", "data-testid": "call-number" }, ` ${call.number}`) : null,
    ),
  );
  if (call.state === "ringing" && call.direction === "in") {
    if ((c.status === "offered" || c.status === "queued") && act.answerHere) {
      const answer = act.answerHere;
      box.append(
        el("button", { class: "primary", "data-testid": "call-answer", onclick: () => answer() }, icon("voice"), ` ${t("op.softphone_answer")}`),
        el("div", { class: "call-times" }, `${t("op.ring_time")}: `, since(c.offered_at || c.created_at, { "data-testid": "ring-time" })),
      );
    } else if (c.status === "offered" || c.status === "queued") {
      box.append(
        el("p", { class: "answer-hint", "data-testid": "answer-on-phone" }, act.answerHint ?? t("op.answer_on_phone")),
        el("div", { class: "call-times" }, `${t("op.ring_time")}: `, since(c.offered_at || c.created_at, { "data-testid": "ring-time" })),
      );
    }
  } else if (callIsLive(call)) {
    const times = el(
      "div",
      { class: "call-times" },
      `${t("op.talk_time")}: `,
      since(call.answered_at || c.accepted_at, { "data-testid": "talk-time" }),
    );
    if (call.state === "on_hold" && call.hold_started_at) {
      times.append(" · ", `${t("op.hold_time")}: `, since(call.hold_started_at, { "data-testid": "hold-time" }));
    }
    box.append(times);
    if (mine) {
      box.append(
        el(
          "div",
          { class: "row call-buttons" },
          el(
            "button",
            { "data-testid": "call-hold", onclick: () => act.hold(call.state === "talking") },
            call.state === "talking" ? t("op.hold") : t("op.unhold"),
          ),
          el("button", { class: "danger", "data-testid": "call-hangup", onclick: () => act.hangup() }, t("op.hang_up")),
        ),
      );
    }
  } else if (call.state === "ended") {
    box.append(
      el(
        "div",
        { class: "call-times muted", "data-testid": "call-summary" },
        `${t("op.talk_time")}: ${duration(Math.round(call.talk_seconds))} · ${t("op.ring_time")}: ${duration(Math.round(call.ring_seconds))}`,
        call.hold_seconds ? ` · ${t("op.hold_time")}: ${duration(call.hold_seconds)}` : "",
      ),
    );
  }
  if (call.recording && call.recording_url && call.state === "ended") {
    box.append(
      el("h4", {}, t("op.recording")),
      kept ?? recordingPlayer(call.recording_url, { speed: t("op.speed"), download: t("op.download") }),
    );
  }
}

/** The dial box (left column): number + queue to call from → ``click_to_call``. */
export function dialBox(queues: DialQueue[], t: T, dial: (number: string, queueId: number) => void): HTMLElement {
  const number = el("input", {
    type: "tel",
    placeholder: t("op.dial_number"),
    "aria-label": t("op.dial_number"),
    "data-testid": "dial-number",
    maxlength: 32,
    required: true,
  });
  const queue = el("select", { "data-testid": "dial-queue", "aria-label": t("op.queue") });
  for (const q of queues) queue.append(el("option", { value: q.id }, q.name));
  queue.hidden = queues.length < 2;
  return el(
    "section",
    { class: "panel panel-dial", "data-testid": "dial" },
    el("h3", {}, t("op.dial")),
    el(
      "form",
      {
        class: "row",
        onsubmit: (ev: Event) => {
          ev.preventDefault();
          if (number.value.trim()) dial(number.value.trim(), Number(queue.value));
        },
      },
      number,
      queue,
      el("button", { type: "submit", class: "primary", "data-testid": "dial-call" }, icon("voice"), ` ${t("op.dial_call")}`),
    ),
  );
}
