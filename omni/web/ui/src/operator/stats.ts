// "My statistics": the operator's own handled count, AHT and CSAT for today and this week
// (GET /api/v1/me/stats, the install's day). Re-read when one of their conversations closes
// or is rated, and after a reconnect.
import { clear, duration, el } from "../common";
import { T } from "./ui";

interface Figures {
  handled: number;
  aht: number | null;
  csat: number | null;
  csat_mean: number | null;
  ratings: number;
}

interface MyStats {
  timezone: string;
  today: Figures;
  week: Figures;
}

function line(label: string, f: Figures, t: T, testid: string): HTMLElement {
  const aht = f.aht === null ? "—" : duration(Math.round(f.aht));
  const csat = f.csat === null ? "—" : `${f.csat}%`;
  return el(
    "div",
    { class: "my-stats-line", "data-testid": testid },
    el("h4", {}, label),
    el("div", {}, `${t("op.stats_handled")}: `, el("b", { "data-testid": `${testid}-handled` }, String(f.handled))),
    el("div", {}, `${t("op.stats_aht")}: `, el("b", { "data-testid": `${testid}-aht` }, aht)),
    el("div", {}, `${t("op.stats_csat")}: `, el("b", { "data-testid": `${testid}-csat` }, csat)),
  );
}

export class StatsPanel {
  readonly box: HTMLElement = el("section", { class: "panel panel-my-stats", "data-testid": "my-stats" });
  private loading = false;
  private again = false;

  constructor(private readonly t: T) {}

  async refresh(): Promise<void> {
    // One request at a time; a close arriving meanwhile asks for one more read afterwards.
    if (this.loading) {
      this.again = true;
      return;
    }
    this.loading = true;
    try {
      const resp = await fetch("/api/v1/me/stats", { credentials: "same-origin" });
      if (resp.ok) this.render((await resp.json()) as MyStats);
    } catch {
      // Offline for a moment: the next close or reconnect reads again.
    } finally {
      this.loading = false;
      if (this.again) {
        this.again = false;
        void this.refresh();
      }
    }
  }

  private render(s: MyStats): void {
    clear(this.box);
    this.box.append(
      el("h3", {}, this.t("op.stats_title")),
      line(this.t("op.stats_today"), s.today, this.t, "my-stats-today"),
      line(this.t("op.stats_week"), s.week, this.t, "my-stats-week"),
    );
  }
}
