// The softphone of the operator window (WebRTC, JsSIP): for operators whose endpoint is the
// browser, Omni rings this softphone instead of a desk phone. It registers over SIP-over-
// WebSocket with the credentials Omni issues for this operator (the `softphone` call; never
// typed), rings inside the call panel when Omni's offer arrives, and carries the audio. What
// changes the call for the core (hold, transfer, hang-up, click-to-call) still goes through
// Omni, so the core state stays true; mute and DTMF are the softphone's own.
import * as JsSIP from "jssip";
import type { RTCSession } from "jssip/lib/RTCSession";
import type { IncomingRTCSessionEvent, OutgoingRTCSessionEvent } from "jssip/lib/UA";
import type { Socket } from "socket.io-client";
import { call, clear, el } from "../common";
import { T } from "./ui";

interface Credentials {
  endpoint: "desk" | "browser";
  configured?: boolean;
  ws_url?: string;
  uri?: string;
  username?: string;
  password?: string;
  display_name?: string;
  ice_servers?: string[];
}

/** What the softphone shows: `data-state` of `softphone-status`. */
type State = "off" | "unconfigured" | "connecting" | "ready" | "reconnecting" | "failed" | "ringing" | "in_call";

const KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"];
/** A click-to-call rings the operator's own softphone first: answered by itself within this. */
const AUTO_ANSWER_MS = 30_000;
/** How long the microphone check listens for sound before it calls the microphone silent. */
const MIC_CHECK_MS = 4000;

export class Softphone {
  readonly box = el("section", { class: "panel panel-softphone hidden", "data-testid": "softphone" });
  private readonly status = el("div", { class: "softphone-status", "data-testid": "softphone-status", "data-state": "off" });
  private readonly error = el("div", { class: "softphone-error error hidden", "data-testid": "softphone-error", role: "alert" });
  private readonly controls = el("div", { class: "softphone-controls" });
  private readonly check = el("div", { class: "softphone-check muted", "data-testid": "softphone-check" });
  private readonly audio = el("audio", { autoplay: true, "data-testid": "softphone-audio" }) as HTMLAudioElement;
  private ua: JsSIP.UA | null = null;
  private session: RTCSession | null = null;
  private creds: Credentials | null = null;
  private state: State = "off";
  private autoAnswerUntil = 0;
  private sentDigits = "";

  constructor(
    private readonly socket: Socket,
    private readonly t: T,
    /** The call panel re-renders (an Answer button appears or goes). */
    private readonly changed: () => void,
  ) {
    this.box.append(el("h3", {}, t("op.softphone")), this.status, this.error, this.controls, this.check, this.audio);
    window.addEventListener("beforeunload", () => this.ua?.stop());
  }

  /** Ask Omni for this operator's endpoint and credentials; (re)start the softphone. Called at
   * every connect of the operator socket: a changed endpoint is followed without a reload. */
  async start(): Promise<void> {
    const ack = await call(this.socket, "softphone");
    if (!ack.ok) return;
    const creds = ack as unknown as Credentials;
    const same = this.creds && JSON.stringify(this.creds) === JSON.stringify(creds);
    if (same && this.ua) return;
    this.creds = creds;
    this.ua?.stop();
    this.ua = null;
    this.box.classList.toggle("hidden", creds.endpoint !== "browser");
    if (creds.endpoint !== "browser") return this.show("off");
    if (!creds.configured || !creds.ws_url || !creds.uri) {
      this.show("unconfigured");
      return this.fail(this.t("op.softphone_not_configured"));
    }
    this.show("connecting");
    void this.probeMicrophone();
    const ua = new JsSIP.UA({
      sockets: [new JsSIP.WebSocketInterface(creds.ws_url)],
      uri: creds.uri,
      authorization_user: creds.username,
      password: creds.password,
      display_name: creds.display_name,
      register: true,
      register_expires: 300,
      session_timers: false,
      connection_recovery_min_interval: 1,
      connection_recovery_max_interval: 8,
      user_agent: "Omni softphone",
    });
    ua.on("connecting", () => {
      if (this.state !== "reconnecting") this.show("connecting");
    });
    ua.on("disconnected", () => {
      // JsSIP reconnects by itself (doubling 1 → 8 s) and registers again once connected.
      this.show("reconnecting");
      this.fail(this.t("op.softphone_connection_lost"));
    });
    ua.on("registered", () => {
      this.clearError("connection");
      this.show(this.session ? this.sessionState() : "ready");
    });
    ua.on("registrationFailed", (e: { cause?: string }) => {
      if (this.state === "reconnecting") return; // the transport dropped: reported already
      this.show("failed");
      this.fail(this.t("op.softphone_refused", { cause: e.cause ?? "" }));
    });
    ua.on("newRTCSession", (e: IncomingRTCSessionEvent | OutgoingRTCSessionEvent) => this.incoming(e));
    this.ua = ua;
    ua.start();
  }

