// Copy and paste of nodes (issue 18): Ctrl+C puts the selected nodes, their places and the
// variables they mention in localStorage (so another builder tab of the same site pastes them)
// and, when the browser allows, on the system clipboard as JSON. Ctrl+V adds them with new ids;
// the arrows among the copied nodes follow, arrows to nodes left behind are dropped.
import { freeId, NODE_ID } from "./nodes";
import type { BNode, Doc, Variable } from "./types";

const STORE = "omni.builder.clipboard";
const STEP = 40;

export interface Clip {
  kind: "omni-nodes";
  nodes: BNode[];
  layout: Record<string, { x: number; y: number }>;
  variables: Variable[];
}

/** Every string a node holds (titles, texts, labels, variable names, URLs), lower-cased. */
export function nodeText(node: BNode): string {
  const out: string[] = [];
  const walk = (value: unknown, key: string): void => {
    if (key === "ports" || key === "type") return;
    if (typeof value === "string") out.push(value);
    else if (Array.isArray(value)) value.forEach((v) => walk(v, ""));
    else if (value && typeof value === "object") for (const [k, v] of Object.entries(value)) walk(v, k);
  };
  walk(node, "");
  return out.join("\n").toLowerCase();
}

/** Copy ``ids``; returns how many nodes went to the clipboard. */
export function copyNodes(doc: Doc, ids: Iterable<string>): number {
  const wanted = new Set(ids);
  const nodes = doc.nodes.filter((n) => wanted.has(n.id));
  if (!nodes.length) return 0;
  const text = nodes.map(nodeText).join("\n");
  const clip: Clip = {
    kind: "omni-nodes",
    nodes: JSON.parse(JSON.stringify(nodes)) as BNode[],
    layout: Object.fromEntries(nodes.map((n) => [n.id, doc.layout[n.id] ?? { x: 40, y: 40 }])),
    variables: doc.variables.filter((v) => new RegExp(`\\b${v.name}\\b`).test(text)),
  };
  const json = JSON.stringify(clip);
  localStorage.setItem(STORE, json);
  // Best effort: the system clipboard needs a permission some browsers don't give.
  navigator.clipboard?.writeText(json).catch(() => undefined);
  return nodes.length;
}

export function readClip(): Clip | null {
  try {
    const clip = JSON.parse(localStorage.getItem(STORE) || "null") as Clip | null;
    return clip && clip.kind === "omni-nodes" && Array.isArray(clip.nodes) && clip.nodes.length ? clip : null;
  } catch {
    return null;
  }
}

/** Add the clip's nodes to ``doc``; returns their new ids. Pasted into the scenario they came
 * from, they land one step right and down of the originals (another step for each paste);
 * elsewhere at ``origin`` (the visible corner of the canvas). */
export function pasteNodes(doc: Doc, clip: Clip, origin: { x: number; y: number }): string[] {
  const ids = new Map<string, string>();
  const added: BNode[] = [];
  for (const source of clip.nodes) {
    const node = JSON.parse(JSON.stringify(source)) as BNode;
    const stem = source.id.replace(/[0-9]+$/, "");
    const id = freeId(doc, NODE_ID.test(`${stem}1`) ? stem : "node");
    ids.set(source.id, id);
    node.id = id;
    doc.nodes.push(node);
    added.push(node);
  }
  for (const node of added) {
    const ports: Record<string, string | null> = {};
    for (const [port, target] of Object.entries(node.ports ?? {})) {
      const mapped = target ? ids.get(target) : undefined;
      if (mapped) ports[port] = mapped;
    }
    node.ports = ports;
  }
  const places = clip.nodes.map((n) => clip.layout[n.id] ?? { x: 40, y: 40 });
  const minX = Math.min(...places.map((p) => p.x));
  const minY = Math.min(...places.map((p) => p.y));
  const here = clip.nodes.every((n) => doc.layout[n.id] && doc.layout[n.id].x === clip.layout[n.id]?.x && doc.layout[n.id].y === clip.layout[n.id]?.y);
  let dx = here ? STEP : origin.x - minX;
  let dy = here ? STEP : origin.y - minY;
  const taken = new Set(Object.values(doc.layout).map((p) => `${p.x},${p.y}`));
  while (places.some((p) => taken.has(`${p.x + dx},${p.y + dy}`))) {
    dx += STEP;
    dy += STEP;
  }
  clip.nodes.forEach((n, i) => {
    doc.layout[ids.get(n.id) as string] = { x: Math.max(0, places[i].x + dx), y: Math.max(10, places[i].y + dy) };
  });
  for (const v of clip.variables) if (!doc.variables.some((d) => d.name === v.name)) doc.variables.push({ ...v });
  if (!doc.nodes.some((n) => n.id === doc.start)) doc.start = added[0].id;
  return added.map((n) => n.id);
}
