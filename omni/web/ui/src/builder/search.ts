// The node search box (issue 18): Ctrl+F or "/" focuses it; typing finds the nodes whose id,
// title, texts, option labels or variables contain the words; the first hit is selected and
// centred on the canvas, Enter goes to the next one (Shift+Enter back), Esc leaves the box.
import { el } from "../common";
import { nodeText } from "./clipboard";
import type { Doc } from "./types";

export interface SearchContext {
  doc(): Doc;
  t(key: string, values?: Record<string, string | number>): string;
  /** Select the hit and bring it into view (or clear the marks: ``null``). */
  show(id: string | null): void;
}

export class NodeSearch {
  readonly input: HTMLInputElement;
  readonly root: HTMLElement;
  private readonly count: HTMLElement;
  private hits: string[] = [];
  private at = -1;

  constructor(private readonly ctx: SearchContext) {
    const t = ctx.t;
    this.input = el("input", {
      type: "search",
      class: "bld-search",
      "data-testid": "node-search",
      placeholder: t("bld.search_placeholder"),
      "aria-label": t("bld.search"),
      "aria-describedby": "bld-search-count",
    });
    this.count = el("span", { id: "bld-search-count", class: "muted", "data-testid": "node-search-count", role: "status" });
    this.root = el("span", { class: "bld-search-box" }, this.input, this.count);
    this.input.addEventListener("input", () => this.find());
  }

  focus(): void {
    this.input.focus();
    this.input.select();
  }

  get active(): boolean {
    return document.activeElement === this.input;
  }

  /** Is ``id`` a hit (``"hit"``) or the hit shown now (``"current"``)? For the canvas's marks. */
  mark(id: string): string[] {
    if (!this.hits.includes(id)) return [];
    return this.hits[this.at] === id ? ["search-hit", "search-current"] : ["search-hit"];
  }

  find(): void {
    const words = this.input.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    const nodes = this.ctx.doc().nodes;
    this.hits = words.length ? nodes.filter((n) => words.every((w) => nodeText(n).includes(w))).map((n) => n.id) : [];
    this.at = this.hits.length ? 0 : -1;
    this.say();
    this.ctx.show(this.hits[0] ?? null);
  }

  step(by: 1 | -1): void {
    if (!this.hits.length) return;
    this.at = (this.at + by + this.hits.length) % this.hits.length;
    this.say();
    this.ctx.show(this.hits[this.at]);
  }

  clear(): void {
    this.input.value = "";
    this.find();
    this.input.blur();
  }

  private say(): void {
    const t = this.ctx.t;
    if (!this.input.value.trim()) this.count.textContent = "";
    else if (!this.hits.length) this.count.textContent = t("bld.search_none");
    else this.count.textContent = t("bld.search_count", { n: this.at + 1, of: this.hits.length, node: this.hits[this.at] });
  }
}
