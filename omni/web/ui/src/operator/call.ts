// A voice conversation's call panel (right column, above the caller's card): ringing →
// "answer on your phone", then talk time ticking, Hold/Resume and Hang up, then the recording.
// Answering happens on the phone; the window only shows it. Facts come from the view's `call`.
import { icon } from "../icons";
import { PartSpec, duration, el, keepParts, recordingPlayer } from "../common";
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

/** Lays out the call panel. Called on every event of the conversation (and on the re-read of
 * its call that follows), so each part is rebuilt only when the facts it shows change: Hold or
 * Hang up rebuilt under the operator lost a click whose press and release straddled the
 * redraw, and a rebuilt recording its playback. Every part's facts name the conversation, whose
 * id the buttons act on (the panel is the same for every conversation opened). */
export function renderCall(
  box: HTMLElement,
  c: Conversation,
  call: CallFacts | null | undefined,
  mine: boolean,
  t: T,
  act: CallActions,
): void {
  box.classList.toggle("hidden", !call);
  if (!call) {
    keepParts(box, []);
    return;
  }
  box.setAttribute("data-state", call.state);
  const key = call.state === "ringing" && call.direction === "out" ? "op.call_dialling" : STATE_KEYS[call.state];
  const parts: PartSpec[] = [
    {
      name: "head",
      facts: [c.id, call.state, key, call.number],
      build: () => [
        el(
          "h3",
          {},
          icon("voice"),
          " ",
          el("span", { "data-testid": "call-state", "data-state": call.state }, t(key)),
          call.number ? el("span", { class: "call-number", "data-testid": "call-number" }, ` ${call.number}`) : null,
        ),
      ],
    },
  ];
  const ringingSince = c.offered_at || c.created_at;
  const ringTime = (): HTMLElement =>
    el("div", { class: "call-times" }, `${t("op.ring_time")}: `, since(ringingSince, { "data-testid": "ring-time" }));
  if (call.state === "ringing" && call.direction === "in" && (c.status === "offered" || c.status === "queued")) {
    const answer = act.answerHere;
    parts.push(
      answer
        ? {
            name: "answer",
            facts: [c.id, ringingSince],
            build: () => [
              el("button", { class: "primary", "data-testid": "call-answer", onclick: () => answer() }, icon("voice"), ` ${t("op.softphone_answer")}`),
              ringTime(),
            ],
          }
        : {
            name: "answer-hint",
            facts: [c.id, ringingSince, act.answerHint ?? null],
            build: () => [el("p", { class: "answer-hint", "data-testid": "answer-on-phone" }, act.answerHint ?? t("op.answer_on_phone")), ringTime()],
          },
    );
  } else if (callIsLive(call)) {
    const talking = call.answered_at || c.accepted_at;
    const holding = call.state === "on_hold" ? call.hold_started_at : null;
    parts.push({
      name: "times",
      facts: [c.id, talking, holding],
      build: () => {
        const times = el("div", { class: "call-times" }, `${t("op.talk_time")}: `, since(talking, { "data-testid": "talk-time" }));
        if (holding) times.append(" · ", `${t("op.hold_time")}: `, since(holding, { "data-testid": "hold-time" }));
        return [times];
      },
    });
    if (mine) {
      const talkingNow = call.state === "talking";
      parts.push({
        name: "buttons",
        facts: [c.id, talkingNow],
        build: () => [
          el(
            "div",
            { class: "row call-buttons" },
            el("button", { "data-testid": "call-hold", onclick: () => act.hold(talkingNow) }, talkingNow ? t("op.hold") : t("op.unhold")),
            el("button", { class: "danger", "data-testid": "call-hangup", onclick: () => act.hangup() }, t("op.hang_up")),
          ),
        ],
      });
    }
  } else if (call.state === "ended") {
    const summary = [
      `${t("op.talk_time")}: ${duration(Math.round(call.talk_seconds))} · ${t("op.ring_time")}: ${duration(Math.round(call.ring_seconds))}`,
      call.hold_seconds ? ` · ${t("op.hold_time")}: ${duration(call.hold_seconds)}` : "",
    ];
    parts.push({
      name: "summary",
      facts: [c.id, summary],
      build: () => [el("div", { class: "call-times muted", "data-testid": "call-summary" }, ...summary)],
    });
  }
  const url = call.recording && call.state === "ended" ? call.recording_url : null;
  if (url) {
    parts.push({
      name: "recording",
      facts: [url],
      build: () => [el("h4", {}, t("op.recording")), recordingPlayer(url, { speed: t("op.speed"), download: t("op.download") })],
    });
  }
  keepParts(box, parts);
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
