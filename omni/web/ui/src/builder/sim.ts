// The test run: a chat simulator over the test-run endpoint. It keeps the list of inputs and
// re-runs the whole case on every input, so what it shows is what the engine would do.
import { clear, el } from "../common";
import { api } from "./api";
import type { T } from "./fields";
import type { BuilderBoot, Doc, Problem, Transcript } from "./types";

export type Input = { text?: string; button?: string; dtmf?: string; no_input?: boolean; timeout?: boolean; record?: string };

export interface SimContext {
  t: T;
  boot: BuilderBoot;
  scenarioId: number;
  doc(): Doc;
  /** The run's path (nodes and arrows) for the canvas; null clears it. */
  onRun(run: Transcript | null): void;
  onProblems(problems: Problem[]): void;
}

export class Simulator {
  readonly root = el("div", { class: "bld-sim", "data-testid": "simulator" });
  private inputs: Input[] = [];
  private marks: number[] = [];
  private run: Transcript | null = null;
  /** The latest test-run request: a slower, older answer (the channel's change event and a
   * click on Start both rerun) must not overwrite the transcript of a newer input. */
  private latest = 0;
  private error = "";
  private readonly channel = el("select", { "data-testid": "sim-channel" });
  private readonly lang = el("select", { "data-testid": "sim-lang" });
  private readonly handoff = el("select", { "data-testid": "sim-handoff" });
  private readonly open = el("input", { type: "checkbox", checked: true });
  private readonly agents = el("input", { type: "number", min: 0, max: 1000, value: 1 });
  private readonly http = el("textarea", { rows: 2, "data-testid": "sim-http", placeholder: '[{"url": "crm", "status": 200, "body": {}}]' });
  private readonly preset = el("textarea", { rows: 2, "data-testid": "sim-variables", placeholder: '{"tier": "gold"}' });
  private readonly chat = el("div", { class: "bld-chat", "data-testid": "sim-chat" });
  private readonly controls = el("div", { class: "bld-sim-controls" });
  private readonly vars = el("div", { class: "bld-sim-vars", "data-testid": "sim-variables-out" });

  constructor(private readonly ctx: SimContext) {
    const t = ctx.t;
    for (const c of ctx.boot.channels) this.channel.append(el("option", { value: c }, c));
    for (const l of ["en", "ru"]) this.lang.append(el("option", { value: l }, l));
    for (const h of ["queued", "no_agents", "closed"]) this.handoff.append(el("option", { value: h }, t(`bld.sim.handoff.${h}`)));
    for (const input of [this.channel, this.lang, this.handoff, this.open, this.agents]) {
      input.addEventListener("change", () => void this.restart());
    }
    this.root.append(
      el(
        "details",
        { class: "bld-sim-settings" },
        el("summary", {}, t("bld.sim.settings")),
        el("label", { class: "bld-field" }, el("span", {}, t("bld.sim.channel")), this.channel),
        el("label", { class: "bld-field" }, el("span", {}, t("bld.sim.lang")), this.lang),
        el("label", { class: "bld-field" }, el("span", {}, t("bld.sim.handoff")), this.handoff),
        el("label", { class: "bld-check" }, this.open, t("bld.sim.open")),
        el("label", { class: "bld-field" }, el("span", {}, t("bld.sim.agents")), this.agents),
        el("label", { class: "bld-field" }, el("span", {}, t("bld.sim.http")), this.http),
        el("label", { class: "bld-field" }, el("span", {}, t("bld.sim.preset")), this.preset),
      ),
      el(
        "div",
        { class: "bld-sim-bar" },
        el("button", { type: "button", class: "primary", "data-testid": "sim-start", onclick: () => void this.restart() }, t("bld.sim.start")),
        el("button", { type: "button", "data-testid": "sim-undo", onclick: () => void this.undo() }, t("bld.sim.undo")),
      ),
      this.chat,
      this.controls,
      this.vars,
    );
    this.renderControls();
  }

