// The SVG canvas: nodes with their port handles, arrows for connected ports. Drag a node to
// move it (the position goes to the document's layout), drag from a port handle onto a node to
// connect, click an arrow to select it. Every text goes in through textContent.
import { portNames, summary } from "./nodes";
import type { BNode, Doc, NodeStats } from "./types";

const NS = "http://www.w3.org/2000/svg";
export const NODE_W = 200;
const HEAD = 46;
const ROW = 18;
/** Port handles sit inside the node's box: a node the supervisor can see has all its ports
 * within reach, even flush against the canvas's right edge (they used to stick out and be cut). */
const PORT_R = 6;
const PORT_X = NODE_W - PORT_R - 3;

type Attrs = Record<string, string | number>;

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Attrs = {}, text?: string): SVGElementTagNameMap[K] {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

export function nodeHeight(node: BNode): number {
  return HEAD + Math.max(1, portNames(node).length) * ROW + 4;
}

export interface Overlay {
  problems: Map<string, string[]>;
  path: Set<string>;
  pathEdges: Set<string>;
  current: string | null;
  stats: Record<string, NodeStats> | null;
}

export interface CanvasContext {
  doc(): Doc;
  readonly: boolean;
  t(key: string, values?: Record<string, string | number>): string;
  selectedNode(): string | null;
  selectedEdge(): string | null;
  /** More classes of a node: picked for copying, a search hit (builder.ts). */
  marks(id: string): string[];
  /** ``add``: Shift+click, the node joins (or leaves) the selection. */
  onSelectNode(id: string | null, add?: boolean): void;
  onSelectEdge(key: string): void;
  /** ``logic`` false = only the layout moved. */
  onChange(logic: boolean): void;
}

export function edgeKey(from: string, port: string): string {
  return `${from}\u0000${port}`;
}

export class Canvas {
  readonly root: SVGSVGElement;
  private overlay: Overlay = { problems: new Map(), path: new Set(), pathEdges: new Set(), current: null, stats: null };

  constructor(private readonly ctx: CanvasContext) {
    this.root = svg("svg", { class: "bld-svg", "data-testid": "canvas" });
  }

  setOverlay(patch: Partial<Overlay>): void {
    this.overlay = { ...this.overlay, ...patch };
    this.render();
  }

  pos(id: string): { x: number; y: number } {
    return this.ctx.doc().layout[id] ?? { x: 40, y: 40 };
  }

  render(): void {
    const doc = this.ctx.doc();
    const root = this.root;
    while (root.firstChild) root.removeChild(root.firstChild);
    const defs = svg("defs");
    for (const [id, colour] of [["arrow", "#6b7280"], ["arrow-on", "#1c8a4a"], ["arrow-sel", "#2657d9"]]) {
      const marker = svg("marker", { id, viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
      marker.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: colour }));
      defs.append(marker);
    }
    root.append(defs);
    let maxX = 1400;
    let maxY = 900;
    const byId = new Map(doc.nodes.map((n) => [n.id, n]));
    const edges = svg("g", { class: "bld-edges" });
    const nodes = svg("g", { class: "bld-nodes" });
    for (const node of doc.nodes) {
      const p = this.pos(node.id);
      maxX = Math.max(maxX, p.x + NODE_W + 300);
      maxY = Math.max(maxY, p.y + nodeHeight(node) + 300);
      portNames(node).forEach((port, i) => {
        const target = node.ports[port];
        if (!target || !byId.has(target)) return;
        const q = this.pos(target);
        const x1 = p.x + PORT_X;
        const y1 = p.y + HEAD + i * ROW + ROW / 2;
        const x2 = q.x;
        const y2 = q.y + 20;
        const bend = Math.min(140, Math.max(40, Math.abs(x2 - x1) / 2));
        const d = `M ${x1} ${y1} C ${x1 + bend} ${y1}, ${x2 - bend} ${y2}, ${x2} ${y2}`;
        const key = edgeKey(node.id, port);
        const selected = this.ctx.selectedEdge() === key;
        const on = this.overlay.pathEdges.has(key);
        const g = svg("g", {
          class: `bld-edge${selected ? " selected" : ""}${on ? " on-path" : ""}`,
          "data-testid": "edge",
          "data-from": node.id,
          "data-port": port,
          "data-to": target,
        });
        g.append(svg("path", { d, class: "hit" }));
        g.append(svg("path", { d, class: "line", "marker-end": `url(#${selected ? "arrow-sel" : on ? "arrow-on" : "arrow"})` }));
        g.addEventListener("click", (ev) => {
          ev.stopPropagation();
          this.ctx.onSelectEdge(key);
        });
        edges.append(g);
      });
      nodes.append(this.nodeGroup(node, doc));
    }
    root.setAttribute("width", String(maxX));
    root.setAttribute("height", String(maxY));
    root.append(edges, nodes);
    root.onpointerdown = (ev) => {
      if (ev.target === root) this.ctx.onSelectNode(null);
    };
  }

  private nodeGroup(node: BNode, doc: Doc): SVGGElement {
    const p = this.pos(node.id);
    const h = nodeHeight(node);
    const problems = this.overlay.problems.get(node.id) ?? [];
    const classes = ["bn", `kind-${node.type}`];
    if (problems.length) classes.push("has-problem");
    if (this.overlay.path.has(node.id)) classes.push("on-path");
    if (this.overlay.current === node.id) classes.push("current");
    if (this.ctx.selectedNode() === node.id) classes.push("selected");
    classes.push(...this.ctx.marks(node.id));
    const g = svg("g", {
      class: classes.join(" "),
      transform: `translate(${p.x} ${p.y})`,
      "data-testid": "node",
      "data-node": node.id,
      "data-type": node.type,
    });
    if (problems.length) g.setAttribute("data-problem", problems.join(" | "));
    g.append(svg("title", {}, problems.length ? problems.join("\n") : node.id));
    g.append(svg("rect", { class: "box", width: NODE_W, height: h, rx: 6 }));
    g.append(svg("rect", { class: "band", width: NODE_W, height: 6, rx: 3 }));
    g.append(svg("text", { class: "title", x: 10, y: 20 }, node.title || node.id));
    g.append(svg("text", { class: "type", x: 10, y: 36 }, `${this.ctx.t(`bld.kind.${node.type}`)} · ${summary(node)}`));
    if (doc.start === node.id) g.append(svg("text", { class: "start-mark", x: 0, y: -6, "data-testid": "start-mark" }, this.ctx.t("bld.start_mark")));
    const stats = this.overlay.stats?.[node.id];
    portNames(node).forEach((port, i) => {
      const y = HEAD + i * ROW + ROW / 2;
      const count = stats?.ports[port];
      const label = `${this.portLabel(node, port)}${count !== undefined ? ` (${count})` : ""}`;
      const connected = Boolean(node.ports[port]);
      g.append(svg("text", { class: `port-label${connected ? "" : " open"}`, x: PORT_X - PORT_R - 4, y: y + 4, "text-anchor": "end" }, label));
      const handle = svg("circle", {
        class: `port-handle${connected ? " connected" : ""}`,
        cx: PORT_X,
        cy: y,
        r: PORT_R,
        "data-testid": "port",
        "data-port": port,
      });
      if (!this.ctx.readonly) handle.addEventListener("pointerdown", (ev) => this.startConnect(ev, node, port, y));
      g.append(handle);
    });
    let below = h + 14;
    if (problems.length) {
      const text = problems[0].length > 44 ? `${problems[0].slice(0, 43)}…` : problems[0];
      g.append(svg("text", { class: "problem", x: 0, y: below, "data-testid": "node-problem" }, text));
      below += 14;
    }
    if (this.overlay.stats) {
      const s = stats;
      const line = s
        ? this.ctx.t("bld.stats.line", {
            entered: s.entered,
            left: s.left,
            dropped: s.dropped,
            waiting: s.waiting,
            invalid: Math.round(s.invalid_rate * 100),
          })
        : this.ctx.t("bld.stats.none");
      g.append(svg("text", { class: "stats", x: 0, y: below, "data-testid": "node-stats" }, line));
      const queued = s?.ports.queued;
      if (node.type === "handoff" && queued !== undefined) {
        g.append(svg("text", { class: "stats", x: 0, y: below + 14 }, this.ctx.t("bld.stats.queued", { n: queued })));
      }
    }
    g.addEventListener("pointerdown", (ev) => this.startDrag(ev, node));
    return g;
  }

  private portLabel(node: BNode, port: string): string {
    if (port.startsWith("opt:")) {
      const opt = (node.options as { id: string; label: string }[] | undefined)?.find((o) => `opt:${o.id}` === port);
      return opt ? `▸ ${opt.label}` : port;
    }
    return this.ctx.t(`bld.port.${port}`);
  }

  private point(ev: PointerEvent): { x: number; y: number } {
    const box = this.root.getBoundingClientRect();
    return { x: ev.clientX - box.left, y: ev.clientY - box.top };
  }

  private startDrag(ev: PointerEvent, node: BNode): void {
    if (ev.button !== 0) return;
    ev.preventDefault();
    const start = this.point(ev);
    const origin = { ...this.pos(node.id) };
    let moved = false;
    const move = (e: PointerEvent): void => {
      if (this.ctx.readonly) return;
      const p = this.point(e);
      const dx = p.x - start.x;
      const dy = p.y - start.y;
      if (!moved && Math.abs(dx) + Math.abs(dy) < 4) return;
      moved = true;
      this.ctx.doc().layout[node.id] = { x: Math.max(0, Math.round(origin.x + dx)), y: Math.max(10, Math.round(origin.y + dy)) };
      this.render();
    };
    const up = (): void => {
      window.removeEventListener("pointermove", move);
      window.removeEventListener("pointerup", up);
      if (moved) this.ctx.onChange(false);
      else this.ctx.onSelectNode(node.id, ev.shiftKey);
    };
    window.addEventListener("pointermove", move);
    window.addEventListener("pointerup", up);
  }

  private startConnect(ev: PointerEvent, node: BNode, port: string, y: number): void {
    if (ev.button !== 0) return;
    ev.preventDefault();
    ev.stopPropagation();
    const p = this.pos(node.id);
    const x1 = p.x + PORT_X;
    const y1 = p.y + y;
    const line = svg("path", { class: "bld-drag-line", d: `M ${x1} ${y1} L ${x1} ${y1}` });
    this.root.append(line);
    const move = (e: PointerEvent): void => {
      const q = this.point(e);
      line.setAttribute("d", `M ${x1} ${y1} L ${q.x} ${q.y}`);
    };
    const up = (e: PointerEvent): void => {
      window.removeEventListener("pointermove", move);
      window.removeEventListener("pointerup", up);
      line.remove();
      const hit = document.elementFromPoint(e.clientX, e.clientY);
      const target = hit instanceof Element ? hit.closest("g.bn")?.getAttribute("data-node") : null;
      if (target && target !== node.id) {
        node.ports[port] = target;
        this.ctx.onSelectEdge(edgeKey(node.id, port));
        this.ctx.onChange(true);
      }
    };
    window.addEventListener("pointermove", move);
    window.addEventListener("pointerup", up);
  }
}
