// The wall screen: big per-queue numbers pushed over /wallboard (omni/realtime/wallboard.py).
// No login: the page's wallboard token authenticates the socket. The screen asks for the
// numbers on every (re)connect, then applies the pushed `board`s; the longest wait ticks here,
// corrected for the server's clock, and recolours itself against the queue's thresholds.
// "Connection lost" shows whenever the socket is down; socket.io reconnects on its own.
import { io } from "socket.io-client";
import { clear, duration, el, seconds, translator } from "./common";

interface BoardQueue {
  id: number;
  name: string;
  sla_seconds: number;
  waiting: number;
  longest_wait_seconds: number;
  longest_wait_since: string | null;
  longest_wait_level: string;
  thresholds: { amber: number; red: number };
  in_service: number;
  available: number;
  answered_today: number;
  abandoned_today: number;
  service_level_pct: number | null;
  service_level_level: string;
  asa_seconds: number | null;
}

interface Board {
  name: string;
  now: string;
  day_start: string;
  timezone: string;
  sl_target_pct: number;
  queues: BoardQueue[];
}

interface WallboardBoot {
  lang: string;
  token: string;
  strings: Record<string, string>;
}

const node = document.getElementById("omni-boot");
const data = JSON.parse(node ? node.textContent || "{}" : "{}") as WallboardBoot;
const t = translator(data.strings ?? {});
const app = document.getElementById("app") as HTMLElement;

const title = el("h1", { class: "wb-title", "data-testid": "title" }, t("wb.title"));
const dayNote = el("span", { class: "wb-day", "data-testid": "day-note" });
const clock = el("span", { class: "wb-clock", "data-testid": "clock" });
const link = el("div", { class: "wb-link lost", "data-testid": "link-state", role: "status" }, t("wb.lost"));
const grid = el("div", { class: "wb-grid", "data-testid": "queues" });
app.append(el("header", { class: "wb-head" }, title, dayNote, clock), link, grid);

let skewMs = 0;
let board: Board | null = null;
let revoked = false;

function level(secondsWaited: number, q: BoardQueue): string {
  if (!q.longest_wait_since) return "green";
  if (secondsWaited < q.thresholds.amber) return "green";
  if (secondsWaited < q.thresholds.red) return "amber";
  return "red";
}

function kpi(key: string, label: string, value: string, cls = ""): HTMLElement {
  return el(
    "div",
    { class: `wb-kpi ${cls}`.trim(), "data-testid": key },
    el("div", { class: "wb-value", "data-testid": `${key}-value` }, value),
    el("div", { class: "wb-label" }, label),
  );
}

function pct(value: number | null): string {
  return value === null ? "—" : `${value.toFixed(value % 1 === 0 ? 0 : 1)}%`;
}

function secs(value: number | null): string {
  return value === null ? "—" : duration(Math.round(value));
}

function tile(q: BoardQueue): HTMLElement {
  const waited = seconds(q.longest_wait_since, Date.now() - skewMs);
  return el(
    "section",
    { class: "wb-tile", "data-testid": "queue", "data-queue-id": q.id },
    el("h2", { class: "wb-queue" }, q.name),
    el(
      "div",
      { class: "wb-kpis" },
      kpi("waiting", t("wb.waiting"), String(q.waiting), q.waiting > 0 ? "wb-strong" : ""),
      kpi(
        "longest-wait",
        t("wb.longest_wait"),
        q.longest_wait_since ? duration(waited) : "—",
        `wb-level-${level(waited, q)} wb-ticking`,
      ),
      kpi("in-service", t("wb.in_service"), String(q.in_service)),
      kpi("available", t("wb.available"), String(q.available)),
      kpi("answered", t("wb.answered"), String(q.answered_today)),
      kpi("abandoned", t("wb.abandoned"), String(q.abandoned_today)),
      kpi("sl", t("wb.sl"), pct(q.service_level_pct), `wb-level-${q.service_level_level}`),
      kpi("asa", t("wb.asa"), secs(q.asa_seconds)),
    ),
  );
}

function render(): void {
  if (!board) return;
  title.textContent = board.name || t("wb.title");
  const start = new Date(board.day_start);
  let local = "";
  try {
    local = start.toLocaleTimeString(data.lang, { timeZone: board.timezone, hour: "2-digit", minute: "2-digit" });
  } catch {
    local = start.toISOString().slice(11, 16);
  }
  dayNote.textContent = t("wb.day_note", { time: local, zone: board.timezone, target: board.sl_target_pct });
  clear(grid);
  if (!board.queues.length) grid.append(el("p", { class: "wb-empty" }, t("wb.no_queues")));
  for (const q of board.queues) grid.append(tile(q));
}

function tick(): void {
  if (!board) return;
  const now = Date.now() - skewMs;
  try {
    clock.textContent = new Date(now).toLocaleTimeString(data.lang, {
      timeZone: board.timezone,
      hour: "2-digit",
      minute: "2-digit",
    });
  } catch {
    clock.textContent = "";
  }
  for (const q of board.queues) {
    const box = grid.querySelector<HTMLElement>(`[data-queue-id="${q.id}"] [data-testid="longest-wait"]`);
    if (!box || !q.longest_wait_since) continue;
    const waited = seconds(q.longest_wait_since, now);
    box.className = `wb-kpi wb-level-${level(waited, q)} wb-ticking`;
    const value = box.querySelector(".wb-value");
    if (value) value.textContent = duration(waited);
  }
}

function apply(next: Board): void {
  board = next;
  skewMs = Date.now() - Date.parse(next.now);
  render();
  tick();
}

function setLink(state: "live" | "lost" | "revoked"): void {
  link.className = `wb-link ${state}`;
  link.setAttribute("data-state", state);
  link.textContent = state === "live" ? "" : t(state === "revoked" ? "wb.revoked" : "wb.lost");
  app.setAttribute("data-link", state);
}

const socket = io("/wallboard", {
  transports: ["websocket"],
  auth: { token: data.token },
  reconnectionDelayMax: 5000,
});

socket.on("connect", () => {
  setLink("live");
  socket.timeout(10000).emit("board", {}, (err: Error | null, ack: { ok: boolean; board?: Board }) => {
    if (!err && ack.ok && ack.board) apply(ack.board);
  });
});
socket.on("board", (next: Board) => apply(next));
socket.on("revoked", () => {
  revoked = true;
  setLink("revoked");
});
socket.on("disconnect", (reason: string) => {
  if (revoked) return;
  setLink("lost");
  // The server dropped us (a restart drops the transport instead): try again, it says why.
  if (reason === "io server disconnect") socket.connect();
});
socket.on("connect_error", (err: Error & { data?: { error?: string } }) => {
  if (err.data?.error === "forbidden") {
    revoked = true;
    setLink("revoked");
    return;
  }
  setLink("lost");
});
setInterval(tick, 1000);
setLink("lost");