  /** The softphone rings (Omni's offer reached this browser): the call panel shows Answer. */
  ringing(): boolean {
    return this.state === "ringing";
  }

  /** A live SIP call in this browser (hang-up must end it here too). */
  inCall(): boolean {
    return this.session !== null;
  }

  /** Calls ring here (not on a desk phone): the browser endpoint of an install that has one. */
  enabled(): boolean {
    return this.creds?.endpoint === "browser" && !!this.creds.configured;
  }

  /** Click-to-call: Omni rings this softphone first; it answers by itself. */
  expectOwnCall(): void {
    this.autoAnswerUntil = Date.now() + AUTO_ANSWER_MS;
  }

  answer(): void {
    const s = this.session;
    if (!s || this.state !== "ringing") return;
    s.answer({
      mediaConstraints: { audio: true, video: false },
      pcConfig: { iceServers: (this.creds?.ice_servers ?? []).map((urls) => ({ urls })) },
    });
  }

  /** Refusing in the browser is the phone saying busy: Omni moves the offer on at once. */
  decline(): void {
    this.session?.terminate({ status_code: 486, reason_phrase: "Busy Here" });
  }

  /** After Omni hung the call up (or to stop a ringing one): end the SIP call here. */
  hangup(): void {
    const s = this.session;
    if (s && !s.isEnded()) s.terminate();
  }

  private incoming(e: IncomingRTCSessionEvent | OutgoingRTCSessionEvent): void {
    if (e.originator !== "remote") return;
    const s = e.session;
    if (this.session) {
      s.terminate({ status_code: 486, reason_phrase: "Busy Here" });
      return;
    }
    this.session = s;
    this.sentDigits = "";
    s.on("peerconnection", (ev: { peerconnection: RTCPeerConnection }) => this.attachAudio(ev.peerconnection));
    s.on("accepted", () => this.show("in_call"));
    s.on("confirmed", () => this.show("in_call"));
    s.on("muted", () => this.renderControls());
    s.on("unmuted", () => this.renderControls());
    s.on("ended", () => this.ended());
    s.on("failed", (ev: { cause: string }) => {
      if (ev.cause === JsSIP.C.causes.USER_DENIED_MEDIA_ACCESS) this.fail(this.t("op.softphone_mic_refused"));
      this.ended();
    });
    if (Date.now() < this.autoAnswerUntil) {
      this.autoAnswerUntil = 0;
      this.show("ringing");
      this.answer();
      return;
    }
    this.show("ringing");
  }

  private ended(): void {
    this.session = null;
    this.audio.srcObject = null;
    this.show(this.state === "reconnecting" ? "reconnecting" : "ready");
  }

  private sessionState(): State {
    return this.session?.isEstablished() ? "in_call" : "ringing";
  }

  private attachAudio(pc: RTCPeerConnection): void {
    pc.addEventListener("track", (ev: RTCTrackEvent) => {
      this.audio.srcObject = ev.streams[0] ?? new MediaStream([ev.track]);
    });
  }

  private show(state: State): void {
    const was = this.state;
    this.state = state;
    this.status.setAttribute("data-state", state);
    this.status.textContent = this.t(`op.softphone_${state}`);
    this.renderControls();
    if ((was === "ringing") !== (state === "ringing")) this.changed();
  }

