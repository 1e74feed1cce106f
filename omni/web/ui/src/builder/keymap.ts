// The scenario builder's keyboard shortcuts (issue 18): one table, read by the key handler and
// shown as is by the help overlay ("?").
import { HelpOverlay, ShortcutGroup, T, helpShortcut } from "../keys";

export interface BuilderKeys {
  copy(): boolean;
  paste(): boolean;
  selectAll(): boolean;
  remove(): boolean;
  search(): boolean;
  /** Enter / Shift+Enter in the search box: the next / previous hit. */
  searchStep(ev: KeyboardEvent, by: 1 | -1): boolean;
  escape(): boolean;
}

export function builderKeymap(t: T, k: BuilderKeys, overlay: HelpOverlay): ShortcutGroup[] {
  return [
    {
      title: t("bld.kb.title"),
      shortcuts: [
        helpShortcut(t, overlay),
        { keys: ["mod+c"], label: t("bld.kb.copy"), typing: false, run: () => k.copy() },
        { keys: ["mod+v"], label: t("bld.kb.paste"), typing: false, run: () => k.paste() },
        { keys: ["mod+a"], label: t("bld.kb.select_all"), typing: false, run: () => k.selectAll() },
        { keys: ["delete", "backspace"], label: t("bld.kb.delete"), run: () => k.remove() },
        { keys: ["mod+f", "/"], label: t("bld.kb.search"), run: () => k.search() },
        { keys: ["enter"], label: t("bld.kb.next_hit"), typing: true, run: (ev) => k.searchStep(ev, 1) },
        { keys: ["shift+enter"], label: t("bld.kb.previous_hit"), typing: true, run: (ev) => k.searchStep(ev, -1) },
        { keys: ["escape"], label: t("bld.kb.escape"), run: () => k.escape() },
      ],
    },
  ];
}
