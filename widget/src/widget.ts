// Omni web chat widget. One <script src=".../widget/omni-widget.js" data-inbox="TOKEN" async>.
// Customer and operator text is only ever put in the page with textContent, never as HTML.
import { io, Socket } from "socket.io-client";
import { EN, TRANSLATIONS } from "../generated/messages";
import type { AckError } from "./generated/contracts";

type Attachment = { id: string; name: string; type: string; size: number; url: string; kind?: undefined };
type Button = { id: string; label: string };
type Extra = { kind: "buttons"; buttons: Button[] } | { kind: "button_reply"; id: string };
type Msg = {
  id: number;
  direction: "in" | "out";
  body: string;
  attachments: (Attachment | Extra)[];
  client_id: string | null;
  delivery: string;
  created_at: string;
};
type Field = { name: "name" | "email" | "phone" | "subject"; required: boolean };
type Config = {
  greeting?: string;
  greeting_ru?: string;
  colour?: string;
  prechat?: Field[];
  /** The inbox offers "call me back" while the customer waits (docs/routing.md). */
  call_me?: boolean;
};
type Limits = { max_body: number; max_message_bytes: number; max_upload_bytes: number };
type Csat = { question: string; labels: string[] };
type Closed = { conversation_id: number; csat: Csat | null };
type Welcome = {
  visitor: string;
  conversation_id: number | null;
  messages: Msg[];
  config: Config;
  online: boolean;
  limits?: Limits;
  closed?: Closed | null;
};
// A refusal's shape is the server's one contract (generated from omni/realtime/payloads.py).
type Ack = Partial<Omit<AckError, "ok" | "field">> & {
  ok: boolean;
  message?: Msg;
  position?: number;
  estimated_wait_seconds?: number | null;
  retry?: boolean;
  retry_after?: number;
  field?: string;
  max?: number;
};
type Resumed = { ok: boolean; messages?: Msg[]; more?: boolean };
type Pending = {
  client_id: string;
  body: string;
  attachments: string[];
  fields: Record<string, string>;
  button?: string;
};

const ACK_TIMEOUT_MS = 15000;
const RETRY_MS = 3000;
// Until the server's welcome says otherwise (welcome.limits).
const DEFAULT_LIMITS: Limits = { max_body: 10000, max_message_bytes: 256 * 1024, max_upload_bytes: 10 * 1024 * 1024 };
const COUNTER_FROM = 0.8; // show the character counter from 80 % of the limit
const PAPERCLIP =
  '<svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false"><path fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" d="M21 11.5l-8.6 8.6a5.5 5.5 0 01-7.8-7.8l8.6-8.6a3.7 3.7 0 015.2 5.2l-8.6 8.6a1.8 1.8 0 01-2.6-2.6l7.9-7.9"/></svg>';

// The texts come from the project's gettext catalogs (msgctxt "widget.*" in omni/locale), turned
// into generated/messages.ts by scripts/messages.mjs at build time; see docs/i18n.md.
function format(text: string, params: Record<string, string | number>): string {
  return text.replace(/\{(\w+)\}/g, (whole, name: string) => (name in params ? String(params[name]) : whole));
}

const script = document.currentScript as HTMLScriptElement | null;
const inbox = script?.dataset.inbox ?? "";
const base = script ? new URL(script.src).origin : location.origin;
type Locale = "ru" | "en";
const LOCALES: readonly Locale[] = ["en", "ru"];
// The site may fix the language (data-locale or Omni.setLocale); else the browser's.
let lang: Locale = pickLocale(script?.dataset.locale || navigator.language || "en");
// English for anything not translated yet.
let t: typeof EN = texts(lang);

function pickLocale(raw: string): Locale {
  return raw.toLowerCase().startsWith("ru") ? "ru" : "en";
}

function texts(l: Locale): typeof EN {
  return l === "en" ? EN : { ...EN, ...TRANSLATIONS[l] };
}
const storeKey = `omni:${inbox}`;

function load<T>(key: string, fallback: T): T {
  try {
    const raw = localStorage.getItem(`${storeKey}:${key}`);
    return raw ? (JSON.parse(raw) as T) : fallback;
  } catch {
    return fallback;
  }
}

