// The side panel: one form per node kind, the ports list, and the scenario's variables.
import { el } from "../common";
import type { Check, FieldContext } from "./fields";
import { checkField, numberField, pairsToText, selectField, textField, textToPairs } from "./fields";
import { DTMF, NODE_ID, OPTION_ID, VAR_NAME, content, options, portNames, prunePorts, removeNode, renameNode } from "./nodes";
import type { BNode, BuilderBoot, Content, Doc, MenuOption } from "./types";

export interface FormContext extends FieldContext {
  doc(): Doc;
  boot: BuilderBoot;
  /** Redraw the form too (a list grew or shrank, a node was renamed or deleted). */
  refresh(): void;
  select(id: string | null): void;
}

const FACTS = ["channel", "time", "weekday", "business_hours_open", "agents_online"];
const OPS = ["eq", "ne", "lt", "le", "gt", "ge", "contains", "in", "empty", "not_empty", "matches"];
const VAR_TYPES = ["text", "number", "email", "phone", "date", "bool", "choice", "list", "json"];

function varCheck(ctx: FormContext): Check {
  return (v) => (VAR_NAME.test(v) ? "" : ctx.t("bld.err.var_name"));
}

function section(title: string, ...children: (Node | null)[]): HTMLElement {
  return el("fieldset", { class: "bld-section" }, el("legend", {}, title), ...children);
}

function contentFields(ctx: FormContext, node: BNode, key: string, legend: string, optional = false): HTMLElement {
  const get = (): Content => {
    const existing = node[key] as Content | null | undefined;
    if (existing) return existing;
    const fresh: Content = { text: "" };
    node[key] = fresh;
    return fresh;
  };
  const c = content(node, key);
  const emptyToNull = (): void => {
    const now = node[key] as Content | null;
    if (optional && now && !now.text && !now.text_ru && !Object.keys(now.channels ?? {}).length && !now.prompt_id) node[key] = null;
  };
  return section(
    legend,
    textField(ctx, ctx.t("bld.f.text"), c.text ?? "", (v) => ((get().text = v), emptyToNull()), { multiline: true, testid: `${key}-text` }),
    textField(ctx, ctx.t("bld.f.text_ru"), c.text_ru ?? "", (v) => ((get().text_ru = v), emptyToNull()), { multiline: true, testid: `${key}-text_ru` }),
    textField(ctx, ctx.t("bld.f.voice_text"), c.channels?.voice ?? "", (v) => {
      const target = get();
      const channels = { ...(target.channels ?? {}) };
      if (v) channels.voice = v;
      else delete channels.voice;
      target.channels = channels;
      emptyToNull();
    }),
    promptPicker(ctx, key, c.prompt_id ?? null, (id) => {
      const target = get();
      if (id === null) delete target.prompt_id;
      else target.prompt_id = id;
      emptyToNull();
    }),
  );
}

/** The voice prompt: picked from the prompt manager by folder, with a preview player. */
function promptPicker(ctx: FormContext, key: string, value: number | null, apply: (id: number | null) => void): HTMLElement {
  const list = ctx.boot.prompts ?? [];
  const select = el("select", { "data-testid": `${key}-prompt` });
  select.append(el("option", { value: "" }, ctx.t("bld.prompt_none")));
  const folders = new Map<string, HTMLOptGroupElement>();
  for (const p of list) {
    let group = folders.get(p.folder);
    if (!group) {
      group = el("optgroup", { label: p.folder || "/" });
      folders.set(p.folder, group);
      select.append(group);
    }
    group.append(el("option", { value: String(p.id) }, p.name));
  }
  if (value !== null && !list.some((p) => p.id === value)) {
    select.append(el("option", { value: String(value) }, ctx.t("bld.prompt_missing", { id: value })));
  }
  select.value = value === null ? "" : String(value);
  select.disabled = ctx.readonly;
  const audio = el("audio", { controls: true, preload: "none", "data-testid": `${key}-prompt-audio` });
  const preview = (): void => {
    const picked = list.find((p) => String(p.id) === select.value);
    audio.hidden = !picked;
    if (picked) audio.src = picked.audio_url;
    else audio.removeAttribute("src");
  };
  preview();
  select.addEventListener("change", () => {
    apply(select.value ? Number(select.value) : null);
    preview();
    ctx.changed();
  });
  const manage = el("a", { href: "/supervisor/prompts", target: "_blank", rel: "noopener" }, ctx.t("bld.prompt_manage"));
  return el("label", { class: "bld-field", "data-testid": `field-${key}-prompt` }, el("span", {}, ctx.t("bld.f.voice_prompt")), select, audio, manage);
}

