// Small helpers of the operator window: live timers, the error toast.
import { Ack, duration, el, seconds } from "../common";

export type T = (key: string, values?: Record<string, string | number>) => string;

/** A span counting up from ``iso`` (refreshed by tick()); ``limit`` marks it over-limit. */
export function since(iso: string | null | undefined, attrs: Record<string, string | number> = {}): HTMLElement {
  return el("span", { class: "timer", "data-since": iso || "", ...attrs }, duration(seconds(iso)));
}

/** A span counting down to ``iso`` (refreshed by tick()). */
export function until(iso: string, attrs: Record<string, string | number> = {}): HTMLElement {
  return el("span", { class: "timer countdown", "data-until": iso, ...attrs }, remaining(iso));
}

function remaining(iso: string, now: number = Date.now()): string {
  return duration(Math.max(0, Math.ceil((Date.parse(iso) - now) / 1000)));
}

export function addSeconds(iso: string | null, secs: number): string {
  return new Date(Date.parse(iso || new Date().toISOString()) + secs * 1000).toISOString();
}

/** Wall-clock time at a fixed UTC offset (the customer's zone), as HH:MM. */
export function clockAt(offsetSeconds: number, now: number = Date.now()): string {
  const d = new Date(now + offsetSeconds * 1000);
  return `${String(d.getUTCHours()).padStart(2, "0")}:${String(d.getUTCMinutes()).padStart(2, "0")}`;
}

export function tick(root: ParentNode = document): void {
  const now = Date.now();
  root.querySelectorAll<HTMLElement>("[data-since]").forEach((node) => {
    const secs = seconds(node.dataset.since, now);
    node.textContent = duration(secs);
    const limit = Number(node.dataset.limit || 0);
    node.classList.toggle("over-limit", limit > 0 && secs > limit);
  });
  root.querySelectorAll<HTMLElement>("[data-until]").forEach((node) => {
    const left = Date.parse(node.dataset.until || "") - now;
    node.textContent = remaining(node.dataset.until || "", now);
    node.classList.toggle("expired", left <= 0);
  });
  root.querySelectorAll<HTMLElement>("[data-utc-offset]").forEach((node) => {
    node.textContent = clockAt(Number(node.dataset.utcOffset), now);
  });
}

let toastTimer = 0;

export function toast(text: string, kind: "error" | "info" = "error"): void {
  let box = document.getElementById("op-toast");
  if (!box) {
    box = el("div", { id: "op-toast", role: "alert", "data-testid": "error" });
    document.body.append(box);
  }
  box.textContent = text;
  box.className = `toast ${kind}`;
  window.clearTimeout(toastTimer);
  toastTimer = window.setTimeout(() => box?.classList.add("hidden"), 6000);
}

export function failed(t: T, ack: Ack): void {
  toast(`${t("op.error")}: ${ack.detail || ack.error || "?"}`);
}

export function time(iso: string | null | undefined, lang: string): string {
  if (!iso) return "";
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  return today
    ? d.toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" })
    : d.toLocaleString(lang, { day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit" });
}
