// The supervisor's scenario builder: the list page and the visual editor of one scenario.
// The editor keeps the draft in memory, draws it on an SVG canvas, edits nodes in a side
// panel, saves/publishes over REST and shows the server's problems on the nodes.
import { boot, clear, el, translator } from "./common";
import { bindShortcuts, typingIn } from "./keys";
import { api, readJsonFile } from "./builder/api";
import { Canvas, NODE_W, edgeKey } from "./builder/canvas";
import { copyNodes, pasteNodes, readClip } from "./builder/clipboard";
import { BuilderKeys, builderKeymap } from "./builder/keymap";
import { NodeSearch } from "./builder/search";
import type { FormContext } from "./builder/forms";
import { nodeForm, variablesPanel } from "./builder/forms";
import { renderList } from "./builder/list";
import { KINDS, newNode, removeNode } from "./builder/nodes";
import { Simulator } from "./builder/sim";
import type { BuilderBoot, Doc, Problem, Revision, ScenarioDetail, Transcript } from "./builder/types";
import { Versions } from "./builder/versions";

const data = boot();
const t = translator(data.strings);
const cfg = data as unknown as BuilderBoot & typeof data;
const app = document.getElementById("app") as HTMLElement;

type Tab = "node" | "problems" | "test" | "versions" | "stats";

class Builder {
  private doc!: Doc;
  private detail!: ScenarioDetail;
  private problems: Problem[] = [];
  private selected: string | null = null;
  /** The nodes picked for copying or deleting (Shift+click, Ctrl+A); holds ``selected`` too. */
  private picked = new Set<string>();
  private edge: string | null = null;
  private dirty = false;
  private tab: Tab = "node";
  private readonly canvas: Canvas;
  private readonly sim: Simulator;
  private readonly versions: Versions;
  private readonly head = el("header", { class: "bld-head" });
  private readonly side = el("div", { class: "bld-side-body" });
  private readonly tabs = el("nav", { class: "bld-tabs" });
  private readonly vars = el("div", {});
  private readonly status = el("span", { class: "bld-status", "data-testid": "status", role: "status" });
  private readonly varList = el("datalist", { id: "bld-vars" });
  private readonly keyList = el("datalist", { id: "bld-keys" });
  private readonly form: FormContext;
  private readonly search: NodeSearch;

  constructor(private readonly id: number) {
    const readonly = cfg.readonly;
    this.form = {
      readonly,
      t,
      boot: cfg,
      doc: () => this.doc,
      changed: () => this.changed(true),
      refresh: () => this.renderSide(),
      select: (nodeId) => this.select(nodeId),
    };
    this.canvas = new Canvas({
      doc: () => this.doc,
      readonly,
      t,
      selectedNode: () => this.selected,
      selectedEdge: () => this.edge,
      marks: (nodeId) => [...(this.picked.size > 1 && this.picked.has(nodeId) ? ["picked"] : []), ...this.search.mark(nodeId)],
      onSelectNode: (nodeId, add) => this.select(nodeId, add),
      onSelectEdge: (key) => {
        this.edge = key;
        this.selected = null;
        this.picked.clear();
        this.tab = "node";
        this.canvas.render();
        this.renderSide();
      },
      onChange: (logic) => {
        this.changed(logic);
        this.renderSide();
      },
    });
    this.sim = new Simulator({
      t,
      boot: cfg,
      scenarioId: id,
      doc: () => this.doc,
      onRun: (run) => this.showRun(run),
      onProblems: (problems) => this.setProblems(problems),
    });
    this.versions = new Versions({
      t,
      boot: cfg,
      scenarioId: id,
      readonly,
      toast: (text, error) => this.say(text, error),
      reloaded: async () => {
        await this.reloadHeader();
      },
      onStats: (stats) => this.canvas.setOverlay({ stats }),
    });
    for (const k of cfg.scenario_keys) this.keyList.append(el("option", { value: k }));
    this.search = new NodeSearch({ doc: () => this.doc, t, show: (nodeId) => this.showHit(nodeId) });
  }

