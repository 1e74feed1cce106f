// Omni web chat widget. One <script src=".../widget/omni-widget.js" data-inbox="TOKEN" async>.
// Customer and operator text is only ever put in the page with textContent, never as HTML.
import { io, Socket } from "socket.io-client";

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
};
type Welcome = {
  visitor: string;
  conversation_id: number | null;
  messages: Msg[];
  config: Config;
  online: boolean;
};
type Ack = {
  ok: boolean;
  error?: string;
  detail?: string;
  message?: Msg;
  position?: number;
  estimated_wait_seconds?: number | null;
};
type Pending = {
  client_id: string;
  body: string;
  attachments: string[];
  fields: Record<string, string>;
  button?: string;
};

const ACK_TIMEOUT_MS = 15000;
const RETRY_MS = 3000;

const TEXT = {
  en: {
    open: "Chat with us",
    close: "Close",
    send: "Send",
    placeholder: "Type your message…",
    attach: "Attach a file",
    offline: "We are offline now. Leave a message and we will answer later.",
    start: "Start chat",
    name: "Name",
    email: "E-mail",
    phone: "Phone",
    subject: "Subject",
    required: "Please fill in this field",
    position: (p: number) => `You are number ${p} in line`,
    wait: (s: number) => `expected wait about ${Math.max(1, Math.round(s / 60))} min`,
    typing: "Operator is typing…",
    sending: "sending",
    sent: "✓",
    read: "✓✓",
    reconnecting: "Reconnecting…",
    greeting: "Hello! How can we help?",
  },
  ru: {
    open: "Напишите нам",
    close: "Закрыть",
    send: "Отправить",
    placeholder: "Ваше сообщение…",
    attach: "Прикрепить файл",
    offline: "Сейчас мы не в сети. Оставьте сообщение, и мы ответим позже.",
    start: "Начать чат",
    name: "Имя",
    email: "E-mail",
    phone: "Телефон",
    subject: "Тема",
    required: "Заполните это поле",
    position: (p: number) => `Вы ${p}-й в очереди`,
    wait: (s: number) => `ожидание около ${Math.max(1, Math.round(s / 60))} мин`,
    typing: "Оператор печатает…",
    sending: "отправка",
    sent: "✓",
    read: "✓✓",
    reconnecting: "Переподключение…",
    greeting: "Здравствуйте! Чем можем помочь?",
  },
};

const script = document.currentScript as HTMLScriptElement | null;
const inbox = script?.dataset.inbox ?? "";
const base = script ? new URL(script.src).origin : location.origin;
const lang: "ru" | "en" = (navigator.language || "en").toLowerCase().startsWith("ru") ? "ru" : "en";
const t = TEXT[lang];
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

