// Pure helpers of the monitoring page: thresholds and number formatting.
import { duration } from "../common";
import type { WaitLevel } from "./types";

/** Same rule as the server's monitoring.wait_level: green < SLA, amber < 2×SLA, red beyond. */
export function waitLevel(seconds: number, thresholds: { amber: number; red: number }): WaitLevel {
  if (seconds < thresholds.amber) return "green";
  if (seconds < thresholds.red) return "amber";
  return "red";
}

export function secondsOrDash(value: number | null, dash: string): string {
  return value === null ? dash : duration(Math.round(value));
}

export function percentOrDash(value: number | null, dash: string): string {
  return value === null ? dash : `${value.toFixed(1)}%`;
}

/** Whole seconds since an ISO time, on the server's clock (``skewMs`` = server − browser). */
export function elapsed(from: string | null, skewMs: number): number {
  if (!from) return 0;
  return Math.max(0, Math.floor((Date.now() + skewMs - Date.parse(from)) / 1000));
}

/** Calls ``run`` at most once per ``intervalMs``; calls made meanwhile collapse into one. */
export function debounced(run: () => Promise<void>, intervalMs: number): () => void {
  let last = 0;
  let timer: number | null = null;
  let running = false;
  let again = false;
  const fire = async (): Promise<void> => {
    timer = null;
    if (running) {
      again = true;
      return;
    }
    running = true;
    last = Date.now();
    try {
      await run();
    } finally {
      running = false;
      if (again) {
        again = false;
        schedule();
      }
    }
  };
  const schedule = (): void => {
    if (timer !== null) return;
    const wait = Math.max(0, last + intervalMs - Date.now());
    timer = window.setTimeout(() => void fire(), wait);
  };
  return schedule;
}
