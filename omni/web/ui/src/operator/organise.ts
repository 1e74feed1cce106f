// Labels and snooze on the open conversation (issue 18, docs/organise.md): the label chips
// with add/remove, "snooze until the customer writes" or until a time, and "take back".
import { Ack, call, el } from "../common";
import type { PaneContext } from "./messages";
import { Conversation } from "./types";
import { failed } from "./ui";

export interface LabelInfo {
  id: number;
  name: string;
  color: string;
  queue_id: number | null;
}

/** The labels the operator may see, fetched once per page (a label added later shows by id). */
let catalogue: Promise<LabelInfo[]> | null = null;
let known: LabelInfo[] = [];
/** The catalogue has answered once: a panel built after that has its labels at once. */
let loaded = false;

export function labelCatalogue(ctx: Pick<PaneContext, "socket">): Promise<LabelInfo[]> {
  if (!catalogue) {
    catalogue = call(ctx.socket, "labels", {}).then((ack: Ack) => {
      if (!ack.ok) catalogue = null; // e.g. no answer yet: the next caller asks again
      known = ack.ok ? (ack.labels as LabelInfo[]) : known;
      loaded ||= ack.ok;
      return known;
    });
  }
  return catalogue;
}

/** What the catalogue held when it last answered (the left list renders synchronously). */
export function knownLabels(): LabelInfo[] {
  return known;
}

/** Coloured chips for ``label_ids`` (the list, the card, monitoring). */
export function labelChips(all: LabelInfo[], ids: number[] | undefined, onRemove?: (id: number) => void): HTMLElement {
  const box = el("span", { class: "label-chips", "data-testid": "label-chips" });
  for (const id of ids || []) {
    const label = all.find((x) => x.id === id);
    const chip = el(
      "span",
      { class: "label-chip", "data-testid": "label-chip", style: `border-color:${label?.color || "#64748b"}` },
      label?.name || `#${id}`,
    );
    if (onRemove) {
      chip.append(
        el("button", { class: "link", "data-testid": "label-remove", "aria-label": `× ${label?.name || id}`, onclick: () => onRemove(id) }, "×"),
      );
    }
    box.append(chip);
  }
  return box;
}

/** The panel under the actions: labels (add/remove) and snooze / take back. */
export function organisePanel(ctx: PaneContext, c: Conversation, apply: (c: Conversation) => void): HTMLElement {
  const t = ctx.t;
  const panel = el("div", { class: "stack organise", "data-testid": "organise" });
  const done = (ack: Ack): void => {
    if (!ack.ok) {
      failed(t, ack);
      return;
    }
    apply(ack.conversation as Conversation);
    ctx.changed();
  };
  const mine = c.assigned_user_id === ctx.me;
  if (c.status === "snoozed") {
    if (mine) {
      panel.append(
        el(
          "button",
          { "data-testid": "unsnooze", onclick: async () => done(await call(ctx.socket, "unsnooze", { conversation_id: c.id })) },
          t("op.org_unsnooze"),
        ),
      );
    }
    return panel;
  }
  const showLabels = (all: LabelInfo[]): void => {
    const fits = all.filter((x) => x.queue_id === null || x.queue_id === c.queue_id);
    const setLabels = async (add: number[], remove: number[]): Promise<void> =>
      done(await call(ctx.socket, "set_labels", { conversation_id: c.id, add, remove }));
    const picker = el("select", { "data-testid": "label-pick", "aria-label": t("op.org_labels") });
    picker.append(el("option", { value: "" }, t("op.org_add_label")));
    for (const x of fits) {
      if (!(c.label_ids || []).includes(x.id)) picker.append(el("option", { value: x.id }, x.name));
    }
    picker.addEventListener("change", () => {
      if (picker.value) void setLabels([Number(picker.value)], []);
    });
    panel.prepend(
      el("div", { class: "row" }, el("strong", {}, `${t("op.org_labels")}: `), labelChips(all, c.label_ids, (id) => void setLabels([], [id])), picker),
    );
  };
  // Built with the panel once the labels are known: the actions keep the focus in a panel they
  // rebuild (actions.ts), which needs its fields there when it is built.
  if (loaded) showLabels(known);
  else void labelCatalogue(ctx).then(showLabels);
  if (mine && (c.status === "active" || c.status === "on_hold") && c.medium !== "voice") {
    const at = el("input", { type: "datetime-local", "data-testid": "snooze-until", "aria-label": t("op.org_snooze_until") });
    const snooze = async (untilCustomer: boolean): Promise<void> => {
      const until = !untilCustomer && at.value ? new Date(at.value).toISOString() : null;
      const ack = await call(ctx.socket, "snooze", { conversation_id: c.id, until, until_customer: untilCustomer });
      if (ack.ok) {
        at.value = "";
        at.dispatchEvent(new Event("input")); // the actions keep a typed time until it is used (actions.ts)
      }
      done(ack);
    };
    panel.append(
      el(
        "div",
        { class: "row" },
        el("button", { "data-testid": "snooze-customer", onclick: () => void snooze(true) }, t("op.org_snooze_customer")),
        at,
        el("button", { "data-testid": "snooze-time", onclick: () => void snooze(false) }, t("op.org_snooze")),
      ),
    );
  }
  return panel;
}
