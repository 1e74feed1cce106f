// Search inside the console (issue 18, docs/search.md): the box at the top of the left column
// asks GET /api/v1/search (the same domain search as the /search page, in the operator's
// scope); hits show their snippet with the matched words marked, built from text nodes (the
// API sends segments, never HTML); a hit opens its conversation in the centre at the message.
import { clear, el } from "../common";
import { channelIcon } from "./types";
import { T, time } from "./ui";

interface Segment { text: string; hit: boolean }
export interface Hit {
  kind: string;
  conversation_id: number | null;
  message_id: number | null;
  at: string | null;
  channel: string;
  status: string;
  title: string;
  snippet: Segment[];
}

const PAGE = 20;

export class ConsoleSearch {
  readonly box = el("section", { class: "panel panel-search", "data-testid": "console-search" });
  private readonly input = el("input", {
    type: "search",
    maxlength: 200,
    "data-testid": "console-search-input",
    "aria-label": this.t("op.search"),
    placeholder: this.t("op.search_hint"),
  });
  private readonly results = el("div", { class: "search-hits", "data-testid": "search-results", "aria-live": "polite" });
  private offset = 0;

  constructor(
    private readonly t: T,
    private readonly lang: string,
    private readonly openHit: (hit: Hit) => void,
  ) {
    const form = el(
      "form",
      {
        class: "row",
        role: "search",
        onsubmit: (ev: Event) => {
          ev.preventDefault();
          this.offset = 0;
          void this.run();
        },
      },
      this.input,
      el("button", { type: "submit", "data-testid": "console-search-go" }, this.t("op.search_go")),
    );
    this.box.append(form, this.results);
  }

  private async run(): Promise<void> {
    const t = this.t;
    const params = new URLSearchParams({ q: this.input.value, limit: String(PAGE), offset: String(this.offset) });
    const resp = await fetch(`/api/v1/search?${params}`, { credentials: "same-origin" });
    const data = (await resp.json().catch(() => ({}))) as { hits?: Hit[]; has_more?: boolean; detail?: string };
    clear(this.results);
    const close = el("button", { type: "button", class: "link", "data-testid": "search-clear", onclick: () => this.clear() }, "×");
    close.setAttribute("aria-label", t("op.search_clear"));
    if (!resp.ok) {
      this.results.append(el("p", { class: "form-error", "data-testid": "search-error" }, data.detail || String(resp.status)), close);
      return;
    }
    const hits = data.hits ?? [];
    const head = el("div", { class: "row" }, el("strong", { class: "grow" }, t("op.search_found", { n: hits.length + this.offset })), close);
    this.results.append(head);
    if (!hits.length) this.results.append(el("p", { class: "muted", "data-testid": "search-empty" }, t("op.search_nothing")));
    for (const hit of hits) this.results.append(this.hitNode(hit));
    if (data.has_more) {
      this.results.append(
        el(
          "button",
          {
            type: "button",
            "data-testid": "search-more",
            onclick: () => {
              this.offset += PAGE;
              void this.run();
            },
          },
          t("op.search_more"),
        ),
      );
    }
  }

  /** One hit: kind, customer, time, and the snippet: text nodes with the matched words in <mark>. */
  private hitNode(hit: Hit): HTMLElement {
    const t = this.t;
    const snippet = el("div", { class: "hit-snippet", "data-testid": "search-snippet" });
    for (const seg of hit.snippet) snippet.append(seg.hit ? el("mark", {}, seg.text) : document.createTextNode(seg.text));
    const node = el(
      "button",
      {
        type: "button",
        class: "search-hit",
        "data-testid": "search-hit",
        "data-kind": hit.kind,
        "data-conversation": hit.conversation_id ?? "",
        "data-message": hit.message_id ?? "",
        disabled: hit.conversation_id === null,
        onclick: () => this.openHit(hit),
      },
      el(
        "div",
        { class: "row" },
        el("span", { class: "icon" }, channelIcon(hit.channel, hit.channel === "voice" ? "voice" : "chat")),
        el("span", { class: "badge" }, t(`op.search_kind.${hit.kind}`)),
        el("span", { class: "grow hit-title" }, hit.title),
        hit.at ? el("small", { class: "muted" }, time(hit.at, this.lang)) : null,
      ),
      snippet,
    );
    return node;
  }

  clear(): void {
    clear(this.results);
    this.input.value = "";
    this.offset = 0;
  }
}