  async start(): Promise<void> {
    const reply = await api<ScenarioDetail>("GET", `/api/v1/scenarios/${this.id}`);
    if (!reply.ok) {
      app.append(el("p", { class: "form-error" }, reply.detail));
      return;
    }
    this.detail = reply.data;
    this.doc = this.normalise(reply.data.draft);
    this.problems = reply.data.problems;
    const palette = el(
      "div",
      { class: "bld-palette", "data-testid": "palette" },
      el("h3", {}, t("bld.palette")),
      ...KINDS.map((kind) => el("button", { type: "button", class: `kind-${kind}`, "data-testid": `palette-${kind}`, disabled: cfg.readonly, onclick: () => this.add(kind) }, t(`bld.kind.${kind}`))),
    );
    const canvasBox = el("div", { class: "bld-canvas" }, this.canvas.root);
    app.append(
      el(
        "div",
        { class: "bld" },
        this.head,
        el("aside", { class: "bld-left" }, palette, el("h3", {}, t("bld.variables")), this.vars),
        canvasBox,
        el("aside", { class: "bld-side" }, this.tabs, this.side),
      ),
      this.varList,
      this.keyList,
    );
    bindShortcuts(t, (overlay) => builderKeymap(t, this.keys, overlay));
    window.addEventListener("beforeunload", (ev) => {
      if (this.dirty) ev.preventDefault();
    });
    this.renderHead();
    this.renderVars();
    this.canvas.setOverlay({ problems: this.problemMap() });
    this.renderSide();
    await this.versions.load();
  }

  /** Every node gets a place on the canvas; an old document may have none. */
  private normalise(draft: Doc): Doc {
    const doc: Doc = { ...draft, schema_version: 2, variables: draft.variables ?? [], layout: draft.layout ?? {} };
    doc.nodes.forEach((n, i) => {
      n.ports = n.ports ?? {};
      if (!doc.layout[n.id]) doc.layout[n.id] = { x: 40 + (i % 3) * 250, y: 40 + Math.floor(i / 3) * 220 };
    });
    return doc;
  }

  // --- header ---------------------------------------------------------------------------

  private renderHead(): void {
    clear(this.head);
    const name = el("input", { type: "text", value: this.doc.name, "data-testid": "scenario-name", maxlength: 128, disabled: cfg.readonly });
    name.addEventListener("input", () => {
      if (name.value.trim()) {
        this.doc.name = name.value;
        this.changed(true);
      }
    });
    const active = this.detail.active_revision;
    const importer = el("input", { type: "file", accept: "application/json,.json", hidden: true, "data-testid": "import-draft" });
    importer.addEventListener("change", () => void this.importDraft(importer));
    const parts: (HTMLElement | null)[] = [
      el("a", { href: "/supervisor/bots" }, t("bld.back")),
      name,
      el("code", {}, this.detail.key),
      el("span", { class: "badge", "data-testid": "active-revision" }, active ? t("bld.published_n", { n: active.number }) : t("bld.not_published")),
      this.status,
      el("span", { class: "bld-spacer" }),
      this.search.root,
      cfg.readonly ? el("span", { class: "badge" }, t("bld.readonly")) : null,
      cfg.readonly ? null : el("button", { type: "button", "data-testid": "save", onclick: () => void this.save() }, t("bld.save")),
      cfg.readonly ? null : el("button", { type: "button", class: "primary", "data-testid": "publish", onclick: () => void this.publish() }, t("bld.publish")),
      el("a", { class: "button", href: `/api/v1/scenarios/${this.id}/export`, download: `scenario-${this.detail.key}.json`, "data-testid": "export" }, t("bld.export")),
      cfg.readonly ? null : el("button", { type: "button", "data-testid": "import", onclick: () => importer.click() }, t("bld.import")),
      importer,
    ];
    for (const part of parts) if (part) this.head.append(part);
  }

  private async reloadHeader(): Promise<void> {
    const reply = await api<ScenarioDetail>("GET", `/api/v1/scenarios/${this.id}`);
    if (reply.ok) this.detail = { ...reply.data, draft: this.doc };
    this.renderHead();
  }

