// The operator window's keyboard shortcuts (issue 18): one table, read by the key handler and
// shown as is by the help overlay ("?"). Single keys work outside text fields; the Alt
// combinations work from the composer too (Alt+D, Alt+E and Alt+F are the browser's own).
import { HelpOverlay, ShortcutGroup, T, helpShortcut } from "../keys";

export interface OperatorKeys {
  acceptOffer(): boolean;
  declineOffer(): boolean;
  nextConversation(step: 1 | -1): boolean;
  reply(): boolean;
  cannedPicker(): boolean;
  toggleNote(): boolean;
  hold(): boolean;
  end(): boolean;
  closeWithCode(): boolean;
  transfer(): boolean;
  leaveField(): boolean;
  /** Says the action can't be done now (no offer, no open conversation…); the key is used. */
  unavailable(label: string): boolean;
}

export function operatorKeymap(t: T, k: OperatorKeys, overlay: HelpOverlay): ShortcutGroup[] {
  const or = (done: boolean, label: string): boolean => done || k.unavailable(t(label));
  return [
    {
      title: t("op.kb.offers"),
      shortcuts: [
        helpShortcut(t, overlay),
        { keys: ["a", "alt+a"], label: t("op.kb.accept"), run: () => or(k.acceptOffer(), "op.kb.accept") },
        { keys: ["d"], label: t("op.kb.decline"), run: () => or(k.declineOffer(), "op.kb.decline") },
        { keys: ["j", "alt+arrowdown"], label: t("op.kb.next"), run: () => or(k.nextConversation(1), "op.kb.next") },
        { keys: ["k", "alt+arrowup"], label: t("op.kb.previous"), run: () => or(k.nextConversation(-1), "op.kb.previous") },
      ],
    },
    {
      title: t("op.kb.conversation"),
      shortcuts: [
        { keys: ["r"], label: t("op.kb.reply"), run: () => or(k.reply(), "op.kb.reply") },
        { keys: ["/", "alt+r"], label: t("op.kb.canned"), run: () => or(k.cannedPicker(), "op.kb.canned") },
        { keys: ["n", "alt+n"], label: t("op.kb.note"), run: () => or(k.toggleNote(), "op.kb.note") },
        { keys: ["h", "alt+h"], label: t("op.kb.hold"), run: () => or(k.hold(), "op.kb.hold") },
        { keys: ["e"], label: t("op.kb.end"), run: () => or(k.end(), "op.kb.end") },
        { keys: ["c", "alt+c"], label: t("op.kb.close"), run: () => or(k.closeWithCode(), "op.kb.close") },
        { keys: ["t", "alt+t"], label: t("op.kb.transfer"), run: () => or(k.transfer(), "op.kb.transfer") },
        { keys: ["escape"], label: t("op.kb.escape"), run: () => k.leaveField() },
      ],
    },
  ];
}