  async restart(): Promise<void> {
    this.inputs = [];
    this.marks = [];
    await this.rerun();
  }

  private async undo(): Promise<void> {
    this.inputs.pop();
    this.marks = this.marks.slice(0, this.inputs.length);
    await this.rerun();
  }

  async add(input: Input): Promise<void> {
    this.inputs.push(input);
    await this.rerun();
  }

  private parseJson(box: HTMLTextAreaElement, fallback: unknown): unknown {
    const text = box.value.trim();
    if (!text) return fallback;
    try {
      const parsed: unknown = JSON.parse(text);
      box.classList.remove("invalid");
      return parsed;
    } catch {
      box.classList.add("invalid");
      throw new Error(this.ctx.t("bld.err.json"));
    }
  }

  async rerun(): Promise<void> {
    const t = this.ctx.t;
    let http: unknown;
    let variables: unknown;
    try {
      http = this.parseJson(this.http, []);
      variables = this.parseJson(this.preset, {});
    } catch (err) {
      this.error = String((err as Error).message);
      this.render();
      return;
    }
    const body = {
      document: this.ctx.doc(),
      case: {
        channel: this.channel.value,
        lang: this.lang.value,
        handoff: this.handoff.value,
        facts: { business_hours_open: this.open.checked, agents_online: Number(this.agents.value || 0) },
        http,
        variables,
        inputs: this.inputs,
      },
    };
    const asked = ++this.latest;
    const reply = await api<Transcript & { problems?: Problem[] }>("POST", `/api/v1/scenarios/${this.ctx.scenarioId}/test-run`, body);
    if (asked !== this.latest) return;
    if (!reply.ok) {
      this.run = null;
      this.error = t("bld.sim.failed", { detail: reply.detail });
      if (reply.data.problems) this.ctx.onProblems(reply.data.problems);
      this.ctx.onRun(null);
    } else {
      this.error = "";
      this.run = reply.data;
      this.marks[this.inputs.length] = this.run.says.length;
      for (let i = 0; i < this.inputs.length; i++) this.marks[i] = Math.min(this.marks[i] ?? 0, this.run.says.length);
      this.ctx.onRun(this.run);
    }
    this.render();
  }

  private render(): void {
    const t = this.ctx.t;
    clear(this.chat);
    if (this.error) this.chat.append(el("p", { class: "form-error", "data-testid": "sim-error" }, this.error));
    const run = this.run;
    if (run) {
      let from = 0;
      for (let k = 0; k <= this.inputs.length; k++) {
        const upto = k === this.inputs.length ? run.says.length : Math.max(from, this.marks[k] ?? from);
        for (const say of run.says.slice(from, upto)) {
          const buttons = say.buttons.map((b) =>
            el("button", { type: "button", "data-testid": "sim-button", "data-id": b.id, onclick: () => void this.add({ button: b.id, text: b.label }) }, b.label),
          );
          this.chat.append(
            el("div", { class: "bld-msg bot", "data-testid": "sim-bot", "data-node": say.node }, el("div", {}, say.text || "…"), buttons.length ? el("div", { class: "bld-buttons" }, ...buttons) : null),
          );
        }
        from = upto;
        const input = this.inputs[k];
        if (input) this.chat.append(el("div", { class: "bld-msg customer", "data-testid": "sim-customer" }, this.describe(input)));
      }
      this.chat.append(el("p", { class: `bld-ending status-${run.status}`, "data-testid": "sim-ending" }, this.ending(run)));
      this.chat.scrollTop = this.chat.scrollHeight;
    }
    clear(this.vars);
    if (run) {
      const entries = Object.entries(run.variables);
      this.vars.append(
        el("h4", {}, t("bld.sim.variables")),
        entries.length
          ? el("table", { class: "grid" }, ...entries.map(([k, v]) => el("tr", { "data-testid": "sim-var", "data-name": k }, el("td", {}, k), el("td", {}, typeof v === "string" ? v : JSON.stringify(v)))))
          : el("p", { class: "muted" }, t("bld.sim.no_variables")),
        el("p", { class: "muted", "data-testid": "sim-path" }, t("bld.sim.path", { path: run.path.join(" → ") })),
      );
    }
    this.renderControls();
  }

