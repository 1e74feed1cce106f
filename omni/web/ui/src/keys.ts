// Keyboard shortcuts shared by the live modules (issue 18): a page declares one table of
// shortcuts (keys → label → action); the same table drives the key handler and the help
// overlay ("?", and a button in the header), so what the overlay lists is what the keys do.
//
// Keys are written as specs: "a", "alt+a", "mod+c" (Ctrl, or ⌘ on a Mac), "shift+enter",
// "?", "/", "escape", "delete", "arrowdown". Letters match the physical key (``KeyboardEvent.code``),
// so they work the same with a Russian layout. A single key never fires while the focus is in a
// text field (it is text there); a combination with Alt/Ctrl and Esc do, unless the entry says
// ``typing: false``.
import { clear, el } from "./common";

export type T = (key: string, values?: Record<string, string | number>) => string;

export interface Shortcut {
  /** Key specs; the first is the main one, the others are alternatives. */
  keys: string[];
  /** What it does, in the reader's language (shown in the overlay). */
  label: string;
  /** The action; ``false`` = not handled here (the key goes on to the page). */
  run(ev: KeyboardEvent): boolean | void;
  /** Fires from inside text fields too (default: only combinations and Esc do). */
  typing?: boolean;
}

export interface ShortcutGroup {
  title: string;
  shortcuts: Shortcut[];
}

interface Spec {
  key: string;
  alt: boolean;
  mod: boolean;
  shift: boolean;
}

const NAMES: Record<string, string> = {
  arrowdown: "↓",
  arrowup: "↑",
  arrowleft: "←",
  arrowright: "→",
  escape: "Esc",
  enter: "Enter",
  delete: "Delete",
  backspace: "Backspace",
};

function parse(spec: string): Spec {
  const parts = spec.toLowerCase().split("+");
  const key = parts.pop() || spec;
  return { key: key || "+", alt: parts.includes("alt"), mod: parts.includes("mod") || parts.includes("ctrl"), shift: parts.includes("shift") };
}

const MAC = /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent);

/** How a spec reads in the overlay: "alt+arrowdown" → ["Alt", "↓"], "mod+c" → ["Ctrl", "C"]. */
export function keyLabel(spec: string): string[] {
  const s = parse(spec);
  const out: string[] = [];
  if (s.mod) out.push(MAC ? "⌘" : "Ctrl");
  if (s.alt) out.push(MAC ? "⌥" : "Alt");
  if (s.shift) out.push("Shift");
  out.push(NAMES[s.key] ?? (s.key.length === 1 ? s.key.toUpperCase() : s.key));
  return out;
}

function keyMatches(s: Spec, ev: KeyboardEvent): boolean {
  const k = s.key;
  if (k === "?") return ev.key === "?" || (ev.code === "Slash" && ev.shiftKey);
  if (k === "/") return !ev.shiftKey && (ev.key === "/" || ev.code === "Slash" || ev.code === "NumpadDivide");
  if (ev.shiftKey !== s.shift) return false;
  if (/^[a-z]$/.test(k)) return ev.code === `Key${k.toUpperCase()}` || (!ev.code && ev.key.toLowerCase() === k);
  if (/^[0-9]$/.test(k)) return ev.code === `Digit${k}` || ev.key === k;
  return ev.key.toLowerCase() === k;
}

export function matches(spec: string, ev: KeyboardEvent): boolean {
  const s = parse(spec);
  if (ev.altKey !== s.alt || (ev.ctrlKey || ev.metaKey) !== s.mod) return false;
  return keyMatches(s, ev);
}

/** The focus is somewhere a key is text (or picks an option): single keys stay out. */
export function typingIn(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable || target.tagName === "TEXTAREA" || target.tagName === "SELECT") return true;
  if (target.tagName !== "INPUT") return false;
  const type = (target as HTMLInputElement).type;
  return !["checkbox", "radio", "button", "submit", "reset", "file", "range", "color"].includes(type);
}

function firesWhileTyping(entry: Shortcut, spec: string): boolean {
  if (entry.typing !== undefined) return entry.typing;
  const s = parse(spec);
  return s.alt || s.mod || s.key === "escape";
}

/** The help overlay: a modal dialog listing the table (focus stays inside; Esc or the button
 * closes it and the focus goes back where it was). */
export class HelpOverlay {
  private readonly backdrop: HTMLElement;
  private readonly dialog: HTMLElement;
  private returnTo: HTMLElement | null = null;