function save(key: string, value: unknown): void {
  try {
    localStorage.setItem(`${storeKey}:${key}`, JSON.stringify(value));
  } catch {
    /* private mode: the chat still works, history just won't survive a reload */
  }
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function uid(): string {
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

// Everything lives in a shadow root: the host page's rules (even "* {...!important}") can't
// reach inside, and :host's own !important beats the page's on the host element itself.
const css = (colour: string) => `
:host{all:initial!important;display:block!important;position:static!important;visibility:visible!important;
opacity:1!important;width:0!important;height:0!important;margin:0!important;padding:0!important;border:0!important;
transform:none!important;filter:none!important;contain:none!important}
.omni-launcher{position:fixed;right:20px;bottom:20px;z-index:2147483000;border:0;border-radius:24px;
padding:12px 18px;background:${colour};color:#fff;font:15px system-ui,sans-serif;cursor:pointer;
box-shadow:0 4px 14px rgba(0,0,0,.2);display:flex;align-items:center;gap:8px;margin:0;text-transform:none;letter-spacing:normal}
.omni-dot{display:none;width:10px;height:10px;border-radius:50%;background:#e53935;box-shadow:0 0 0 2px #fff}
.omni-launcher.unread .omni-dot{display:inline-block}
.omni-preview{position:fixed;right:20px;bottom:76px;z-index:2147483000;max-width:280px;display:none;text-align:left;
background:#fff;color:#222;border:1px solid #ddd;border-radius:12px;padding:10px 12px;margin:0;cursor:pointer;
box-shadow:0 4px 14px rgba(0,0,0,.2);font:14px/1.4 system-ui,sans-serif}
.omni-preview.show{display:block}
.omni-preview strong{display:block;font-size:12px;color:#555;margin-bottom:2px}
.omni-preview span{display:-webkit-box;-webkit-line-clamp:3;-webkit-box-orient:vertical;overflow:hidden;
white-space:pre-wrap;word-wrap:break-word}
.omni-sr{position:absolute;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;clip:rect(0 0 0 0);border:0;white-space:nowrap}
.omni-panel{position:fixed;right:20px;bottom:76px;z-index:2147483000;width:340px;max-width:calc(100vw - 40px);
height:480px;max-height:calc(100vh - 100px);display:none;flex-direction:column;background:#fff;border-radius:12px;
box-shadow:0 8px 30px rgba(0,0,0,.25);font:14px/1.4 system-ui,sans-serif;color:#222;overflow:hidden}
.omni-panel *{box-sizing:border-box}
.omni-panel.open{display:flex}
.omni-panel button{font:inherit}
.omni-panel :focus-visible{outline:2px solid ${colour};outline-offset:2px}
.omni-head{background:${colour};color:#fff;padding:12px 14px;display:flex;justify-content:space-between;align-items:center}
.omni-head button{background:none;border:0;color:#fff;font-size:24px;line-height:1;cursor:pointer;padding:0;
min-width:36px;min-height:36px;border-radius:8px;display:flex;align-items:center;justify-content:center}
.omni-head button:hover{background:rgba(255,255,255,.15)}
.omni-title{font-weight:600;margin:0;font-size:15px}
.omni-offline{background:#fff8e1;color:#5d4300;padding:8px 14px;font-size:13px;border-bottom:1px solid #f3e3a8}
.omni-log{flex:1;overflow-y:auto;padding:10px;display:flex;flex-direction:column;gap:6px}
.omni-msg{max-width:80%;padding:7px 10px;border-radius:10px;white-space:pre-wrap;word-wrap:break-word}
.omni-in{align-self:flex-end;background:${colour};color:#fff}
.omni-out{align-self:flex-start;background:#f0f0f0}
.omni-mark{font-size:11px;opacity:.75;margin-left:6px}
.omni-msg img{max-width:100%;display:block;margin-top:4px;border-radius:6px}
.omni-msg a{color:inherit}
.omni-quick{display:flex;flex-wrap:wrap;gap:6px;justify-content:flex-start}
.omni-quick button{border:1px solid ${colour};background:#fff;color:${colour};border-radius:14px;padding:4px 12px;cursor:pointer}
.omni-closed{align-self:stretch;text-align:center;color:#555;font-size:13px;padding:10px 6px;border-top:1px dashed #ddd;
display:flex;flex-direction:column;gap:8px;align-items:center}
.omni-closed p{margin:0}
.omni-divider{align-self:stretch;text-align:center;color:#888;font-size:12px;border-top:1px solid #eee;padding-top:4px}
.omni-status{font-size:12px;color:#666;padding:0 10px 6px}
.omni-status:empty{display:none}
.omni-notice{margin:0 8px 6px;padding:6px 10px;border-radius:8px;background:#fdecea;color:#9b1c1c;font-size:13px}
.omni-notice:empty{display:none}
.omni-callme{display:flex;gap:6px;padding:0 10px 6px}
.omni-callme[hidden]{display:none}
.omni-callme input{flex:1;min-width:0;height:32px;border:1px solid #ccc;border-radius:8px;padding:4px 8px;font:inherit}
.omni-callme button{height:32px;border:0;border-radius:8px;background:${colour};color:#fff;padding:0 10px;cursor:pointer}
.omni-tools{display:flex;gap:4px;align-items:center}
.omni-head .omni-tx-toggle{font-size:13px;padding:0 8px;border:1px solid rgba(255,255,255,.6)}
.omni-head .omni-tx-toggle[hidden]{display:none}
.omni-transcript{display:flex;flex-wrap:wrap;gap:6px;padding:8px 10px;border-bottom:1px solid #eee;background:#fafafa}
.omni-transcript[hidden]{display:none}
.omni-transcript input{flex:1 1 160px;min-width:0;height:32px;border:1px solid #ccc;border-radius:8px;padding:4px 8px;font:inherit}
.omni-transcript input[aria-invalid=true]{border-color:#c62828}
.omni-transcript button{height:32px;border:0;border-radius:8px;background:${colour};color:#fff;padding:0 10px;cursor:pointer}
.omni-transcript a{color:${colour};font-size:13px;align-self:center}
.omni-transcript p{flex-basis:100%;margin:0;font-size:12px;color:#555}
.omni-transcript p.err{color:#c62828}
.omni-transcript p:empty{display:none}
.omni-form{display:flex;gap:6px;padding:8px;border-top:1px solid #eee;align-items:flex-end}
.omni-form textarea{flex:1;resize:none;height:40px;border:1px solid #ccc;border-radius:8px;padding:8px;font:inherit;min-width:0}
.omni-form textarea[aria-invalid=true]{border-color:#c62828}
.omni-file{display:none}
.omni-attach{flex:none;width:40px;height:40px;border:1px solid #ccc;border-radius:8px;background:#fff;color:#555;cursor:pointer;
display:flex;align-items:center;justify-content:center;padding:0}
.omni-attach:hover{color:${colour};border-color:${colour}}
.omni-primary{border:0;border-radius:8px;background:${colour};color:#fff;padding:0 14px;height:40px;font-weight:600;cursor:pointer}
.omni-primary:hover{filter:brightness(1.1)}
.omni-secondary{border:1px solid ${colour};border-radius:8px;background:#fff;color:${colour};padding:6px 12px;cursor:pointer}
.omni-counter{font-size:11px;color:#666;text-align:right;padding:0 10px}
.omni-counter:empty{display:none}
.omni-counter.over{color:#c62828;font-weight:600}
.omni-prechat{padding:14px;display:flex;flex-direction:column;gap:12px;overflow-y:auto;flex:1}
.omni-field{display:flex;flex-direction:column;gap:4px}
.omni-field label{font-size:13px;font-weight:600;color:#333}
.omni-prechat input{width:100%;height:38px;border:1px solid #ccc;border-radius:8px;padding:6px 10px;font:inherit}
.omni-prechat input[aria-invalid=true]{border-color:#c62828}
.omni-prechat .omni-primary{width:100%;margin-top:4px}
.omni-error{color:#c62828;font-size:12px}
.omni-error:empty{display:none}
@media (max-width:640px){
.omni-panel{inset:0;right:0;bottom:0;width:100%;max-width:none;height:100vh;height:100dvh;max-height:none;border-radius:0;
padding-bottom:env(safe-area-inset-bottom)}
.omni-root.is-open .omni-launcher,.omni-root.is-open .omni-preview{display:none}
.omni-head{padding:8px 8px 8px 14px}
.omni-head button{min-width:44px;min-height:44px;font-size:28px}
.omni-form textarea,.omni-prechat input,.omni-callme input,.omni-transcript input{font-size:16px}
.omni-head .omni-tx-toggle{font-size:13px}
}
`;

class OmniWidget {
  private socket: Socket;
  private panel = el("div", "omni-panel");
  private log = el("div", "omni-log");
  private status = el("div", "omni-status");
  private input = el("textarea");
  private fileInput = el("input");
  private prechat = el("form", "omni-prechat");
  private form = el("form", "omni-form");
  private rendered = new Map<string, HTMLElement>();
  private pending: Pending[] = load<Pending[]>("pending", []);
  private inflight = new Set<string>();
  private retryTimer = 0;
  private fields: Record<string, string> = load<Record<string, string>>("fields", {});
  private config: Config = {};
  private online = true;
  private started = load<boolean>("started", false);
  private typingTimer = 0;
  private style = el("style");
  private root = el("div", "omni-root");
  private launcher = el("button", "omni-launcher");
  private launcherText = el("span", "omni-launcher-text");
  private dot = el("span", "omni-dot");
  private preview = el("button", "omni-preview");
  private announcer = el("div", "omni-sr");
  private closeButton = el("button", "omni-close", "×");
  private txToggle = el("button", "omni-tx-toggle");
  private transcript = el("form", "omni-transcript");
  private txEmail = el("input");
  private txSend = el("button");
  private txDownload = el("a");
  private txResult = el("p");
  private title = el("h2", "omni-title");
  private sendButton = el("button", "omni-primary");
  private attachButton = el("button", "omni-attach");
  private unread = new Set<number>();
  private live = false; // messages after the first welcome are news (announced, previewed)
  private profile: [string, Record<string, unknown>, (ack: Ack) => void][] = [];
  private listeners = new Map<string, Set<(detail: unknown) => void>>();
  private userId = script?.dataset.userId || "";
  private userHash = script?.dataset.userHash || "";
  private offline = el("div", "omni-offline");
  private notice = el("div", "omni-notice");
  private counter = el("div", "omni-counter");
  private callMe = el("form", "omni-callme");
  private calledBack = false; // asked already: the place is kept, the form is not shown again
  private closedBox: HTMLElement | null = null;
  private closedConv = 0;
  private leftClosed = 0; // the closed conversation the customer moved on from (no notice again)
  private limits: Limits = DEFAULT_LIMITS;
  private welcomed = false; // the server's config is known on this connection
  private rateNotice = false; // the notice shows a rate-limit refusal, cleared once sending works again
  private syncedUpTo = 0; // every message up to this id is shown (welcome, then each resume)
  private catchingUp = false;
  private catchUpAgain = false; // a sync arrived during a catch-up: one more round after it

  constructor() {
    this.socket = io(`${base}/widget`, {
      // A logged-in site user: the site renders data-user-id and data-user-hash
      // (HMAC-SHA256 of the id with the inbox secret, computed on the site's server).
      auth: (cb) =>
        cb({
          inbox,
          visitor: load<string>("visitor", ""),
          user_id: this.userId || undefined,
          user_hash: this.userHash || undefined,
          lang, // server refusals come back in the widget's language
        }),
      transports: ["websocket", "polling"],
    });
    this.socket.on("welcome", (w: Welcome) => this.onWelcome(w));
    this.socket.on("message", (m: Msg) => this.onMessage(m));
    this.socket.on("typing", (d: { typing: boolean }) => this.showStatus(d.typing ? t.typing : ""));
    this.socket.on("position", (p: { position: number; estimated_wait_seconds: number | null }) =>
      this.showPosition(p.position, p.estimated_wait_seconds),
    );
    this.socket.on("sync", () => void this.catchUp());
    this.socket.on("closed", (c: Closed) => this.showClosed(c));
    this.socket.on("disconnect", () => {
      this.welcomed = false;
      this.showStatus(t.reconnecting);
    });
    this.socket.on("connect_error", (err: Error) => this.showStatus(err.message || t.reconnecting));
  }

  mount(): void {
    this.style.textContent = css("#1565c0");
    const host = document.createElement("omni-chat");
    const shadow = host.attachShadow({ mode: "open" });
    shadow.append(this.style, this.root);
    this.launcher.type = "button";
    this.launcher.append(this.dot, this.launcherText);
    this.launcher.setAttribute("aria-expanded", "false");
    this.launcher.addEventListener("click", () => this.toggle());
    this.preview.type = "button";
    this.preview.addEventListener("click", () => this.setOpen(true));
    this.panel.setAttribute("role", "dialog");
    this.panel.id = "omni-panel";
    this.launcher.setAttribute("aria-controls", this.panel.id);
    this.title.id = "omni-title";
    this.panel.setAttribute("aria-labelledby", this.title.id);
    this.panel.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.stopPropagation();
        this.setOpen(false);
      }
    });
    const head = el("div", "omni-head");
    this.closeButton.type = "button";
    this.closeButton.addEventListener("click", () => this.setOpen(false));
    this.buildTranscript();
    const tools = el("div", "omni-tools");
    tools.append(this.txToggle, this.closeButton);
    head.append(this.title, tools);
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) {
        e.preventDefault();
        this.submit();
      }
    });
    this.input.addEventListener("input", () => {
      this.typing();
      this.updateCounter();
    });
    this.fileInput.type = "file";
    this.fileInput.className = "omni-file";
    this.fileInput.tabIndex = -1;
    this.fileInput.setAttribute("aria-hidden", "true");
    this.fileInput.addEventListener("change", () => void this.upload());
    // The native "Choose File" control stays hidden behind a styled button.
    this.attachButton.type = "button";
    this.attachButton.innerHTML = PAPERCLIP; // a constant of ours, never customer text
    this.attachButton.addEventListener("click", () => this.fileInput.click());
    this.sendButton.type = "submit";
    this.form.append(this.attachButton, this.input, this.fileInput, this.sendButton);
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.submit();
    });
    this.offline.setAttribute("role", "status");
    this.offline.hidden = true;
    this.notice.setAttribute("role", "alert");
    this.counter.setAttribute("aria-live", "polite");
    // Screen readers hear operator replies as they arrive (the log itself stays quiet, so
    // the customer's own messages and the history are not read out again).
    this.log.setAttribute("role", "log");
    this.log.setAttribute("aria-live", "off");
    this.log.tabIndex = 0; // scrollable with the keyboard
    this.announcer.setAttribute("aria-live", "polite");
    this.announcer.setAttribute("aria-atomic", "true");
    this.buildCallMe();
    this.panel.append(head, this.transcript, this.offline, this.prechat, this.log, this.status, this.callMe, this.notice, this.counter, this.form);
    this.root.append(this.preview, this.launcher, this.panel, this.announcer);
    document.body.append(host);
    this.relabel();
    this.renderMode();
  }

  /** Every fixed text, in the current language (mount and ``Omni.setLocale``). */
  private relabel(): void {
    this.launcherText.textContent = t.open;
    this.closeButton.setAttribute("aria-label", t.close);
    this.closeButton.title = t.close;
    this.title.textContent = (lang === "ru" ? this.config.greeting_ru : this.config.greeting) || (this.welcomed ? t.greeting : t.open);
    this.input.placeholder = t.placeholder;
    this.input.setAttribute("aria-label", t.placeholder);
    this.attachButton.title = t.attach;
    this.attachButton.setAttribute("aria-label", t.attach);
    this.sendButton.textContent = t.send;
    this.log.setAttribute("aria-label", t.messages);
    this.offline.textContent = t.offline;
    const phone = this.callMe.querySelector("input");
    if (phone) {
      phone.placeholder = t.callMePhone;
      phone.setAttribute("aria-label", t.callMePhone);
    }
    const ask = this.callMe.querySelector("button");
    if (ask) ask.textContent = t.callMe;
    this.txToggle.textContent = t.transcript;
    this.txEmail.placeholder = t.transcriptEmail;
    this.txEmail.setAttribute("aria-label", t.transcriptEmail);
    this.txSend.textContent = t.transcriptSend;
    this.txDownload.textContent = t.transcriptDownload;
    this.transcript.setAttribute("aria-label", t.transcript);
    this.showUnread();
    if (this.prechat.childElementCount) {
      this.prechat.replaceChildren();
      this.renderMode();
    }
  }

  private toggle(): void {
    this.setOpen(!this.panel.classList.contains("open"));
  }

  setOpen(open: boolean): void {
    if (open === this.panel.classList.contains("open")) return;
    this.panel.classList.toggle("open", open);
    this.root.classList.toggle("is-open", open);
    this.launcher.setAttribute("aria-expanded", String(open));
    if (open) {
      this.markRead();
      const first = this.needsForm() ? this.prechat.querySelector("input") : this.input;
      (first ?? this.closeButton).focus();
    } else this.launcher.focus();
    this.showUnread();
    this.fire(open ? "opened" : "closed", {});
  }

  /** The launcher's dot and the preview of the newest unread operator reply (panel closed). */
  private showUnread(last?: Msg): void {
    const open = this.panel.classList.contains("open");
    if (open) this.unread.clear();
    const count = this.unread.size;
    this.launcher.classList.toggle("unread", count > 0);
    this.launcher.setAttribute("aria-label", count ? `${t.open} (${format(t.unread, { n: count })})` : t.open);
    if (!count || open) {
      this.preview.classList.remove("show");
      this.preview.replaceChildren();
      return;
    }
    if (last) {
      this.preview.replaceChildren(el("strong", "", t.newMessage), el("span", "", last.body || "📎"));
      this.preview.classList.add("show");
    }
  }

  // --- the JavaScript API (window.Omni; docs/widget.md) --------------------------------------

  on(event: string, cb: (detail: unknown) => void): void {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event)?.add(cb);
    if (event === "ready" && this.live) cb({});
  }

  off(event: string, cb: (detail: unknown) => void): void {
    this.listeners.get(event)?.delete(cb);
  }

  private fire(event: string, detail: unknown): void {
    for (const cb of Array.from(this.listeners.get(event) ?? [])) {
      try {
        cb(detail);
      } catch (err) {
        console.error(`Omni: a "${event}" listener failed`, err);
      }
    }
    window.dispatchEvent(new CustomEvent(`omni:${event}`, { detail }));
  }

  setLocale(locale: unknown): boolean {
    if (typeof locale !== "string" || !/^(ru|en)(-|_|$)/i.test(locale)) {
      console.error(`Omni.setLocale: "${String(locale)}" is not supported (use one of: ${LOCALES.join(", ")})`);
      return false;
    }
    lang = pickLocale(locale);
    t = texts(lang);
    this.relabel();
    return true;
  }

  /** Site data for the visitor's contact card: sent once connected; a refusal is logged on
   * the console with the server's reason and nothing is stored. */
  sendProfile(event: "set_user" | "set_attributes", data: Record<string, unknown>, api: string): Promise<boolean> {
    return new Promise((resolve) => {
      this.profile.push([
        event,
        data,
        (ack) => {
          if (!ack.ok) console.error(`Omni.${api}: ${ack.detail || ack.error || "refused"}${ack.field ? ` (${ack.field})` : ""}`);
          resolve(ack.ok);
        },
      ]);
      this.flushProfile();
    });
  }

  /** The site told who the visitor is: the pre-chat form is filled with it (and skipped when
   * that was all it asked). */
  knowUser(fields: Record<string, unknown>): void {
    for (const name of ["name", "email", "phone"] as const) {
      const value = fields[name];
      if (typeof value === "string" && value.trim()) this.fields[name] = value.trim();
    }
    save("fields", this.fields);
    if (!this.started && this.prechatFields().every((f) => !f.required || this.fields[f.name])) {
      this.started = true;
      save("started", true);
    }
    this.prechat.replaceChildren();
    this.renderMode();
  }

  /** ``setUser({id, hash})``: a signed-in site user; the connection starts again as them. */
  identify(id: string, hash: string): void {
    if (id === this.userId && hash === this.userHash) return;
    this.userId = id;
    this.userHash = hash;
    this.welcomed = false;
    this.socket.disconnect().connect();
  }

  private flushProfile(): void {
    if (!this.socket.connected || !this.welcomed) return;
    for (const [event, data, done] of this.profile.splice(0)) {
      this.socket
        .timeout(ACK_TIMEOUT_MS)
        .emit(event, data, (err: Error | null, ack: Ack) => done(err ? { ok: false, detail: t.offline } : ack));
    }
  }

  private onWelcome(w: Welcome): void {
    save("visitor", w.visitor);
    this.config = w.config || {};
    this.online = w.online;
    this.limits = { ...DEFAULT_LIMITS, ...(w.limits || {}) };
    this.welcomed = true;
    if (this.config.colour && /^#[0-9a-fA-F]{6}$/.test(this.config.colour)) this.style.textContent = css(this.config.colour);
    if (w.messages.length) this.started = true;
    this.title.textContent = (lang === "ru" ? this.config.greeting_ru : this.config.greeting) || t.greeting;
    for (const m of w.messages) this.onMessage(m);
    this.syncedUpTo = Math.max(this.syncedUpTo, ...w.messages.map((m) => m.id));
    if (w.closed) this.showClosed(w.closed);
    this.showStatus("");
    this.offline.textContent = t.offline; // shown once, above the form or the chat
    this.offline.hidden = this.online;
    this.holdUntilPrechat();
    this.renderMode();
    this.updateCounter();
    this.inflight.clear(); // a new connection: acks of the old one will never come
    this.flush();
    this.flushProfile();
    const first = !this.live;
    this.live = true;
    if (first) this.fire("ready", { conversation_id: w.conversation_id });
  }

  private renderMode(): void {
    const needForm = !this.started && this.prechatFields().length > 0;
    this.txToggle.hidden = !this.started; // a transcript needs a conversation
    if (!this.started) this.transcript.hidden = true;
    this.prechat.style.display = needForm ? "flex" : "none";
    this.log.style.display = needForm ? "none" : "flex";
    this.form.style.display = needForm ? "none" : "flex";
    this.counter.style.display = needForm ? "none" : "";
    if (needForm && !this.prechat.childElementCount) this.buildPrechat();
  }

  private prechatFields(): Field[] {
    return this.config.prechat ?? [];
  }

  private buildPrechat(): void {
    const inputs: [Field, HTMLInputElement, HTMLElement][] = [];
    this.prechat.noValidate = true; // our own translated errors, not the browser's bubbles
    for (const f of this.prechatFields()) {
      const id = `omni-f-${f.name}`;
      const row = el("div", "omni-field");
      const label = el("label", "", `${t[f.name]}${f.required ? " *" : ""}`);
      label.htmlFor = id;
      const input = el("input");
      input.id = id;
      input.name = f.name;
      input.maxLength = f.name === "email" ? 254 : 128;
      input.type = f.name === "email" ? "email" : f.name === "phone" ? "tel" : "text";
      input.autocomplete = f.name === "phone" ? "tel" : f.name === "subject" ? "off" : f.name;
      if (this.fields[f.name]) input.value = this.fields[f.name];
      if (f.required) input.setAttribute("aria-required", "true");
      const err = el("div", "omni-error");
      err.id = `${id}-error`;
      input.setAttribute("aria-describedby", err.id);
      row.append(label, input, err);
      this.prechat.append(row);
      inputs.push([f, input, err]);
    }
    const start = el("button", "omni-primary", t.start);
    start.type = "submit";
    this.prechat.append(start);
    this.prechat.addEventListener("submit", (e) => {
      e.preventDefault();
      let ok = true;
      for (const [f, input, err] of inputs) {
        const value = input.value.replace(/\u0000/g, "").trim();
        const missing = f.required && !value;
        err.textContent = missing ? t.required : "";
        input.setAttribute("aria-invalid", String(missing));
        if (missing) ok = false;
        if (value) this.fields[f.name] = value;
      }
      if (!ok) return;
      save("fields", this.fields);
      this.started = true;
      save("started", true);
      this.renderMode();
      this.updateCounter();
      this.showNotice("");
      this.input.focus();
      this.flush();
    });
  }

  private onMessage(m: Msg): void {
    const key = m.client_id && m.direction === "in" ? `c:${m.client_id}` : `m:${m.id}`;
    let node = this.rendered.get(key);
    const fresh = !node;
    if (!node) {
      node = el("div", `omni-msg omni-${m.direction}`);
      this.rendered.set(key, node);
      this.place(node, m.id);
    }
    if (m.direction === "out" && m.delivery === "read") node.dataset.read = "1"; // seen in another tab
    if (m.id) node.dataset.id = String(m.id);
    node.replaceChildren();
    if (m.body) node.append(document.createTextNode(m.body));
    let buttons: Button[] = [];
    for (const a of m.attachments || []) {
      if (a.kind === "buttons") buttons = a.buttons;
      else if (a.kind === undefined) node.append(this.attachment(a));
    }
    // Quick replies belong to the newest message only; anything after it retires them.
    for (const old of Array.from(this.log.querySelectorAll(".omni-quick:not(.omni-csat)"))) old.remove();
    if (buttons.length && m.direction === "out" && node === this.log.lastElementChild) {
      const row = el("div", "omni-quick");
      for (const b of buttons) {
        const button = el("button", "", b.label);
        button.type = "button";
        button.addEventListener("click", () => this.submit([], b));
        row.append(button);
      }
      this.log.append(row);
    }
    if (m.direction === "in") node.append(el("span", "omni-mark", m.delivery === "read" ? t.read : t.sent));
    this.log.scrollTop = this.log.scrollHeight;
    if (m.direction === "out") {
      this.socket.emit("seen", { message_id: m.id, state: "delivered" });
      if (this.panel.classList.contains("open")) this.markRead();
      else if (m.id && !node.dataset.read) {
        this.unread.add(m.id);
        this.showUnread(m);
      }
      this.showStatus("");
    }
    if (fresh && this.live && (m.id || m.direction === "in")) {
      if (m.direction === "out" && m.body) this.announcer.textContent = m.body;
      this.fire("message", { id: m.id, direction: m.direction, body: m.body, created_at: m.created_at });
    }
  }

  /** In id order: a reply caught up after a Redis outage goes where it was written. */
  private place(node: HTMLElement, id: number): void {
    const later = id
      ? Array.from(this.log.querySelectorAll<HTMLElement>(".omni-msg")).find((n) => Number(n.dataset.id || 0) > id)
      : undefined;
    if (later) this.log.insertBefore(node, later);
    else this.log.append(node);
  }

  /** The server says its live path had a hole (Redis restarted): ask for every message after
   * the last point known complete; ids already shown are only updated, never shown twice. */
  private async catchUp(): Promise<void> {
    if (this.catchingUp) {
      this.catchUpAgain = true;
      return;
    }
    this.catchingUp = true;
    try {
      for (;;) {
        const ack = await new Promise<Resumed>((resolve) =>
          this.socket
            .timeout(ACK_TIMEOUT_MS)
            .emit("resume", { after: this.syncedUpTo }, (err: Error | null, a: Resumed) => resolve(err ? { ok: false } : a)),
        );
        if (!ack.ok || !ack.messages) return;
        for (const m of ack.messages) this.onMessage(m);
        this.syncedUpTo = Math.max(this.syncedUpTo, ...ack.messages.map((m) => m.id));
        if (!ack.more) return;
      }
    } finally {
      this.catchingUp = false;
      if (this.catchUpAgain) {
        this.catchUpAgain = false;
        void this.catchUp();
      }
    }
  }

  private attachment(a: Attachment): HTMLElement {
    const visitor = load<string>("visitor", "");
    const url = `${base}/api/v1/widget/files/${encodeURIComponent(a.id)}?inbox=${encodeURIComponent(
      inbox,
    )}&visitor=${encodeURIComponent(visitor)}`;
    if (a.type.startsWith("image/")) {
      const img = el("img");
      img.src = url;
      img.alt = a.name;
      return img;
    }
    const link = el("a", "", a.name);
    link.href = url;
    link.target = "_blank";
    link.rel = "noopener";
    return link;
  }

  private markRead(): void {
    for (const [key, node] of this.rendered) {
      if (key.startsWith("m:") && node.classList.contains("omni-out") && !node.dataset.read) {
        node.dataset.read = "1";
        this.socket.emit("seen", { message_id: Number(key.slice(2)), state: "read" });
      }
    }
  }

  private submit(attachments: string[] = [], pressed?: Button): void {
    const body = pressed ? pressed.label : this.input.value.trim();
    if (!body && !attachments.length) return;
    if (this.needsForm()) return; // the pre-chat form comes first; the text stays in the composer
    const p: Pending = { client_id: uid(), body, attachments, fields: this.fields, button: pressed?.id };
    const refused = this.localRefusal(p);
    if (refused) {
      this.showNotice(refused); // not sent: the text stays in the composer to be shortened
      return;
    }
    if (!pressed) this.input.value = "";
    this.updateCounter();
    this.startNewIfClosed();
    this.pending.push(p);
    save("pending", this.pending);
    this.onMessage({
      id: 0,
      direction: "in",
      body,
      attachments: [],
      client_id: p.client_id,
      delivery: t.sending,
      created_at: new Date().toISOString(),
    });
    const node = this.rendered.get(`c:${p.client_id}`);
    const mark = node?.querySelector(".omni-mark");
    if (mark) mark.textContent = t.sending;
    this.flush();
  }

  // Unacked messages are kept (also across reloads) and resent with the same client id:
  // the server stores each once and acks only after storing. Only refusals the server marks
  // retryable are kept; a message that can never be accepted goes back to the composer.
  private flush(): void {
    if (!this.socket.connected || !this.welcomed || this.needsForm()) return;
    for (const p of [...this.pending]) {
      if (this.inflight.has(p.client_id)) continue;
      const payload = this.payload(p);
      const refused = this.localRefusal(p, payload);
      if (refused) {
        this.giveBack(p, refused);
        continue;
      }
      this.inflight.add(p.client_id);
      this.socket.timeout(ACK_TIMEOUT_MS).emit("message", payload, (err: Error | null, ack: Ack) => {
        this.inflight.delete(p.client_id);
        if (err || this.retryable(ack)) {
          // Not stored (no answer, the server was busy, or too many messages): keep it and
          // send it again, for a rate limit exactly when the window reopens.
          if (ack?.error === "rate_limited") {
            const wait = Math.max(1, Math.ceil(ack.retry_after ?? 60));
            this.showNotice(format(t.rateLimited, { s: wait }));
            this.rateNotice = true;
            this.retryIn(wait * 1000);
          } else this.retrySoon();
          return;
        }
        if (!ack.ok) {
          this.refused(p, ack);
          return;
        }
        this.drop(p);
        if (this.rateNotice) {
          this.rateNotice = false;
          this.showNotice("");
        }
        if (ack.message) this.onMessage(ack.message);
        if (ack.position) this.showPosition(ack.position, ack.estimated_wait_seconds ?? null);
      });
    }
  }

  private payload(p: Pending): Record<string, unknown> {
    // Fields filled after the message was queued count too (the form is always first).
    const { name, email, phone, subject } = { ...p.fields, ...this.fields };
    return {
      client_id: p.client_id,
      body: p.body,
      attachments: p.attachments,
      button: p.button,
      name,
      email,
      phone,
      subject,
      lang,
    };
  }

  /** Why the server would refuse this message for good (checked before it is sent), or "". */
  private localRefusal(p: Pending, payload = this.payload(p)): string {
    if (Array.from(p.body).length > this.limits.max_body) return format(t.tooLong, { max: this.limits.max_body });
    if (p.body.indexOf("\u0000") >= 0) return t.badChars;
    // A frame over the server's limit would close the connection (and reconnect forever).
    if (new TextEncoder().encode(JSON.stringify(payload)).length > this.limits.max_message_bytes) return t.tooBig;
    return "";
  }

  private retryable(ack: Ack): boolean {
    if (ack.ok) return false;
    return ack.retry ?? (ack.error === "unavailable" || ack.error === "rate_limited");
  }

  /** A permanent refusal: forget the message (also the copy kept for reloads), say why in the
   * customer's language and give the text back to the composer. */
  private refused(p: Pending, ack: Ack): void {
    let reason = t.refused;
    if (ack.error === "too_long") reason = format(t.tooLong, { max: ack.max ?? this.limits.max_body });
    else if (ack.error === "bad_characters") reason = t.badChars;
    else if (ack.error === "prechat_required") {
      const field = (ack.field ?? "name") as Field["name"];
      reason = format(t.fillFirst, { field: t[field] ?? field });
      delete this.fields[field];
      save("fields", this.fields);
      this.started = false;
      save("started", false);
      if (!this.prechatFields().some((f) => f.name === field)) {
        this.config.prechat = [...this.prechatFields(), { name: field, required: true }];
        this.prechat.replaceChildren();
      }
    }
    this.giveBack(p, reason);
    this.renderMode();
    const err = this.prechat.querySelector(`#omni-f-${ack.field}-error`);
    if (err && ack.error === "prechat_required") err.textContent = t.required;
  }

  private giveBack(p: Pending, reason: string): void {
    this.drop(p);
    this.rendered.get(`c:${p.client_id}`)?.remove();
    this.rendered.delete(`c:${p.client_id}`);
    if (!p.button && p.body) {
      const typed = this.input.value;
      this.input.value = typed && typed !== p.body ? `${p.body}\n${typed}` : p.body;
    }
    this.updateCounter();
    this.showNotice(reason);
  }

  private needsForm(): boolean {
    return !this.started && this.prechatFields().length > 0;
  }

  /** Messages queued before the server's config arrived (typed while connecting) must not go
   * out without the required pre-chat fields: their text goes back to the composer, which
   * shows once the form is filled. */
  private holdUntilPrechat(): void {
    if (!this.needsForm()) return;
    const queued = this.pending.filter((p) => !p.button && !p.attachments.length);
    const texts = queued.map((p) => p.body);
    for (const p of queued) {
      this.drop(p);
      this.rendered.get(`c:${p.client_id}`)?.remove();
      this.rendered.delete(`c:${p.client_id}`);
    }
    if (texts.length) this.input.value = [...texts, this.input.value].filter(Boolean).join("\n");
  }

  private updateCounter(): void {
    const length = Array.from(this.input.value).length;
    const max = this.limits.max_body;
    const over = length > max;
    this.counter.textContent = length >= max * COUNTER_FROM ? `${length} / ${max}` : "";
    this.counter.classList.toggle("over", over);
    this.input.setAttribute("aria-invalid", String(over));
  }

  private showClosed(c: Closed): void {
    if ((this.closedConv === c.conversation_id && this.closedBox) || this.leftClosed === c.conversation_id) return;
    this.closedConv = c.conversation_id;
    this.closedBox?.remove();
    const box = el("div", "omni-closed");
    box.setAttribute("role", "status");
    box.append(el("p", "omni-closed-text", t.closed));
    if (c.csat) {
      box.append(el("p", "", c.csat.question));
      const row = el("div", "omni-quick omni-csat");
      c.csat.labels.forEach((label, i) => {
        const b = el("button", "", label);
        b.type = "button";
        b.addEventListener("click", () => {
          this.socket.emit("rate", { rating: i + 1 });
          row.replaceWith(el("p", "", t.thanks));
        });
        row.append(b);
      });
      box.append(row);
    }
    const again = el("button", "omni-secondary omni-new", t.newChat);
    again.type = "button";
    again.addEventListener("click", () => {
      this.startNewIfClosed();
      this.input.focus();
    });
    box.append(again);
    for (const old of Array.from(this.log.querySelectorAll(".omni-quick:not(.omni-csat)"))) old.remove();
    this.log.append(box);
    this.closedBox = box;
    this.showStatus("");
    this.log.scrollTop = this.log.scrollHeight;
  }

  /** After the closed notice, the next message starts a new conversation: show where. */
  private startNewIfClosed(): void {
    if (!this.closedConv) return;
    this.leftClosed = this.closedConv;
    this.closedConv = 0;
    this.closedBox?.querySelector(".omni-new")?.remove();
    this.closedBox = null;
    this.log.append(el("div", "omni-divider", t.newDivider));
    this.log.scrollTop = this.log.scrollHeight;
  }

  private showNotice(text: string): void {
    if (!text) this.rateNotice = false;
    this.notice.textContent = text;
  }

  private retryIn(ms: number): void {
    window.clearTimeout(this.retryTimer);
    this.retryTimer = window.setTimeout(() => {
      this.retryTimer = 0;
      this.flush();
    }, ms);
  }

  private retrySoon(): void {
    if (this.retryTimer) return;
    this.retryTimer = window.setTimeout(() => {
      this.retryTimer = 0;
      this.flush();
    }, RETRY_MS);
  }

  private drop(p: Pending): void {
    this.pending = this.pending.filter((x) => x.client_id !== p.client_id);
    save("pending", this.pending);
  }

  private async upload(): Promise<void> {
    const file = this.fileInput.files?.[0];
    if (!file) return;
    const data = new FormData();
    data.append("inbox", inbox);
    data.append("visitor", load<string>("visitor", ""));
    data.append("file", file);
    const resp = await fetch(`${base}/api/v1/widget/files`, { method: "POST", body: data });
    const body = (await resp.json()) as { id?: string; detail?: string };
    this.fileInput.value = "";
    if (!resp.ok || !body.id) {
      this.showNotice(body.detail || String(resp.status));
      return;
    }
    this.submit([body.id]);
  }

  private typing(): void {
    if (this.typingTimer) return;
    this.socket.emit("typing", { typing: true });
    this.typingTimer = window.setTimeout(() => {
      this.typingTimer = 0;
    }, 2000);
  }

  /** "Get the transcript": mailed (to the address typed here, or the one already known) or
   * downloaded as a PDF of the latest conversation; the visitor token proves whose it is. */
  private buildTranscript(): void {
    this.txToggle.type = "button";
    this.txToggle.hidden = true;
    this.txToggle.setAttribute("aria-expanded", "false");
    this.txToggle.addEventListener("click", () => {
      this.transcript.hidden = !this.transcript.hidden;
      this.txToggle.setAttribute("aria-expanded", String(!this.transcript.hidden));
      if (!this.transcript.hidden) {
        if (!this.txEmail.value) this.txEmail.value = this.fields.email || "";
        this.txLink();
        this.txEmail.focus();
      }
    });
    this.txEmail.type = "email";
    this.txEmail.autocomplete = "email";
    this.txEmail.maxLength = 254;
    this.txSend.type = "submit";
    this.txResult.setAttribute("role", "status");
    this.txDownload.target = "_blank";
    this.txDownload.rel = "noopener";
    this.txDownload.addEventListener("click", () => this.txLink()); // the token may be new
    this.transcript.hidden = true;
    this.transcript.noValidate = true;
    this.transcript.append(this.txEmail, this.txSend, this.txDownload, this.txResult);
    this.transcript.addEventListener("submit", (e) => {
      e.preventDefault();
      const email = this.txEmail.value.trim();
      if (email && !this.txEmail.checkValidity()) return this.txSay(t.transcriptBadEmail, true);
      this.txSay("", false);
      this.socket.timeout(ACK_TIMEOUT_MS).emit("transcript", { email: email || null }, (err: Error | null, ack: Ack & { to?: string }) => {
        if (err || !ack.ok) return this.txSay(err ? t.offline : ack.detail || "", true);
        this.txSay(format(t.transcriptSent, { to: ack.to || email }), false);
      });
    });
  }

  private txLink(): void {
    const q = new URLSearchParams({ inbox, visitor: load<string>("visitor", ""), lang });
    this.txDownload.href = `${base}/api/v1/widget/transcript?${q.toString()}`;
  }

  private txSay(text: string, error: boolean): void {
    this.txResult.textContent = text;
    this.txResult.className = error ? "err" : "";
    this.txEmail.setAttribute("aria-invalid", String(error && text !== t.offline));
    if (error) this.txEmail.focus();
  }

  /** "Call me back" while waiting: the same conversation keeps its place in line and the
   * operator who takes it in its turn calls the number. */
  private buildCallMe(): void {
    const phone = el("input");
    phone.type = "tel";
    phone.autocomplete = "tel";
    phone.placeholder = t.callMePhone;
    phone.setAttribute("aria-label", t.callMePhone);
    phone.value = this.fields.phone || "";
    const button = el("button", undefined, t.callMe);
    button.type = "submit";
    this.callMe.append(phone, button);
    this.callMe.hidden = true;
    this.callMe.addEventListener("submit", (e) => {
      e.preventDefault();
      this.socket.timeout(ACK_TIMEOUT_MS).emit("call_me", { phone: phone.value.trim() }, (err: Error | null, ack: Ack) => {
        if (err || !ack.ok) {
          this.showNotice(err ? t.offline : ack.detail || "");
          return;
        }
        this.calledBack = true;
        this.callMe.hidden = true;
        this.showNotice("");
      });
    });
  }

  private showPosition(position: number, wait: number | null): void {
    const where = format(t.position, { p: position });
    this.showStatus(wait ? `${where}, ${format(t.wait, { min: Math.max(1, Math.round(wait / 60)) })}` : where);
    this.callMe.hidden = !this.config.call_me || this.calledBack; // only while waiting in line
  }

  private showStatus(text: string): void {
    this.callMe.hidden = true;
    this.status.textContent = text;
  }
}