const css = (colour: string) => `
.omni-launcher{position:fixed;right:20px;bottom:20px;z-index:2147483000;border:0;border-radius:24px;
padding:12px 18px;background:${colour};color:#fff;font:15px system-ui,sans-serif;cursor:pointer;
box-shadow:0 4px 14px rgba(0,0,0,.2)}
.omni-panel{position:fixed;right:20px;bottom:76px;z-index:2147483000;width:340px;max-width:calc(100vw - 40px);
height:480px;max-height:calc(100vh - 100px);display:none;flex-direction:column;background:#fff;border-radius:12px;
box-shadow:0 8px 30px rgba(0,0,0,.25);font:14px system-ui,sans-serif;color:#222;overflow:hidden}
.omni-panel.open{display:flex}
.omni-head{background:${colour};color:#fff;padding:12px 14px;display:flex;justify-content:space-between;align-items:center}
.omni-head button{background:none;border:0;color:#fff;font-size:18px;cursor:pointer}
.omni-log{flex:1;overflow-y:auto;padding:10px;display:flex;flex-direction:column;gap:6px}
.omni-msg{max-width:80%;padding:7px 10px;border-radius:10px;white-space:pre-wrap;word-wrap:break-word}
.omni-in{align-self:flex-end;background:${colour};color:#fff}
.omni-out{align-self:flex-start;background:#f0f0f0}
.omni-mark{font-size:11px;opacity:.75;margin-left:6px}
.omni-msg img{max-width:100%;display:block;margin-top:4px;border-radius:6px}
.omni-msg a{color:inherit}
.omni-quick{display:flex;flex-wrap:wrap;gap:6px;justify-content:flex-start}
.omni-quick button{border:1px solid ${colour};background:#fff;color:${colour};border-radius:14px;padding:4px 12px;cursor:pointer}
.omni-status{font-size:12px;color:#666;padding:0 10px 6px;min-height:16px}
.omni-form{display:flex;gap:6px;padding:8px;border-top:1px solid #eee}
.omni-form textarea{flex:1;resize:none;height:38px;border:1px solid #ccc;border-radius:8px;padding:6px;font:inherit}
.omni-form button{border:0;border-radius:8px;background:${colour};color:#fff;padding:0 12px;cursor:pointer}
.omni-prechat{padding:12px;display:flex;flex-direction:column;gap:8px;overflow-y:auto}
.omni-prechat input{border:1px solid #ccc;border-radius:6px;padding:6px}
.omni-error{color:#c62828;font-size:12px}
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

  constructor() {
    this.socket = io(`${base}/widget`, {
      // A logged-in site user: the site renders data-user-id and data-user-hash
      // (HMAC-SHA256 of the id with the inbox secret, computed on the site's server).
      auth: (cb) =>
        cb({
          inbox,
          visitor: load<string>("visitor", ""),
          user_id: script?.dataset.userId || undefined,
          user_hash: script?.dataset.userHash || undefined,
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
    this.socket.on("disconnect", () => this.showStatus(t.reconnecting));
    this.socket.on("connect_error", (err: Error) => this.showStatus(err.message || t.reconnecting));
  }

  mount(): void {
    this.style.textContent = css("#1565c0");
    document.head.appendChild(this.style);
    const launcher = el("button", "omni-launcher", t.open);
    launcher.type = "button";
    launcher.addEventListener("click", () => this.toggle());
    const head = el("div", "omni-head");
    const title = el("span", "omni-title", t.open);
    const close = el("button", "", "×");
    close.setAttribute("aria-label", t.close);
    close.addEventListener("click", () => this.toggle());
    head.append(title, close);
    this.input.placeholder = t.placeholder;
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) {
        e.preventDefault();
        this.submit();
      }
    });
    this.input.addEventListener("input", () => this.typing());
    this.fileInput.type = "file";
    this.fileInput.title = t.attach;
    this.fileInput.style.width = "90px";
    this.fileInput.addEventListener("change", () => void this.upload());
    const send = el("button", "", t.send);
    send.type = "submit";
    this.form.append(this.input, this.fileInput, send);
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.submit();
    });
    this.panel.append(head, this.prechat, this.log, this.status, this.form);
    document.body.append(launcher, this.panel);
    this.renderMode();
  }

  private toggle(): void {
    this.panel.classList.toggle("open");
    if (this.panel.classList.contains("open")) this.markRead();
  }

  private onWelcome(w: Welcome): void {
    save("visitor", w.visitor);
    this.config = w.config || {};
    this.online = w.online;
    if (this.config.colour && /^#[0-9a-fA-F]{6}$/.test(this.config.colour)) this.style.textContent = css(this.config.colour);
    if (w.messages.length) this.started = true;
    const title = this.panel.querySelector(".omni-title");
    if (title) title.textContent = (lang === "ru" ? this.config.greeting_ru : this.config.greeting) || t.greeting;
    for (const m of w.messages) this.onMessage(m);
    this.showStatus(this.online ? "" : t.offline);
    this.renderMode();
    this.inflight.clear(); // a new connection: acks of the old one will never come
    this.flush();
  }

  private renderMode(): void {
    const needForm = !this.started && this.prechatFields().length > 0;
    this.prechat.style.display = needForm ? "flex" : "none";
    this.log.style.display = needForm ? "none" : "flex";
    this.form.style.display = needForm ? "none" : "flex";
    if (needForm && !this.prechat.childElementCount) this.buildPrechat();
  }

  private prechatFields(): Field[] {
    return this.config.prechat ?? [];
  }

  private buildPrechat(): void {
    if (!this.online) this.prechat.append(el("p", "", t.offline));
    const inputs: [Field, HTMLInputElement, HTMLElement][] = [];
    for (const f of this.prechatFields()) {
      const label = el("label", "", `${t[f.name]}${f.required ? " *" : ""}`);
      const input = el("input");
      input.name = f.name;
      input.type = f.name === "email" ? "email" : f.name === "phone" ? "tel" : "text";
      const err = el("div", "omni-error");
      label.append(input);
      this.prechat.append(label, err);
      inputs.push([f, input, err]);
    }
    const start = el("button", "", t.start);
    start.type = "submit";
    this.prechat.append(start);
    this.prechat.addEventListener("submit", (e) => {
      e.preventDefault();
      let ok = true;
      for (const [f, input, err] of inputs) {
        const value = input.value.trim();
        err.textContent = f.required && !value ? t.required : "";
        if (f.required && !value) ok = false;
        if (value) this.fields[f.name] = value;
      }
      if (!ok) return;
      save("fields", this.fields);
      this.started = true;
      save("started", true);
      this.renderMode();
      this.input.focus();
    });
  }

  private onMessage(m: Msg): void {
    const key = m.client_id && m.direction === "in" ? `c:${m.client_id}` : `m:${m.id}`;
    let node = this.rendered.get(key);
    if (!node) {
      node = el("div", `omni-msg omni-${m.direction}`);
      this.rendered.set(key, node);
      this.log.append(node);
    }
    node.replaceChildren();
    if (m.body) node.append(document.createTextNode(m.body));
    let buttons: Button[] = [];
    for (const a of m.attachments || []) {
      if (a.kind === "buttons") buttons = a.buttons;
      else if (a.kind === undefined) node.append(this.attachment(a));
    }
    // Quick replies belong to the newest message only; anything after it retires them.
    for (const old of Array.from(this.log.querySelectorAll(".omni-quick"))) old.remove();
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
      this.showStatus("");
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
    if (!pressed) this.input.value = "";
    const p: Pending = { client_id: uid(), body, attachments, fields: this.fields, button: pressed?.id };
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
  // the server stores each once and acks only after storing.
  private flush(): void {
    if (!this.socket.connected) return;
    for (const p of [...this.pending]) {
      if (this.inflight.has(p.client_id)) continue;
      this.inflight.add(p.client_id);
      const { name, email, phone, subject } = p.fields;
      this.socket.timeout(ACK_TIMEOUT_MS).emit(
        "message",
        {
          client_id: p.client_id,
          body: p.body,
          attachments: p.attachments,
          button: p.button,
          name,
          email,
          phone,
          subject,
        },
        (err: Error | null, ack: Ack) => {
          this.inflight.delete(p.client_id);
          if (err || ack.error === "unavailable") {
            // Not stored (no answer, or the server was busy): keep it and try again.
            this.retrySoon();
            return;
          }
          if (!ack.ok) {
            if (ack.error !== "rate_limited") this.drop(p);
            this.showStatus(ack.detail || "");
            return;
          }
          this.drop(p);
          if (ack.message) this.onMessage(ack.message);
          if (ack.position) this.showPosition(ack.position, ack.estimated_wait_seconds ?? null);
        },
      );
    }
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
      this.showStatus(body.detail || String(resp.status));
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

  private showPosition(position: number, wait: number | null): void {
    this.showStatus(wait ? `${t.position(position)}, ${t.wait(wait)}` : t.position(position));
  }

  private showStatus(text: string): void {
    this.status.textContent = text;
  }
}

function boot(): void {
  if (!inbox) return;
  const widget = new OmniWidget();
  widget.mount();
  (window as unknown as { omniWidget: OmniWidget }).omniWidget = widget;
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
else boot();