function optionsEditor(ctx: FormContext, node: BNode, withPorts: boolean): HTMLElement {
  const list = options(node);
  const rows = list.map((opt, i) => {
    const others = (pick: (o: MenuOption) => string | undefined): string[] => list.filter((_, j) => j !== i).map(pick).filter((x): x is string => Boolean(x));
    const idCheck: Check = (v) => (!OPTION_ID.test(v) ? ctx.t("bld.err.option_id") : others((o) => o.id).includes(v) ? ctx.t("bld.err.unique") : "");
    const dtmfCheck: Check = (v) => (!DTMF.test(v) ? ctx.t("bld.err.dtmf") : v && others((o) => o.dtmf).includes(v) ? ctx.t("bld.err.unique") : "");
    const labelCheck: Check = (v) => (v.length < 1 || v.length > 64 ? ctx.t("bld.err.label") : "");
    return el(
      "div",
      { class: "bld-option", "data-testid": "option" },
      textField(ctx, ctx.t("bld.f.option_id"), opt.id, (v) => {
        if (withPorts) {
          const old = `opt:${opt.id}`;
          if (old in node.ports) {
            node.ports[`opt:${v}`] = node.ports[old];
            delete node.ports[old];
          }
        }
        opt.id = v;
      }, { check: idCheck, testid: "option-id" }),
      textField(ctx, ctx.t("bld.f.label"), opt.label, (v) => (opt.label = v), { check: labelCheck, testid: "option-label" }),
      textField(ctx, ctx.t("bld.f.label_ru"), opt.label_ru ?? "", (v) => (opt.label_ru = v)),
      textField(ctx, ctx.t("bld.f.dtmf"), opt.dtmf ?? "", (v) => (opt.dtmf = v), { check: dtmfCheck, testid: "option-dtmf" }),
      ctx.readonly || list.length <= 1
        ? null
        : el("button", { type: "button", class: "danger", "data-testid": "option-remove", onclick: () => {
            list.splice(i, 1);
            prunePorts(node);
            ctx.changed();
            ctx.refresh();
          } }, "×"),
    );
  });
  const add = ctx.readonly || list.length >= 10
    ? null
    : el("button", { type: "button", "data-testid": "option-add", onclick: () => {
        let n = list.length + 1;
        while (list.some((o) => o.id === `opt${n}`)) n++;
        const digits = new Set(list.map((o) => o.dtmf));
        const digit = "123456789*".split("").find((d) => !digits.has(d)) ?? "";
        list.push({ id: `opt${n}`, label: ctx.t("bld.option_n", { n }), label_ru: "", dtmf: digit });
        node.options = list;
        ctx.changed();
        ctx.refresh();
      } }, ctx.t("bld.add_option"));
  return section(ctx.t("bld.options"), ...rows, add);
}

// --- conditions: a simple all/any rule list, or JSON for anything else -----------------

interface Rule {
  side: "var" | "fact";
  name: string;
  op: string;
  value: string;
}

type Json = Record<string, unknown>;

function toRules(expr: Json): { mode: "all" | "any"; rules: Rule[] } | null {
  const one = (e: Json): Rule | null => {
    if (typeof e.op !== "string") return null;
    const left = e.left as Json | undefined;
    if (!left || (typeof left.var !== "string" && typeof left.fact !== "string")) return null;
    const right = e.right as Json | undefined | null;
    if (right && !("value" in right)) return null;
    return {
      side: typeof left.var === "string" ? "var" : "fact",
      name: String(left.var ?? left.fact),
      op: e.op,
      value: right && right.value !== null && right.value !== undefined ? String(right.value) : "",
    };
  };
  for (const mode of ["all", "any"] as const) {
    if (Array.isArray(expr[mode])) {
      const rules = (expr[mode] as Json[]).map(one);
      return rules.every(Boolean) ? { mode, rules: rules as Rule[] } : null;
    }
  }
  const single = one(expr);
  return single ? { mode: "all", rules: [single] } : null;
}

