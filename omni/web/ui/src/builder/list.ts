// /supervisor/bots: the scenarios, a create form and import of an exported file.
import { el } from "../common";
import { api, readJsonFile } from "./api";
import type { T } from "./fields";
import type { ScenarioDetail } from "./types";

interface Row {
  id: number;
  key: string;
  name: string;
  active_revision_id: number | null;
  updated_at: string;
}

/** A new scenario is a working one from the start: greet, hand to an operator, and say
 * goodbye when nobody can take it. It publishes as is; the supervisor edits from there. */
function starter(name: string): Record<string, unknown> {
  return {
    schema_version: 2,
    name,
    start: "start",
    variables: [],
    nodes: [
      {
        id: "start", type: "message", title: "",
        content: { text: "Hello! An operator will answer you shortly.", text_ru: "Здравствуйте! Оператор скоро ответит." },
        ports: { next: "agent" },
      },
      { id: "agent", type: "handoff", title: "", queue_id: null, priority: 0, skills: [], note: "", ports: { on_no_agents: "bye", on_closed: "bye" } },
      {
        id: "bye", type: "close", title: "", result_code: "",
        message: { text: "Sorry, nobody can answer right now. Please write again later.", text_ru: "К сожалению, сейчас никто не может ответить. Напишите позже." },
        ports: {},
      },
    ],
    layout: { start: { x: 40, y: 40 }, agent: { x: 40, y: 170 }, bye: { x: 290, y: 170 } },
  };
}

/** ``[a-z][a-z0-9_-]{0,63}``, written so it compiles with the ``v`` flag Chromium uses for
 * ``pattern`` (a bare ``-`` in a class is a syntax error there, and the check silently vanished). */
export const KEY_PATTERN = "[a-z][a-z0-9_\\-]{0,63}";

export async function renderList(app: HTMLElement, t: T, readonly: boolean): Promise<void> {
  const error = el("p", { class: "form-error", "data-testid": "list-error" });
  const reply = await api<Row[]>("GET", "/api/v1/scenarios");
  const rows = reply.ok ? reply.data : [];
  const open = (id: number): void => window.location.assign(`/supervisor/bots/${id}`);
  const table = rows.length
    ? el(
        "table",
        { class: "grid", "data-testid": "scenarios" },
        el("tr", {}, el("th", {}, t("bld.col.name")), el("th", {}, t("bld.col.key")), el("th", {}, t("bld.col.state")), el("th", {}, t("bld.col.updated"))),
        ...rows.map((r) =>
          el(
            "tr",
            { "data-testid": "scenario-row", "data-key": r.key },
            el("td", {}, el("a", { href: `/supervisor/bots/${r.id}` }, r.name)),
            el("td", {}, el("code", {}, r.key)),
            el("td", {}, r.active_revision_id ? t("bld.state.published") : t("bld.state.draft")),
            el("td", {}, new Date(r.updated_at).toLocaleString()),
          ),
        ),
      )
    : el("p", { class: "muted" }, reply.ok ? t("bld.no_scenarios") : reply.detail);
  const key = el("input", { type: "text", name: "key", required: true, pattern: KEY_PATTERN, maxlength: 64, title: t("bld.err.key"), "data-testid": "new-key" });
  key.addEventListener("input", () => key.setCustomValidity(""));
  key.addEventListener("invalid", () => key.setCustomValidity(key.validity.valueMissing ? "" : t("bld.err.key")));
  const name = el("input", { type: "text", name: "name", required: true, maxlength: 128, "data-testid": "new-name" });
  const create = el(
    "form",
    { class: "card bld-create", "data-testid": "create-form", onsubmit: async (ev: Event) => {
      ev.preventDefault();
      const made = await api<ScenarioDetail>("POST", "/api/v1/scenarios", { key: key.value.trim(), name: name.value.trim(), document: starter(name.value.trim() || key.value) });
      if (made.ok) open(made.data.id);
      else error.textContent = t("bld.failed", { detail: made.detail });
    } },
    el("h2", {}, t("bld.create")),
    el("label", { class: "bld-field" }, el("span", {}, t("bld.col.key")), key, el("small", { class: "muted" }, t("bld.key_help"))),
    el("label", { class: "bld-field" }, el("span", {}, t("bld.col.name")), name),
    el("button", { type: "submit", class: "primary", "data-testid": "create" }, t("bld.create")),
  );
  const file = el("input", { type: "file", accept: "application/json,.json", "data-testid": "import-file" });
  file.addEventListener("change", async () => {
    const chosen = file.files?.[0];
    if (!chosen) return;
    const data = await readJsonFile(chosen);
    if (!data) {
      error.textContent = t("bld.err.json");
      return;
    }
    const made = await api<ScenarioDetail>("POST", "/api/v1/scenarios/import", data);
    if (made.ok) open(made.data.id);
    else error.textContent = t("bld.failed", { detail: made.detail });
  });
  app.append(
    el(
      "div",
      { class: "bld-list" },
      el("h1", {}, t("bld.title")),
      el("p", { class: "muted" }, t("bld.intro")),
      table,
      error,
      readonly ? null : el("div", { class: "bld-list-actions" }, create, el("div", { class: "card" }, el("h2", {}, t("bld.import")), el("p", { class: "muted" }, t("bld.import_help")), file)),
    ),
  );
}