  private describe(input: Input): string {
    const t = this.ctx.t;
    if (input.button) return `▸ ${input.text ?? input.button}`;
    if (input.dtmf) return t("bld.sim.pressed", { digit: input.dtmf });
    if (input.no_input) return t("bld.sim.no_input");
    if (input.timeout) return t("bld.sim.timeout");
    if (input.record !== undefined) return input.record ? t("bld.sim.recorded") : t("bld.sim.silent");
    return input.text ?? "";
  }

  private ending(run: Transcript): string {
    const t = this.ctx.t;
    if (run.error) return t("bld.sim.error", { detail: run.error });
    if (run.goto) return t("bld.sim.goto", { key: run.goto });
    if (run.closed !== null) return t("bld.sim.closed", { code: run.closed || "—" });
    if (run.handoff) {
      const queue = run.handoff.queue_id ? `#${String(run.handoff.queue_id)}` : t("bld.inbox_queue");
      return run.status === "running"
        ? t("bld.sim.handoff_back", { queue, outcome: t(`bld.sim.handoff.${this.handoff.value}`) })
        : t("bld.sim.handed_off", { queue });
    }
    if (run.status === "running") return t("bld.sim.waiting", { node: run.node ?? "" });
    return t("bld.sim.ended", { status: run.status });
  }

  /** What the controls were last built for: a rerun that leaves it alone leaves them in place.
   * Rebuilding them on every answer could replace a button between the press and the release
   * of a click, which then reached neither (a keypad digit lost while a slower answer to Start
   * came in). */
  private controlsFor = "";

  private renderControls(): void {
    const t = this.ctx.t;
    const shape = this.run?.status === "running" ? `${this.channel.value}|${this.run.waiting ?? ""}` : "";
    if (shape === this.controlsFor && this.controls.childElementCount) return;
    this.controlsFor = shape;
    clear(this.controls);
    if (!this.run || this.run.status !== "running") return;
    const text = el("input", { type: "text", placeholder: t("bld.sim.type"), "data-testid": "sim-text" });
    this.controls.append(
      el("form", { class: "bld-inline", onsubmit: (ev: Event) => {
        ev.preventDefault();
        void this.add({ text: text.value });
        text.value = ""; // the form stays (renderControls) while the answer comes
      } }, text, el("button", { type: "submit", "data-testid": "sim-send" }, t("bld.sim.send"))),
    );
    if (this.channel.value === "voice" && this.run.waiting === "record") {
      // A record node waits for the customer's voice: a test run plays "a reply" or silence.
      this.controls.append(
        el(
          "div",
          { class: "bld-inline" },
          el("button", { type: "button", "data-testid": "sim-record", onclick: () => void this.add({ record: "test-reply.wav" }) }, t("bld.sim.record")),
          el("button", { type: "button", "data-testid": "sim-silent", onclick: () => void this.add({ record: "" }) }, t("bld.sim.silent")),
        ),
      );
    }
    if (this.channel.value === "voice") {
      const keypad = el("div", { class: "bld-keypad", "data-testid": "sim-keypad" });
      for (const d of "123456789*0#") keypad.append(el("button", { type: "button", "data-testid": `dtmf-${d}`, onclick: () => void this.add({ dtmf: d }) }, d));
      this.controls.append(keypad);
    }
    this.controls.append(
      el(
        "div",
        { class: "bld-inline" },
        el("button", { type: "button", "data-testid": "sim-no-input", onclick: () => void this.add({ no_input: true }) }, t("bld.sim.no_input")),
        el("button", { type: "button", "data-testid": "sim-timeout", onclick: () => void this.add({ timeout: true }) }, t("bld.sim.timeout")),
      ),
    );
  }
}
