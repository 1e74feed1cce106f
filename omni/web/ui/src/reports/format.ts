// How report cells read: counts with digit grouping, seconds as m:ss, percents, datetimes in the
// install's time zone (the zone every report counts its days in), a dash for "no value".
import type { ColumnSpec, Value } from "./types";

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/;
/** Columns that hold a group's start (the row label of a grouped report). */
const GROUP_KEYS = new Set(["period", "interval", "bucket", "day", "hour", "week", "month"]);

export function clock(total: number): string {
  const whole = Math.round(Math.abs(total));
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = whole % 60;
  const ss = String(s).padStart(2, "0");
  const sign = total < 0 ? "-" : "";
  return h ? `${sign}${h}:${String(m).padStart(2, "0")}:${ss}` : `${sign}${m}:${ss}`;
}

export interface Formatter {
  cell(column: ColumnSpec, value: Value): string;
  /** A chart axis label (shorter for datetimes: only what the grouping needs). */
  axis(value: Value): string;
}

export function formatter(lang: string, timeZone: string, grouping: string, dash = "—"): Formatter {
  const locale = lang === "ru" ? "ru-RU" : "en-GB";
  const count = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });
  const number = new Intl.NumberFormat(locale, { maximumFractionDigits: 2 });
  const percent = new Intl.NumberFormat(locale, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  const zone = { timeZone };
  const dayFmt = new Intl.DateTimeFormat(locale, { ...zone, year: "numeric", month: "2-digit", day: "2-digit" });
  const monthFmt = new Intl.DateTimeFormat(locale, { ...zone, year: "numeric", month: "long" });
  const timeFmt = new Intl.DateTimeFormat(locale, {
    ...zone,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  });
  const dateTime = (text: string, byGrouping: boolean): string => {
    const at = new Date(text);
    if (Number.isNaN(at.getTime())) return text;
    if (byGrouping && (grouping === "day" || grouping === "week" || grouping === "total")) return dayFmt.format(at);
    if (byGrouping && grouping === "month") return monthFmt.format(at);
    return timeFmt.format(at);
  };
  const cell = (column: ColumnSpec, value: Value): string => {
    if (value === null || value === undefined || value === "") return dash;
    if (typeof value === "boolean") return value ? "✓" : "✗";
    if (typeof value === "number") {
      if (column.key.endsWith("_id")) return String(value); // an id, not a quantity
      switch (column.kind) {
        case "seconds":
          return clock(value);
        case "percent":
          return `${percent.format(value)}%`;
        case "count":
          return count.format(value);
        default:
          return number.format(value);
      }
    }
    if ((column.kind === "datetime" || column.kind === "label") && ISO.test(value)) {
      // A group's label (the start of its day, week…) reads as the grouping says; any other
      // datetime (when a contact started) with its time.
      return dateTime(value, column.kind === "label" || GROUP_KEYS.has(column.key));
    }
    return value;
  };
  const axis = (value: Value): string => {
    if (value === null || value === undefined) return dash;
    if (typeof value === "string" && ISO.test(value)) return dateTime(value, true);
    return String(value);
  };
  return { cell, axis };
}