  private async importDraft(input: HTMLInputElement): Promise<void> {
    const file = input.files?.[0];
    input.value = "";
    if (!file) return;
    const parsed = (await readJsonFile(file)) as { document?: Doc } | null;
    const doc = parsed && typeof parsed === "object" ? (parsed.document ?? (parsed as unknown as Doc)) : null;
    if (!doc || !Array.isArray(doc.nodes) || !doc.nodes.length) {
      this.say(t("bld.err.import"), true);
      return;
    }
    this.doc = this.normalise(doc);
    this.selected = null;
    this.picked.clear();
    this.edge = null;
    this.changed(true);
    this.renderHead();
    this.renderSide();
    this.say(t("bld.imported"));
  }

  private say(text: string, error = false): void {
    this.status.textContent = text;
    this.status.classList.toggle("bad", error);
  }

  // --- editing --------------------------------------------------------------------------

  private changed(logic: boolean): void {
    if (!cfg.readonly) {
      this.dirty = true;
      this.say(t("bld.unsaved"));
    }
    if (logic) {
      this.renderVars();
      this.dropSolvedProblems();
    }
    this.canvas.render();
  }

  /** The server's problems describe the document as it was saved; the ones an edit has
   * visibly solved (the port is connected now, the node is gone) go at once instead of
   * staying on the node until the next save. Everything else waits for the server. */
  private dropSolvedProblems(): void {
    const byId = new Map(this.doc.nodes.map((n) => [n.id, n]));
    const still = this.problems.filter((p) => {
      if (!p.node) return true;
      const node = byId.get(p.node);
      if (!node) return false;
      const target = p.port ? node.ports[p.port] : undefined;
      if (p.code === "port_unconnected" && p.port) return !target;
      if (p.code === "port_target" && p.port) return Boolean(target) && !byId.has(target as string);
      return true;
    });
    if (still.length === this.problems.length) return;
    this.problems = still;
    this.canvas.setOverlay({ problems: this.problemMap() });
  }

  private renderVars(): void {
    clear(this.vars);
    this.vars.append(variablesPanel(this.form));
    clear(this.varList);
    for (const v of this.doc.variables) this.varList.append(el("option", { value: v.name }));
  }

  private add(kind: string): void {
    const node = newNode(this.doc, kind, cfg.scenario_keys);
    this.doc.nodes.push(node);
    const i = this.doc.nodes.length - 1;
    // As many columns as the visible canvas holds: a new node never lands out of sight.
    const visible = this.canvas.root.parentElement?.clientWidth ?? 0;
    const cols = Math.max(1, Math.min(3, Math.floor((visible - 40 - NODE_W) / 250) + 1));
    let spot = { x: 40 + (i % cols) * 250, y: 40 + Math.floor(i / cols) * 220 };
    const taken = (p: { x: number; y: number }): boolean =>
      Object.values(this.doc.layout).some((q) => Math.abs(q.x - p.x) < NODE_W && Math.abs(q.y - p.y) < 120);
    for (let tries = 0; taken(spot) && tries < 40; tries++) spot = { x: spot.x, y: spot.y + 160 };
    this.doc.layout[node.id] = spot;
    if (!this.doc.nodes.some((n) => n.id === this.doc.start)) this.doc.start = node.id;
    this.selected = node.id;
    this.picked = new Set([node.id]);
    this.edge = null;
    this.tab = "node";
    this.changed(true);
    this.renderSide();
  }

  /** Select a node (``null``: none); ``add`` (Shift+click) adds it to the picked ones, or
   * takes it out again. */
  private select(nodeId: string | null, add = false): void {
    if (add && nodeId) {
      if (this.picked.has(nodeId) && this.picked.size > 1) {
        this.picked.delete(nodeId);
        nodeId = this.selected === nodeId ? [...this.picked][this.picked.size - 1] : this.selected;
      } else {
        if (this.selected) this.picked.add(this.selected);
        this.picked.add(nodeId);
      }
    } else {
      this.picked = new Set(nodeId ? [nodeId] : []);
    }
    this.selected = nodeId;
    this.edge = null;
    if (nodeId) this.tab = "node";
    this.canvas.render();
    this.renderSide();
  }

  private deleteEdge(key: string): void {
    const [from, port] = key.split("\u0000");
    const node = this.doc.nodes.find((n) => n.id === from);
    if (node) delete node.ports[port];
    this.edge = null;
    this.changed(true);
    this.renderSide();
  }

  // --- keyboard (builder/keymap.ts lists the keys) ------------------------------------------