  constructor(
    private readonly t: T,
    private readonly groups: () => ShortcutGroup[],
  ) {
    this.dialog = el("div", {
      class: "kb-dialog",
      role: "dialog",
      "aria-modal": "true",
      "aria-labelledby": "kb-title",
      "data-testid": "shortcuts",
      tabindex: "-1",
    });
    this.backdrop = el("div", { class: "kb-backdrop hidden", onclick: (ev: Event) => ev.target === this.backdrop && this.close() }, this.dialog);
    this.dialog.addEventListener("keydown", (ev) => this.trap(ev));
    document.body.append(this.backdrop);
  }

  get isOpen(): boolean {
    return !this.backdrop.classList.contains("hidden");
  }

  open(): void {
    if (this.isOpen) return;
    this.returnTo = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    this.render();
    this.backdrop.classList.remove("hidden");
    this.dialog.querySelector<HTMLElement>("[data-testid=shortcuts-close]")?.focus();
  }

  close(): void {
    if (!this.isOpen) return;
    this.backdrop.classList.add("hidden");
    const back = this.returnTo;
    this.returnTo = null;
    if (back && document.contains(back)) back.focus();
  }

  toggle(): void {
    if (this.isOpen) this.close();
    else this.open();
  }

  private render(): void {
    const t = this.t;
    clear(this.dialog);
    this.dialog.append(
      el(
        "div",
        { class: "kb-head" },
        el("h2", { id: "kb-title" }, t("common.kb.title")),
        el("button", { type: "button", "data-testid": "shortcuts-close", onclick: () => this.close() }, t("common.kb.close")),
      ),
      el("p", { class: "muted" }, t("common.kb.hint")),
    );
    for (const group of this.groups()) {
      const table = el("table", { class: "kb-table" }, el("caption", {}, group.title));
      for (const s of group.shortcuts) {
        const keys = el("td", { class: "kb-keys" });
        s.keys.forEach((spec, i) => {
          if (i) keys.append(el("span", { class: "muted" }, ` ${t("common.kb.or")} `));
          keyLabel(spec).forEach((part, j) => {
            if (j) keys.append("+");
            keys.append(el("kbd", {}, part));
          });
        });
        table.append(el("tr", { "data-testid": "shortcut", "data-keys": s.keys.join(" ") }, keys, el("td", {}, s.label)));
      }
      this.dialog.append(table);
    }
  }

  private trap(ev: KeyboardEvent): void {
    if (ev.key === "Escape") {
      ev.preventDefault();
      ev.stopPropagation();
      this.close();
      return;
    }
    if (ev.key !== "Tab") return;
    const items = [...this.dialog.querySelectorAll<HTMLElement>("button, [href], input, select, textarea, [tabindex]:not([tabindex='-1'])")];
    if (!items.length) return;
    const first = items[0];
    const last = items[items.length - 1];
    if (ev.shiftKey && document.activeElement === first) {
      ev.preventDefault();
      last.focus();
    } else if (!ev.shiftKey && document.activeElement === last) {
      ev.preventDefault();
      first.focus();
    } else if (!this.dialog.contains(document.activeElement)) {
      ev.preventDefault();
      first.focus();
    }
  }
}

/** Wire a page's shortcut table: the key handler, the overlay, and a "?" button in the header.
 * ``table`` is read on every key press and every opening (a table may depend on state); it
 * gets the overlay, for its ``helpShortcut`` row. */
export function bindShortcuts(t: T, table: (overlay: HelpOverlay) => ShortcutGroup[]): HelpOverlay {
  const groups = (): ShortcutGroup[] => table(overlay);
  const overlay: HelpOverlay = new HelpOverlay(t, groups);
  const button = el(
    "button",
    {
      type: "button",
      class: "kb-button",
      "data-testid": "shortcuts-button",
      "aria-haspopup": "dialog",
      title: `${t("common.kb.title")} (?)`,
      "aria-label": t("common.kb.title"),
      onclick: () => overlay.open(),
    },
    "?",
  );
  const who = document.querySelector(".topbar .who");
  if (who) who.prepend(button);
  else document.body.prepend(button);
  document.addEventListener("keydown", (ev) => {
    if (ev.defaultPrevented || ev.isComposing || overlay.isOpen) return;
    const typing = typingIn(ev.target);
    for (const group of groups()) {
      for (const entry of group.shortcuts) {
        const spec = entry.keys.find((k) => matches(k, ev));
        if (!spec || (typing && !firesWhileTyping(entry, spec))) continue;
        if (entry.run(ev) === false) continue;
        ev.preventDefault();
        return;
      }
    }
  });
  return overlay;
}

/** The "?" row every table starts with (the overlay itself). */
export function helpShortcut(t: T, overlay: HelpOverlay): Shortcut {
  return { keys: ["?"], label: t("common.kb.help"), run: () => overlay.open() };
}