function literal(text: string): string | number | boolean {
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  if (text === "true" || text === "false") return text === "true";
  return text;
}

function fromRules(mode: "all" | "any", rules: Rule[]): Json {
  const exprs = rules.map((r) => {
    const e: Json = { op: r.op, left: r.side === "var" ? { var: r.name } : { fact: r.name } };
    if (r.op !== "empty" && r.op !== "not_empty") e.right = { value: literal(r.value) };
    return e;
  });
  return exprs.length === 1 ? exprs[0] : { [mode]: exprs };
}

function conditionEditor(ctx: FormContext, node: BNode): HTMLElement {
  const simple = toRules((node.when as Json) ?? {});
  const json = textField(ctx, ctx.t("bld.f.when_json"), JSON.stringify(node.when, null, 1), (v) => (node.when = JSON.parse(v)), {
    multiline: true,
    testid: "when-json",
    check: (v) => {
      try {
        const parsed: unknown = JSON.parse(v);
        return parsed && typeof parsed === "object" && !Array.isArray(parsed) ? "" : ctx.t("bld.err.json");
      } catch {
        return ctx.t("bld.err.json");
      }
    },
  });
  if (!simple) return section(ctx.t("bld.condition"), el("p", { class: "muted" }, ctx.t("bld.condition_complex")), json);
  const { rules } = simple;
  let mode = simple.mode;
  const save = (): void => {
    node.when = fromRules(mode, rules);
  };
  const vars = ctx.doc().variables.map((v) => v.name);
  const rows = rules.map((rule, i) =>
    el(
      "div",
      { class: "bld-rule", "data-testid": "rule" },
      selectField(ctx, ctx.t("bld.f.side"), rule.side, [["var", ctx.t("bld.side.var")], ["fact", ctx.t("bld.side.fact")]], (v) => {
        rule.side = v as Rule["side"];
        rule.name = v === "var" ? (vars[0] ?? "") : "channel";
        save();
        ctx.refresh();
      }),
      rule.side === "fact"
        ? selectField(ctx, ctx.t("bld.f.name"), rule.name, FACTS.map((f) => [f, ctx.t(`bld.fact.${f}`)]), (v) => ((rule.name = v), save()))
        : textField(ctx, ctx.t("bld.f.name"), rule.name, (v) => ((rule.name = v), save()), { check: varCheck(ctx), list: "bld-vars" }),
      selectField(ctx, ctx.t("bld.f.op"), rule.op, OPS.map((o) => [o, ctx.t(`bld.op.${o}`)]), (v) => {
        rule.op = v;
        save();
        ctx.refresh();
      }),
      rule.op === "empty" || rule.op === "not_empty" ? null : textField(ctx, ctx.t("bld.f.value"), rule.value, (v) => ((rule.value = v), save())),
      ctx.readonly || rules.length <= 1 ? null : el("button", { type: "button", class: "danger", onclick: () => {
        rules.splice(i, 1);
        save();
        ctx.changed();
        ctx.refresh();
      } }, "×"),
    ),
  );
  return section(
    ctx.t("bld.condition"),
    selectField(ctx, ctx.t("bld.f.match"), mode, [["all", ctx.t("bld.match.all")], ["any", ctx.t("bld.match.any")]], (v) => {
      mode = v as "all" | "any";
      save();
    }),
    ...rows,
    ctx.readonly ? null : el("button", { type: "button", "data-testid": "rule-add", onclick: () => {
      rules.push({ side: "fact", name: "business_hours_open", op: "eq", value: "true" });
      save();
      ctx.changed();
      ctx.refresh();
    } }, ctx.t("bld.add_rule")),
    el("details", {}, el("summary", {}, ctx.t("bld.as_json")), json),
  );
}

// --- per kind ---------------------------------------------------------------------------