  private readonly keys: BuilderKeys = {
    copy: () => {
      // Text selected on the page is the browser's to copy.
      if (!this.picked.size || !window.getSelection()?.isCollapsed) return false;
      const n = copyNodes(this.doc, this.picked);
      this.say(t("bld.copied", { n }));
      return true;
    },
    paste: () => {
      const clip = readClip();
      if (cfg.readonly || !clip) return false;
      const box = this.canvas.root.parentElement;
      const ids = pasteNodes(this.doc, clip, { x: (box?.scrollLeft ?? 0) + 40, y: (box?.scrollTop ?? 0) + 40 });
      this.picked = new Set(ids);
      this.selected = ids[0];
      this.edge = null;
      this.tab = "node";
      this.changed(true);
      this.renderSide();
      this.reveal(ids);
      this.say(t("bld.pasted", { n: ids.length, ids: ids.join(", ") }));
      return true;
    },
    selectAll: () => {
      this.picked = new Set(this.doc.nodes.map((n) => n.id));
      this.selected = this.doc.nodes[0]?.id ?? null;
      this.edge = null;
      this.canvas.render();
      this.renderSide();
      return true;
    },
    remove: () => {
      if (cfg.readonly) return false;
      if (this.edge) {
        this.deleteEdge(this.edge);
      } else if (this.picked.size > 1) {
        for (const id of this.picked) removeNode(this.doc, id);
        this.select(null);
        this.changed(true);
      } else if (this.selected) {
        this.side.querySelector<HTMLButtonElement>("[data-testid=delete-node]")?.click();
      } else {
        return false;
      }
      return true;
    },
    search: () => {
      this.search.focus();
      return true;
    },
    searchStep: (ev, by) => {
      if (ev.target !== this.search.input) return false;
      this.search.step(by);
      return true;
    },
    escape: () => {
      if (this.search.active) {
        this.search.clear();
        return true;
      }
      if (typingIn(document.activeElement) || (!this.picked.size && !this.edge)) return false;
      this.select(null);
      return true;
    },
  };

  /** Scroll the canvas so that the pasted nodes are in sight (their top left corner first). */
  private reveal(ids: string[]): void {
    const box = this.canvas.root.parentElement;
    const places = ids.map((id) => this.doc.layout[id]).filter(Boolean);
    if (!box || !places.length) return;
    const left = Math.min(...places.map((p) => p.x));
    const top = Math.min(...places.map((p) => p.y));
    const right = Math.max(...places.map((p) => p.x)) + NODE_W;
    const bottom = Math.max(...places.map((p) => p.y)) + 160;
    const seen = left >= box.scrollLeft && top >= box.scrollTop && right <= box.scrollLeft + box.clientWidth && bottom <= box.scrollTop + box.clientHeight;
    if (!seen) box.scrollTo({ left: left - 20, top: top - 30 });
  }

  /** A search hit: selected, and the canvas scrolled so that it sits in the middle. */
  private showHit(nodeId: string | null): void {
    if (!nodeId) {
      this.canvas.render();
      return;
    }
    this.select(nodeId);
    const box = this.canvas.root.parentElement;
    const p = this.doc.layout[nodeId];
    if (box && p) box.scrollTo({ left: p.x + NODE_W / 2 - box.clientWidth / 2, top: p.y + 40 - box.clientHeight / 2 });
  }

  // --- problems, save, publish -------------------------------------------------------------

  private problemMap(): Map<string, string[]> {
    const map = new Map<string, string[]>();
    for (const p of this.problems) if (p.node) map.set(p.node, [...(map.get(p.node) ?? []), p.message]);
    return map;
  }

  private setProblems(problems: Problem[]): void {
    this.problems = problems;
    this.canvas.setOverlay({ problems: this.problemMap() });
    this.renderSide();
  }

  private async save(): Promise<boolean> {
    this.say(t("bld.saving"));
    const reply = await api<{ problems: Problem[] }>("PUT", `/api/v1/scenarios/${this.id}/draft`, { document: this.doc });
    const problems = reply.data.problems ?? [];
    this.setProblems(problems);
    if (!reply.ok) {
      this.say(t("bld.save_refused", { detail: reply.detail }), true);
      this.showTab("problems");
      return false;
    }
    this.dirty = false;
    this.say(problems.length ? t("bld.saved_problems", { n: problems.length }) : t("bld.saved"), problems.length > 0);
    return true;
  }

