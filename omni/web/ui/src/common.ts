// Shared by the live modules: boot data, strings, safe DOM building, the Socket.IO link.
// Customer and operator text only ever reaches the page through textContent (el() below).
import { io, Socket } from "socket.io-client";
import type { AckError, OperatorCalls, SupervisorCalls } from "./generated/contracts";

export interface Boot {
  user: { id: number; name: string; role: string };
  lang: string;
  strings: Record<string, string>;
  [key: string]: unknown;
}

let shared: Record<string, string> = {};

export function boot(): Boot {
  const node = document.getElementById("omni-boot");
  const data = JSON.parse(node ? node.textContent || "{}" : "{}") as Boot;
  shared = data.strings ?? {}; // for the texts common code shows itself (common.* keys)
  return data;
}

export function translator(strings: Record<string, string>) {
  return (key: string, values?: Record<string, string | number>): string => {
    let text = strings[key] ?? key;
    if (values) for (const [k, v] of Object.entries(values)) text = text.split(`{${k}}`).join(String(v));
    return text;
  };
}

type Child = Node | string | null | undefined | false;

/** Build an element; strings become text nodes, never HTML. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number | boolean | ((ev: Event) => void)> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (typeof value === "function") node.addEventListener(key.replace(/^on/, ""), value as EventListener);
    else if (value === false) continue;
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

export function clear(node: Element): void {
  while (node.firstChild) node.removeChild(node.firstChild);
}

/** Sets a node's text only when it differs (an unchanged text node stays the same node). */
export function setText(node: Node, text: string): void {
  if (node.textContent !== text) node.textContent = text;
}

/** One part of a panel that is redrawn on events: the facts it shows (it is rebuilt when they
 * change, and only then; they are compared as JSON) and how it is built. */
export interface PartSpec {
  name: string;
  facts: unknown;
  build: () => Node[];
}

/** The parts of a panel on screen, by name: the facts each was built for and its nodes. */
export type ShownParts = Map<string, { facts: string; nodes: Node[] }>;

/** The record of each box whose owner keeps none of its own (``keepParts``). */
const shownIn = new WeakMap<Node, ShownParts>();

/** Puts ``parts`` in ``box`` in their order, ``box`` holding nothing else. A part whose facts are
 * those it was built for (and whose nodes are still in ``box``) stays as it is: never taken out
 * and put back, since a node moved or rebuilt under the pointer loses a click whose press and
 * release straddle the redraw (they reach two different nodes), and a player its playback. The
 * others are built afresh; nodes no part wants go. ``shown`` is the panel's record, updated
 * (by default one kept for ``box`` here). */
export function keepParts(box: Node, parts: PartSpec[], shown: ShownParts = recordOf(box)): void {
  const next: ShownParts = new Map();
  for (const part of parts) {
    const facts = JSON.stringify(part.facts);
    const old = shown.get(part.name);
    const kept = old && old.facts === facts && old.nodes.every((n) => n.parentNode === box) ? old : null;
    next.set(part.name, kept ?? { facts, nodes: part.build() });
  }
  shown.clear();
  for (const [name, part] of next) shown.set(name, part);
  const wanted = new Set([...next.values()].flatMap((p) => p.nodes));
  for (const node of [...box.childNodes]) if (!wanted.has(node)) node.remove();
  // Kept nodes are in order when the parts' order did not change: then only new nodes go in.
  let at: ChildNode | null = box.firstChild;
  for (const node of wanted) {
    if (node === at) at = node.nextSibling;
    else box.insertBefore(node, at);
  }
}

function recordOf(box: Node): ShownParts {
  const shown = shownIn.get(box) ?? new Map();
  shownIn.set(box, shown);
  return shown;
}

/** A call's answer: ``{ok: true, ...}`` or the refusal (``AckError``, generated). */
export interface Ack extends Partial<Omit<AckError, "ok" | "field">> {
  ok: boolean;
  field?: string;
  [key: string]: unknown;
}

/** Every Socket.IO call and the payload it takes (generated from omni/realtime/payloads.py). */
export type Calls = OperatorCalls & SupervisorCalls;
export type CallName = keyof Calls;

/** Same-origin Socket.IO namespace authenticated by the session cookie. */
export function connect(namespace: string): Socket {
  return io(namespace, { transports: ["websocket"], withCredentials: true, reconnectionDelayMax: 5000 });
}

export function call<E extends CallName>(socket: Socket, event: E, data: Calls[E] = {} as Calls[E], timeoutMs = 10000): Promise<Ack> {
  return new Promise((resolve) => {
    socket.timeout(timeoutMs).emit(event, data, (err: Error | null, ack: Ack) => {
      resolve(err ? { ok: false, error: "timeout", detail: shared["common.no_answer"] ?? "no answer from the server" } : ack);
    });
  });
}

export function seconds(from: string | null | undefined, now: number = Date.now()): number {
  if (!from) return 0;
  return Math.max(0, Math.floor((now - Date.parse(from)) / 1000));
}

export function duration(total: number): string {
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const mm = String(m).padStart(2, "0");
  const ss = String(s).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export const PLAYBACK_RATES = [0.5, 0.75, 1, 1.25, 1.5, 2];

/** A call recording: ``<audio>`` with a speed select (playbackRate) and a download link.
 * ``url`` is same-origin (the session cookie authorises it); Range requests make seeking work.
 * Views that redraw keep the same player (a part whose facts are its url, ``keepParts``), so an
 * event arriving while someone listens neither stops the playback nor resets its speed. */
export function recordingPlayer(url: string, labels: { speed: string; download: string }): HTMLElement {
  const audio = el("audio", { controls: true, preload: "metadata", src: url, "data-testid": "recording-audio" });
  const speed = el("select", { "data-testid": "recording-speed", "aria-label": labels.speed });
  for (const rate of PLAYBACK_RATES) {
    const option = el("option", { value: String(rate) }, `${rate}x`);
    option.selected = rate === 1;
    speed.append(option);
  }
  const apply = (): void => {
    const rate = Number(speed.value) || 1;
    audio.defaultPlaybackRate = rate;
    audio.playbackRate = rate;
  };
  speed.addEventListener("change", apply);
  audio.addEventListener("loadedmetadata", apply); // a (re)load resets the rate to the default
  const download = el(
    "a",
    { href: `${url}${url.includes("?") ? "&" : "?"}download=1`, download: "", "data-testid": "recording-download" },
    labels.download,
  );
  return el(
    "div",
    { class: "recording", "data-testid": "recording", "data-url": url },
    audio,
    el("div", { class: "recording-bar" }, el("label", {}, `${labels.speed} `, speed), download),
  );
}