  private renderControls(): void {
    clear(this.controls);
    const s = this.session;
    const inCall = this.state === "in_call" && s !== null;
    if (this.state === "ringing" && s) {
      this.controls.append(
        el("div", { class: "row" },
          el("button", { class: "primary", "data-testid": "softphone-answer", onclick: () => this.answer() }, this.t("op.softphone_answer")),
          el("button", { "data-testid": "softphone-decline", onclick: () => this.decline() }, this.t("op.softphone_decline")),
        ),
      );
    }
    if (inCall) {
      const muted = s.isMuted().audio === true;
      const keypad = el("div", { class: "keypad", "data-testid": "softphone-keypad" });
      for (const key of KEYS) {
        keypad.append(el("button", { "data-testid": `softphone-key-${key}`, onclick: () => this.dtmf(key) }, key));
      }
      this.controls.append(
        el("button", {
          "data-testid": "softphone-mute",
          "data-muted": muted ? "yes" : "no",
          "aria-pressed": muted ? "true" : "false",
          onclick: () => (muted ? s.unmute({ audio: true }) : s.mute({ audio: true })),
        }, muted ? this.t("op.softphone_unmute") : this.t("op.softphone_mute")),
        keypad,
        el("div", { class: "muted", "data-testid": "softphone-digits" }, this.sentDigits),
      );
    }
    if (this.state !== "off" && this.state !== "unconfigured") {
      this.controls.append(
        el("div", { class: "row" },
          el("button", { "data-testid": "softphone-mic-check", onclick: () => void this.micCheck() }, this.t("op.softphone_mic_check")),
          el("button", { "data-testid": "softphone-speaker-check", onclick: () => void this.speakerCheck() }, this.t("op.softphone_speaker_check")),
        ),
      );
    }
  }

  private dtmf(key: string): void {
    const s = this.session;
    if (!s?.isEstablished()) return;
    s.sendDTMF(key);
    this.sentDigits += key;
    this.renderControls();
  }

  /** At start: a microphone the browser refuses (or lacks) is said before a call rings. */
  private async probeMicrophone(): Promise<void> {
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      stream.getTracks().forEach((track) => track.stop());
      this.clearError("mic");
    } catch (exc) {
      this.fail(this.micProblem(exc), "mic");
    }
  }

  private micProblem(exc: unknown): string {
    const name = exc instanceof DOMException ? exc.name : "";
    if (name === "NotFoundError" || name === "OverconstrainedError") return this.t("op.softphone_no_mic");
    if (name === "NotAllowedError" || name === "SecurityError") return this.t("op.softphone_mic_refused");
    return this.t("op.softphone_mic_failed", { error: String(exc) });
  }

  /** Listen to the microphone until it hears something (or say it is silent). */
  private async micCheck(): Promise<void> {
    this.check.textContent = this.t("op.softphone_mic_listening");
    this.check.setAttribute("data-result", "listening");
    let stream: MediaStream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (exc) {
      this.check.textContent = "";
      this.check.setAttribute("data-result", "refused");
      this.fail(this.micProblem(exc), "mic");
      return;
    }
    this.clearError("mic");
    const ctx = new AudioContext();
    const analyser = ctx.createAnalyser();
    ctx.createMediaStreamSource(stream).connect(analyser);
    const samples = new Uint8Array(analyser.fftSize);
    const started = performance.now();
    const heard = await new Promise<boolean>((resolve) => {
      const listen = (): void => {
        analyser.getByteTimeDomainData(samples);
        const peak = samples.reduce((max, v) => Math.max(max, Math.abs(v - 128)), 0);
        if (peak > 4) resolve(true);
        else if (performance.now() - started > MIC_CHECK_MS) resolve(false);
        else requestAnimationFrame(listen);
      };
      listen();
    });
    stream.getTracks().forEach((track) => track.stop());
    void ctx.close();
    this.check.setAttribute("data-result", heard ? "works" : "silent");
    this.check.textContent = this.t(heard ? "op.softphone_mic_works" : "op.softphone_mic_silent");
  }

  /** A short tone on the output the calls play on. */
  private async speakerCheck(): Promise<void> {
    const ctx = new AudioContext();
    const tone = ctx.createOscillator();
    tone.frequency.value = 440;
    tone.connect(ctx.destination);
    tone.start();
    tone.stop(ctx.currentTime + 1);
    this.check.setAttribute("data-result", "tone");
    this.check.textContent = this.t("op.softphone_speaker_playing");
    tone.onended = () => void ctx.close();
  }

  private fail(text: string, kind: "connection" | "mic" = "connection"): void {
    this.error.textContent = text;
    this.error.setAttribute("data-kind", kind);
    this.error.classList.remove("hidden");
  }

  private clearError(kind: "connection" | "mic"): void {
    if (this.error.getAttribute("data-kind") !== kind) return;
    this.error.textContent = "";
    this.error.removeAttribute("data-kind");
    this.error.classList.add("hidden");
  }
}
