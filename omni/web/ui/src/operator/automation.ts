// Macros (one click runs a saved list of actions on the open conversation) and the queue's
// operator script with the card fields it asks for, in the right column. Both talk REST
// (omni/api/automation.py); the conversation's own events bring the results back live.
import { clear, el } from "../common";
import { T, toast } from "./ui";

interface Macro {
  id: number;
  name: string;
}

interface MacroRun {
  ok: boolean;
  message: string;
}

interface ScriptField {
  key: string;
  label: string;
  kind: string;
  value: unknown;
}

interface Script {
  id: number;
  name: string;
  text: string;
  fields: ScriptField[];
}

async function api<R>(url: string, body?: unknown): Promise<R | null> {
  const resp = await fetch(url, {
    method: body === undefined ? "GET" : "POST",
    credentials: "same-origin",
    headers: body === undefined ? {} : { "Content-Type": "application/json", "X-Omni-CSRF": "1" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = (await resp.json().catch(() => null)) as (R & { detail?: string }) | null;
  if (!resp.ok) {
    toast((data && data.detail) || resp.statusText);
    return null;
  }
  return data;
}

export class AutomationPanel {
  readonly box = el("div", { class: "automation", "data-testid": "automation" });
  /** The conversation's priority once a rule raised it (``conversation.priority_changed``). */
  readonly priority = el("span", { class: "badge priority hidden", "data-testid": "priority" });
  private id = 0;

  constructor(private readonly t: T) {}

  async load(conversationId: number): Promise<void> {
    this.id = conversationId;
    const [macros, script] = await Promise.all([
      api<Macro[]>(`/api/v1/conversations/${conversationId}/macros`),
      api<Script | null>(`/api/v1/conversations/${conversationId}/script`),
    ]);
    if (this.id !== conversationId) return;
    this.render(macros ?? [], script);
  }

  showPriority(priority: number | undefined): void {
    this.priority.textContent = `${this.t("op.priority")} ${priority ?? 0}`;
    this.priority.classList.toggle("hidden", !priority);
  }

  private render(macros: Macro[], script: Script | null): void {
    clear(this.box);
    const t = this.t;
    this.box.append(this.priority);
    if (macros.length) {
      const bar = el("div", { class: "macros", "data-testid": "macros" }, el("h4", {}, t("op.macros")));
      for (const m of macros) {
        const button = el("button", { type: "button", "data-testid": "macro" }, m.name);
        button.addEventListener("click", () => void this.run(m, button));
        bar.append(button);
      }
      this.box.append(bar);
    }
    if (script) this.box.append(this.scriptNode(script));
  }

  private async run(m: Macro, button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    const id = this.id;
    const result = await api<MacroRun>(`/api/v1/conversations/${id}/macros/${m.id}/run`, {});
    button.disabled = false;
    if (!result) return;
    if (result.ok) toast(this.t("op.macro_done", { name: m.name }), "info");
    else toast(result.message);
  }

  private scriptNode(script: Script): HTMLElement {
    const t = this.t;
    const inputs = new Map<string, HTMLInputElement>();
    const form = el("div", { class: "script-fields" });
    for (const f of script.fields) {
      const input = el("input", {
        name: f.key,
        type: f.kind === "number" ? "number" : "text",
        "data-testid": `script-field-${f.key}`,
      });
      input.value = f.value === null || f.value === undefined ? "" : String(f.value);
      inputs.set(f.key, input);
      form.append(el("label", {}, f.label, input));
    }
    const step = async (name: "start" | "close"): Promise<void> => {
      const values: Record<string, string | null> = {};
      for (const [key, input] of inputs) values[key] = input.value.trim() === "" ? null : input.value;
      const shown = await api<Script>(`/api/v1/conversations/${this.id}/script/${name}`, { values });
      if (shown) toast(t(name === "start" ? "op.script_started" : "op.script_closed"), "info");
    };
    const start = el("button", { type: "button", "data-testid": "script-start" }, t("op.script_start"));
    start.addEventListener("click", () => void step("start"));
    const close = el("button", { type: "button", "data-testid": "script-close" }, t("op.script_close"));
    close.addEventListener("click", () => void step("close"));
    return el(
      "div",
      { class: "operator-script", "data-testid": "operator-script" },
      el("h4", {}, script.name),
      el("p", { class: "script-text" }, script.text),
      form,
      el("div", { class: "row" }, start, close),
    );
  }
}