function kindFields(ctx: FormContext, node: BNode): (HTMLElement | null)[] {
  const t = ctx.t;
  const n = (key: string, fallback = 0): number => (typeof node[key] === "number" ? (node[key] as number) : fallback);
  const s = (key: string): string => (node[key] === null || node[key] === undefined ? "" : String(node[key]));
  const variable = (key: string): HTMLElement => textField(ctx, t("bld.f.variable"), s(key), (v) => (node[key] = v), { check: varCheck(ctx), list: "bld-vars", testid: key });
  const retries = (): HTMLElement => numberField(ctx, t("bld.f.retries"), n("retries", 2), 0, 10, (v) => (node.retries = v), { testid: "retries" });
  const timeout = (): HTMLElement => numberField(ctx, t("bld.f.timeout"), n("timeout_seconds"), 0, 86400, (v) => (node.timeout_seconds = v), { testid: "timeout" });
  switch (node.type) {
    case "message":
      return [contentFields(ctx, node, "content", t("bld.f.message"))];
    case "menu":
      return [
        contentFields(ctx, node, "content", t("bld.f.prompt")),
        optionsEditor(ctx, node, true),
        retries(),
        timeout(),
        contentFields(ctx, node, "retry_message", t("bld.f.retry_message"), true),
      ];
    case "ask": {
      const input = s("input") || "text";
      return [
        contentFields(ctx, node, "content", t("bld.f.question")),
        selectField(ctx, t("bld.f.input"), input, ["text", "number", "email", "phone", "date", "choice"].map((k) => [k, t(`bld.input.${k}`)]), (v) => {
          node.input = v;
          ctx.refresh();
        }, "input"),
        input === "choice"
          ? textField(ctx, t("bld.f.choices"), ((node.choices as string[]) ?? []).join("\n"), (v) => (node.choices = v.split("\n").map((x) => x.trim()).filter(Boolean)), {
              multiline: true,
              check: (v) => (v.split("\n").some((x) => x.trim()) ? "" : t("bld.err.choices")),
            })
          : null,
        variable("variable"),
        retries(),
        timeout(),
        contentFields(ctx, node, "retry_message", t("bld.f.retry_message"), true),
      ];
    }
    case "condition":
      return [conditionEditor(ctx, node)];
    case "set": {
      const assign = (node.assign as { variable: string; value: string }[]) ?? [];
      return [
        section(
          t("bld.assignments"),
          ...assign.map((a, i) =>
            el(
              "div",
              { class: "bld-option" },
              textField(ctx, t("bld.f.variable"), a.variable, (v) => (a.variable = v), { check: varCheck(ctx), list: "bld-vars" }),
              textField(ctx, t("bld.f.value"), a.value, (v) => (a.value = v), { placeholder: "{{last_input}}" }),
              ctx.readonly || assign.length <= 1 ? null : el("button", { type: "button", class: "danger", onclick: () => {
                assign.splice(i, 1);
                ctx.changed();
                ctx.refresh();
              } }, "×"),
            ),
          ),
          ctx.readonly ? null : el("button", { type: "button", onclick: () => {
            assign.push({ variable: ctx.doc().variables[0]?.name ?? "answer", value: "" });
            ctx.changed();
            ctx.refresh();
          } }, t("bld.add_assignment")),
        ),
      ];
    }
    case "http":
      return [
        selectField(ctx, t("bld.f.method"), s("method") || "GET", ["GET", "POST", "PUT", "PATCH", "DELETE"].map((x) => [x, x]), (v) => (node.method = v)),
        textField(ctx, t("bld.f.url"), s("url"), (v) => (node.url = v), {
          testid: "url",
          check: (v) => (/^(https?:\/\/|\{\{)/.test(v) && v.length <= 2048 ? "" : t("bld.err.url")),
        }),
        textField(ctx, t("bld.f.headers"), pairsToText((node.headers as Record<string, string>) ?? {}, ":"), (v) => (node.headers = textToPairs(v, ":") ?? {}), {
          multiline: true,
          placeholder: "Authorization: Bearer …",
          check: (v) => (textToPairs(v, ":") ? "" : t("bld.err.pairs", { sep: ":" })),
        }),
        textField(ctx, t("bld.f.body"), s("body"), (v) => (node.body = v), { multiline: true }),
        numberField(ctx, t("bld.f.http_timeout"), n("timeout_seconds", 5), 0, 30, (v) => (node.timeout_seconds = v), { float: true, exclusiveMin: true }),
        textField(ctx, t("bld.f.response_map"), pairsToText((node.response_map as Record<string, string>) ?? {}, "="), (v) => (node.response_map = textToPairs(v, "=") ?? {}), {
          multiline: true,
          placeholder: "balance = account.balance",
          check: (v) => {
            const pairs = textToPairs(v, "=");
            if (!pairs) return t("bld.err.pairs", { sep: "=" });
            const bad = Object.keys(pairs).find((k) => !VAR_NAME.test(k));
            return bad ? t("bld.err.var_name") : "";
          },
        }),
      ];
    case "handoff":
      return [
        selectField(ctx, t("bld.f.queue"), s("queue_id"), [["", t("bld.inbox_queue")], ...ctx.boot.queues.map((q): [string, string] => [String(q.id), q.name])], (v) => (node.queue_id = v ? Number(v) : null), "queue"),
        numberField(ctx, t("bld.f.priority"), n("priority"), -100, 100, (v) => (node.priority = v)),
        textField(ctx, t("bld.f.skills"), ((node.skills as string[]) ?? []).join(", "), (v) => (node.skills = v.split(",").map((x) => x.trim()).filter(Boolean))),
        textField(ctx, t("bld.f.note"), s("note"), (v) => (node.note = v), { multiline: true, check: (v) => (v.length > 2000 ? t("bld.err.too_long") : "") }),
      ];
    case "goto_scenario":
      return [
        textField(ctx, t("bld.f.scenario"), s("scenario"), (v) => (node.scenario = v), {
          list: "bld-keys",
          testid: "scenario",
          check: (v) => (v.length >= 1 && v.length <= 64 ? "" : t("bld.err.required")),
        }),
      ];
    case "close":
      return [
        selectField(ctx, t("bld.f.result_code"), s("result_code"), [["", t("bld.none")], ...ctx.boot.result_codes.map((c): [string, string] => [c, c])], (v) => (node.result_code = v), "result-code"),
        contentFields(ctx, node, "message", t("bld.f.close_message"), true),
      ];
    case "survey":
      return [
        contentFields(ctx, node, "question", t("bld.f.question")),
        selectField(ctx, t("bld.f.survey_kind"), s("kind") || "single", ["single", "multiple", "text"].map((k) => [k, t(`bld.survey.${k}`)]), (v) => {
          node.kind = v;
          ctx.refresh();
        }),
        s("kind") === "text" ? null : optionsEditor(ctx, node, false),
        variable("variable"),
        timeout(),
      ];
    case "wait":
      return [numberField(ctx, t("bld.f.seconds"), n("seconds", 60), 1, 7 * 86400, (v) => (node.seconds = v), { testid: "seconds" })];
    case "record":
      return [
        contentFields(ctx, node, "content", t("bld.f.before_beep")),
        numberField(ctx, t("bld.f.max_seconds"), n("max_seconds", 60), 1, 600, (v) => (node.max_seconds = v), { testid: "max-seconds" }),
        numberField(ctx, t("bld.f.silence_seconds"), n("silence_seconds", 3), 0, 60, (v) => (node.silence_seconds = v), { testid: "silence-seconds" }),
        checkField(ctx, t("bld.f.beep"), node.beep !== false, (v) => (node.beep = v)),
        variable("variable"),
      ];
  }
  return [];
}

function portsEditor(ctx: FormContext, node: BNode): HTMLElement | null {
  const ports = portNames(node);
  if (!ports.length) return null;
  const targets: [string, string][] = [["", "—"], ...ctx.doc().nodes.filter((n) => n.id !== node.id).map((n): [string, string] => [n.id, n.title ? `${n.title} (${n.id})` : n.id])];
  return section(
    ctx.t("bld.ports"),
    ...ports.map((port) => {
      const label = port.startsWith("opt:") ? `▸ ${port.slice(4)}` : ctx.t(`bld.port.${port}`);
      return selectField(ctx, label, node.ports[port] ?? "", targets, (v) => {
        if (v) node.ports[port] = v;
        else delete node.ports[port];
      }, `port-${port}`);
    }),
  );
}

/** The form of one node; every field applies itself when valid. */
export function nodeForm(ctx: FormContext, node: BNode, problems: string[]): HTMLElement {
  const t = ctx.t;
  const doc = ctx.doc();
  const idCheck: Check = (v) => (!NODE_ID.test(v) ? t("bld.err.node_id") : v !== node.id && doc.nodes.some((n) => n.id === v) ? t("bld.err.unique") : "");
  const head = el(
    "div",
    { class: "bld-node-head" },
    el("h3", {}, t(`bld.kind.${node.type}`)),
    doc.start === node.id
      ? el("span", { class: "badge" }, t("bld.is_start"))
      : ctx.readonly ? null : el("button", { type: "button", "data-testid": "make-start", onclick: () => {
          doc.start = node.id;
          ctx.changed();
          ctx.refresh();
        } }, t("bld.make_start")),
    ctx.readonly ? null : el("button", { type: "button", class: "danger", "data-testid": "delete-node", onclick: () => {
      removeNode(doc, node.id);
      ctx.select(null);
      ctx.changed();
    } }, t("bld.delete_node")),
  );
  const idField = el("input", { type: "text", "data-testid": "node-id" });
  idField.value = node.id;
  idField.disabled = ctx.readonly;
  const idError = el("span", { class: "field-error" });
  idField.addEventListener("change", () => {
    const problem = idCheck(idField.value);
    idError.textContent = problem;
    idField.classList.toggle("invalid", problem !== "");
    if (problem || idField.value === node.id) return;
    renameNode(doc, node.id, idField.value);
    ctx.changed();
    ctx.select(idField.value);
  });
  return el(
    "div",
    { class: "bld-form", "data-testid": "node-form", "data-node": node.id },
    head,
    problems.length ? el("ul", { class: "bld-problems-here", "data-testid": "node-form-problems" }, ...problems.map((p) => el("li", {}, p))) : null,
    el("label", { class: "bld-field" }, el("span", {}, t("bld.f.id")), idField, idError),
    textField(ctx, t("bld.f.title"), node.title ?? "", (v) => (node.title = v), { testid: "title", check: (v) => (v.length > 128 ? t("bld.err.too_long") : "") }),
    ...kindFields(ctx, node),
    portsEditor(ctx, node),
  );
}

/** The declared variables: name, type, scope (``contact`` values outlive the conversation). */
export function variablesPanel(ctx: FormContext): HTMLElement {
  const doc = ctx.doc();
  const t = ctx.t;
  const rows = doc.variables.map((v, i) => {
    const check: Check = (name) => (!VAR_NAME.test(name) ? t("bld.err.var_name") : doc.variables.some((o, j) => j !== i && o.name === name) ? t("bld.err.unique") : "");
    return el(
      "div",
      { class: "bld-var", "data-testid": "variable", "data-name": v.name },
      textField(ctx, t("bld.f.name"), v.name, (name) => (v.name = name), { check }),
      selectField(ctx, t("bld.f.type"), v.type || "text", VAR_TYPES.map((x) => [x, x]), (x) => (v.type = x)),
      selectField(ctx, t("bld.f.scope"), v.scope || "conversation", [["conversation", t("bld.scope.conversation")], ["contact", t("bld.scope.contact")]], (x) => (v.scope = x)),
      ctx.readonly ? null : el("button", { type: "button", class: "danger", title: t("bld.remove"), onclick: () => {
        doc.variables.splice(i, 1);
        ctx.changed();
        ctx.refresh();
      } }, "×"),
    );
  });
  const name = el("input", { type: "text", placeholder: t("bld.new_variable"), "data-testid": "new-variable" });
  const error = el("span", { class: "field-error" });
  const add = ctx.readonly ? null : el(
    "form",
    { class: "bld-inline", onsubmit: (ev: Event) => {
      ev.preventDefault();
      const value = name.value.trim();
      const problem = !VAR_NAME.test(value) ? t("bld.err.var_name") : doc.variables.some((o) => o.name === value) ? t("bld.err.unique") : "";
      error.textContent = problem;
      if (problem) return;
      doc.variables.push({ name: value, type: "text", scope: "conversation" });
      ctx.changed();
      ctx.refresh();
    } },
    name,
    el("button", { type: "submit" }, t("bld.add")),
    error,
  );
  return el("div", { class: "bld-vars", "data-testid": "variables" }, ...rows, add);
}