type Call = [string, ...unknown[]];
const USER_KEYS = ["name", "email", "phone", "id", "hash"];

/** ``window.Omni``: what a site may do with the widget (docs/widget.md). Calls made before the
 * script loaded (``(window.Omni = window.Omni || []).push(["open"])``) run once it has. */
function api(widget: OmniWidget): Record<string, unknown> {
  const plain = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v);
  const self = {
    open: () => widget.setOpen(true),
    close: () => widget.setOpen(false),
    setLocale: (locale: unknown) => widget.setLocale(locale),
    on: (event: string, cb: (detail: unknown) => void) => widget.on(event, cb),
    off: (event: string, cb: (detail: unknown) => void) => widget.off(event, cb),
    setUser(user: unknown): Promise<boolean> {
      if (!plain(user)) {
        console.error("Omni.setUser: expects an object like {name, email, phone}");
        return Promise.resolve(false);
      }
      const unknownKey = Object.keys(user).find((k) => !USER_KEYS.includes(k));
      if (unknownKey) {
        console.error(`Omni.setUser: unknown field "${unknownKey}" (use ${USER_KEYS.join(", ")})`);
        return Promise.resolve(false);
      }
      const { id, hash, ...fields } = user;
      if (id !== undefined || hash !== undefined) {
        if ((typeof id !== "string" && typeof id !== "number") || typeof hash !== "string") {
          console.error("Omni.setUser: id (string) and hash (its HMAC from your server) go together");
          return Promise.resolve(false);
        }
        widget.identify(String(id), hash);
      }
      if (!Object.keys(fields).length) return Promise.resolve(true);
      return widget.sendProfile("set_user", fields, "setUser").then((ok) => {
        if (ok) widget.knowUser(fields);
        return ok;
      });
    },
    setCustomAttributes(attributes: unknown): Promise<boolean> {
      if (!plain(attributes)) {
        console.error("Omni.setCustomAttributes: expects an object of text, number, true/false or null values");
        return Promise.resolve(false);
      }
      return widget.sendProfile("set_attributes", { attributes }, "setCustomAttributes");
    },
    push(call: unknown): void {
      if (!Array.isArray(call) || typeof call[0] !== "string" || typeof (self as Record<string, unknown>)[call[0]] !== "function") {
        console.error("Omni: unknown call", call);
        return;
      }
      const [name, ...args] = call as Call;
      void (self as unknown as Record<string, (...a: unknown[]) => unknown>)[name](...args);
    },
  };
  return self;
}

function boot(): void {
  if (!inbox) return;
  const widget = new OmniWidget();
  widget.mount();
  const w = window as unknown as { omniWidget: OmniWidget; Omni?: unknown };
  w.omniWidget = widget;
  const queued = Array.isArray(w.Omni) ? (w.Omni as unknown[]) : [];
  const omni = api(widget);
  w.Omni = omni;
  for (const call of queued) (omni.push as (c: unknown) => void)(call);
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
else boot();
