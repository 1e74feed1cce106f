// Form controls that validate as the supervisor types: a bad value is marked and not applied.
import { el } from "../common";

export type T = (key: string, values?: Record<string, string | number>) => string;
export type Check = (value: string) => string;

export interface FieldContext {
  readonly: boolean;
  t: T;
  /** The document changed (logic): redraw the canvas, mark the draft unsaved. */
  changed(): void;
}

function wrap(label: string, input: HTMLElement, error: HTMLElement, testid?: string): HTMLElement {
  return el("label", { class: "bld-field", "data-testid": testid ? `field-${testid}` : false }, el("span", {}, label), input, error);
}

function wire(
  ctx: FieldContext,
  input: HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement,
  error: HTMLElement,
  check: Check | undefined,
  apply: (value: string) => void,
  event: string,
): void {
  input.disabled = ctx.readonly;
  input.addEventListener(event, () => {
    const problem = check ? check(input.value) : "";
    error.textContent = problem;
    input.classList.toggle("invalid", problem !== "");
    if (problem) return;
    apply(input.value);
    ctx.changed();
  });
}

export interface TextOptions {
  check?: Check;
  multiline?: boolean;
  testid?: string;
  list?: string;
  placeholder?: string;
}

export function textField(
  ctx: FieldContext, label: string, value: string, apply: (v: string) => void, opts: TextOptions = {},
): HTMLElement {
  const input = opts.multiline ? el("textarea", { rows: 3 }) : el("input", { type: "text" });
  if (opts.list) input.setAttribute("list", opts.list);
  if (opts.placeholder) input.setAttribute("placeholder", opts.placeholder);
  if (opts.testid) input.setAttribute("data-testid", opts.testid);
  input.value = value;
  const error = el("span", { class: "field-error" });
  wire(ctx, input, error, opts.check, apply, "input");
  return wrap(label, input, error, opts.testid);
}

export function numberField(
  ctx: FieldContext, label: string, value: number, min: number, max: number, apply: (v: number) => void,
  opts: { testid?: string; float?: boolean; exclusiveMin?: boolean } = {},
): HTMLElement {
  const input = el("input", { type: "number", min, max, step: opts.float ? "any" : 1 });
  if (opts.testid) input.setAttribute("data-testid", opts.testid);
  input.value = String(value);
  const error = el("span", { class: "field-error" });
  const check: Check = (v) => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n) || (!opts.float && !Number.isInteger(n))) return ctx.t("bld.err.number");
    if (n < min || n > max || (opts.exclusiveMin && n === min)) return ctx.t("bld.err.range", { min, max });
    return "";
  };
  wire(ctx, input, error, check, (v) => apply(Number(v)), "input");
  return wrap(label, input, error, opts.testid);
}

export function selectField(
  ctx: FieldContext, label: string, value: string, choices: [string, string][], apply: (v: string) => void,
  testid?: string,
): HTMLElement {
  const input = el("select", { "data-testid": testid ?? false });
  for (const [v, text] of choices) input.append(el("option", { value: v }, text));
  input.value = value;
  const error = el("span", { class: "field-error" });
  wire(ctx, input, error, undefined, apply, "change");
  return wrap(label, input, error, testid);
}

export function checkField(ctx: FieldContext, label: string, value: boolean, apply: (v: boolean) => void): HTMLElement {
  const input = el("input", { type: "checkbox" });
  input.checked = value;
  input.disabled = ctx.readonly;
  input.addEventListener("change", () => {
    apply(input.checked);
    ctx.changed();
  });
  return el("label", { class: "bld-check" }, input, label);
}

/** ``a: b`` lines ⇄ an object; ``sep`` is ":" for headers, "=" for the response map. */
export function pairsToText(pairs: Record<string, string>, sep: string): string {
  return Object.entries(pairs).map(([k, v]) => `${k}${sep === ":" ? ": " : " = "}${v}`).join("\n");
}

export function textToPairs(text: string, sep: string): Record<string, string> | null {
  const out: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    const at = line.indexOf(sep);
    if (at <= 0) return null;
    out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
}