  private async publish(): Promise<void> {
    if (!(await this.save())) return;
    if (this.problems.length) {
      // The saved draft has problems: say where, instead of asking the server to refuse.
      const nodes = [...new Set(this.problems.map((p) => p.node).filter((n): n is string => Boolean(n)))];
      this.say(t("bld.publish_blocked", { n: this.problems.length, nodes: nodes.join(", ") || "—" }), true);
      this.showTab("problems");
      return;
    }
    const reply = await api<Revision & { problems?: Problem[] }>("POST", `/api/v1/scenarios/${this.id}/publish`, {});
    if (!reply.ok) {
      if (reply.data.problems) this.setProblems(reply.data.problems);
      this.say(t("bld.publish_refused", { detail: reply.detail }), true);
      this.showTab("problems");
      return;
    }
    this.say(t("bld.published", { n: reply.data.number }));
    await this.versions.load();
    await this.reloadHeader();
  }

  // --- the test run on the canvas ---------------------------------------------------------

  private showRun(run: Transcript | null): void {
    if (!run) {
      this.canvas.setOverlay({ path: new Set(), pathEdges: new Set(), current: null });
      return;
    }
    const edges = new Set<string>();
    for (const step of run.steps) if (step.outcome.startsWith("left:")) edges.add(edgeKey(step.node, step.outcome.slice(5)));
    this.canvas.setOverlay({ path: new Set(run.path), pathEdges: edges, current: run.status === "running" ? run.node : null });
  }

  // --- the side panel ---------------------------------------------------------------------

  private showTab(tab: Tab): void {
    this.tab = tab;
    this.renderSide();
  }

  private renderSide(): void {
    clear(this.tabs);
    const names: Tab[] = ["node", "problems", "test", "versions", "stats"];
    for (const name of names) {
      const label = name === "problems" ? t("bld.tab.problems", { n: this.problems.length }) : t(`bld.tab.${name}`);
      this.tabs.append(el("button", { type: "button", class: name === this.tab ? "on" : "", "data-testid": `tab-${name}`, onclick: () => this.showTab(name) }, label));
    }
    clear(this.side);
    if (this.tab === "node") this.side.append(this.nodePanel());
    else if (this.tab === "problems") this.side.append(this.problemsPanel());
    else if (this.tab === "test") this.side.append(this.sim.root);
    else if (this.tab === "versions") this.side.append(this.versions.root);
    else this.side.append(this.versions.statsPanel());
  }

  private nodePanel(): HTMLElement {
    if (this.edge) {
      const [from, port] = this.edge.split("\u0000");
      const node = this.doc.nodes.find((n) => n.id === from);
      const to = node?.ports[port] ?? "";
      return el(
        "div",
        { class: "bld-form", "data-testid": "edge-form" },
        el("h3", {}, t("bld.arrow")),
        el("p", {}, t("bld.arrow_text", { from, port, to })),
        cfg.readonly ? null : el("button", { type: "button", class: "danger", "data-testid": "delete-edge", onclick: () => this.edge && this.deleteEdge(this.edge) }, t("bld.delete_arrow")),
      );
    }
    const node = this.doc.nodes.find((n) => n.id === this.selected);
    if (!node) return el("p", { class: "muted" }, t("bld.pick_node"));
    const problems = this.problemMap().get(node.id) ?? [];
    return nodeForm(this.form, node, problems);
  }

  private problemsPanel(): HTMLElement {
    if (!this.problems.length) return el("p", { class: "muted", "data-testid": "no-problems" }, t("bld.no_problems"));
    return el(
      "ul",
      { class: "bld-problems", "data-testid": "problems" },
      ...this.problems.map((p) =>
        el(
          "li",
          { "data-testid": "problem", "data-node": p.node ?? "" },
          p.node ? el("button", { type: "button", class: "link", onclick: () => this.select(p.node) }, p.node) : null,
          " ",
          p.message,
        ),
      ),
    );
  }
}

if (cfg.view === "edit" && cfg.scenario_id) void new Builder(cfg.scenario_id).start();
else void renderList(app, t, cfg.readonly);

