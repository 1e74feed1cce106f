// The supervisor page's keyboard shortcuts (issue 18): one table, read by the key handler and
// shown as is by the help overlay ("?").
import { HelpOverlay, ShortcutGroup, T, helpShortcut } from "../keys";

export interface SupervisorKeys {
  focusFilter(): boolean;
  clearFilter(): boolean;
}

export function supervisorKeymap(t: T, k: SupervisorKeys, overlay: HelpOverlay): ShortcutGroup[] {
  return [
    {
      title: t("sv.kb.title"),
      shortcuts: [
        helpShortcut(t, overlay),
        { keys: ["/", "alt+o"], label: t("sv.kb.filter"), run: () => k.focusFilter() },
        { keys: ["escape"], label: t("sv.kb.clear"), run: () => k.clearFilter() },
      ],
    },
  ];
}
