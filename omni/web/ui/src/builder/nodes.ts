// What each node kind looks like: its default fields, its output ports, a one-line summary.
import type { BNode, Content, Doc, MenuOption, Variable } from "./types";

export const KINDS = [
  "message", "menu", "ask", "condition", "set", "http", "handoff", "goto_scenario", "close", "survey", "wait", "record",
] as const;

export const NODE_ID = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
export const VAR_NAME = /^[a-z][a-z0-9_]{0,63}$/;
export const OPTION_ID = /^[a-z0-9_-]{1,32}$/;
export const DTMF = /^[0-9*#]?$/;

const FIXED_PORTS: Record<string, string[]> = {
  message: ["next"],
  menu: ["on_invalid", "on_no_input", "on_max_retries"],
  ask: ["next", "on_invalid", "on_no_input", "on_max_retries"],
  condition: ["true", "false"],
  set: ["next"],
  http: ["next", "on_error"],
  handoff: ["on_no_agents", "on_closed"],
  goto_scenario: [],
  close: [],
  survey: ["next", "on_no_input"],
  wait: ["next"],
  record: ["next", "on_no_input"],
};

/** The ports a node may have, in drawing order (menu options first, as ``opt:<id>``). */
export function portNames(node: BNode): string[] {
  const fixed = FIXED_PORTS[node.type] ?? [];
  if (node.type === "menu") return [...options(node).map((o) => `opt:${o.id}`), ...fixed];
  return fixed;
}

export function options(node: BNode): MenuOption[] {
  return Array.isArray(node.options) ? (node.options as MenuOption[]) : [];
}

export function content(node: BNode, key = "content"): Content {
  const c = node[key] as Content | undefined;
  return c ?? { text: "" };
}

/** Drop ports the node no longer has (a renamed or removed menu option). */
export function prunePorts(node: BNode): void {
  const allowed = new Set(portNames(node));
  for (const port of Object.keys(node.ports)) if (!allowed.has(port)) delete node.ports[port];
}

function declare(doc: Doc, name: string, type = "text"): void {
  if (!doc.variables.some((v) => v.name === name)) doc.variables.push({ name, type, scope: "conversation" } as Variable);
}

export function freeId(doc: Doc, base: string): string {
  const taken = new Set(doc.nodes.map((n) => n.id));
  for (let i = 1; ; i++) if (!taken.has(`${base}${i}`)) return `${base}${i}`;
}

/** A new node of ``kind`` that the server accepts as is (declaring the variable it writes). */
export function newNode(doc: Doc, kind: string, scenarioKeys: string[]): BNode {
  const id = freeId(doc, kind === "goto_scenario" ? "goto" : kind);
  const node: BNode = { id, type: kind, title: "", ports: {} };
  switch (kind) {
    case "message":
      node.content = { text: "" };
      break;
    case "menu":
      node.content = { text: "" };
      node.options = [{ id: "opt1", label: "Option 1", label_ru: "", dtmf: "1" }];
      node.retries = 2;
      node.timeout_seconds = 0;
      break;
    case "ask":
      node.content = { text: "" };
      node.input = "text";
      node.choices = [];
      node.variable = "answer";
      node.retries = 2;
      node.timeout_seconds = 0;
      declare(doc, "answer");
      break;
    case "condition":
      node.when = { op: "eq", left: { fact: "channel" }, right: { value: "widget" } };
      break;
    case "set": {
      const name = doc.variables[0]?.name ?? "answer";
      declare(doc, name);
      node.assign = [{ variable: name, value: "{{last_input}}" }];
      break;
    }
    case "http":
      node.method = "GET";
      node.url = "https://example.com/";
      node.headers = {};
      node.body = "";
      node.timeout_seconds = 5;
      node.response_map = {};
      break;
    case "handoff":
      node.queue_id = null;
      node.priority = 0;
      node.skills = [];
      node.note = "";
      break;
    case "goto_scenario":
      node.scenario = scenarioKeys[0] ?? "other";
      break;
    case "close":
      node.result_code = "";
      break;
    case "survey":
      node.question = { text: "" };
      node.kind = "single";
      node.options = [
        { id: "good", label: "Good", label_ru: "", dtmf: "1" },
        { id: "bad", label: "Bad", label_ru: "", dtmf: "2" },
      ];
      node.variable = "rating";
      node.timeout_seconds = 0;
      declare(doc, "rating", "choice");
      break;
    case "wait":
      node.seconds = 60;
      break;
    case "record":
      node.content = { text: "" };
      node.max_seconds = 60;
      node.silence_seconds = 3;
      node.beep = true;
      node.variable = "recording";
      declare(doc, "recording");
      break;
  }
  return node;
}

/** Rename a node everywhere it is referenced (ports, start, layout). */
export function renameNode(doc: Doc, from: string, to: string): void {
  for (const n of doc.nodes) {
    if (n.id === from) n.id = to;
    for (const [port, target] of Object.entries(n.ports)) if (target === from) n.ports[port] = to;
  }
  if (doc.start === from) doc.start = to;
  if (doc.layout[from]) {
    doc.layout[to] = doc.layout[from];
    delete doc.layout[from];
  }
}

export function removeNode(doc: Doc, id: string): void {
  doc.nodes = doc.nodes.filter((n) => n.id !== id);
  for (const n of doc.nodes) for (const [port, target] of Object.entries(n.ports)) if (target === id) delete n.ports[port];
  delete doc.layout[id];
  if (doc.start === id) doc.start = doc.nodes[0]?.id ?? id;
}

/** A short line under the title: the text said, the variable asked, the URL called… */
export function summary(node: BNode): string {
  const text = (c: Content | undefined): string => (c?.text ?? "").replace(/\s+/g, " ");
  let out = "";
  switch (node.type) {
    case "message":
    case "menu":
      out = text(node.content as Content);
      break;
    case "ask":
      out = `${String(node.input)} → ${String(node.variable)}`;
      break;
    case "survey":
      out = `${String(node.kind)} → ${String(node.variable)}`;
      break;
    case "set":
      out = ((node.assign as { variable: string }[]) ?? []).map((a) => a.variable).join(", ");
      break;
    case "http":
      out = `${String(node.method)} ${String(node.url)}`;
      break;
    case "handoff":
      out = node.queue_id ? `queue #${String(node.queue_id)}` : "";
      break;
    case "goto_scenario":
      out = String(node.scenario ?? "");
      break;
    case "close":
      out = String(node.result_code ?? "");
      break;
    case "wait":
      out = `${String(node.seconds)} s`;
      break;
    case "record":
      out = `🎙 ${String(node.max_seconds)} s → ${String(node.variable)}`;
      break;
    case "condition":
      out = "if …";
      break;
  }
  return out.length > 28 ? `${out.slice(0, 27)}…` : out;
}
