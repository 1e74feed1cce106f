// The prompt manager (/supervisor/prompts) and the staff file area (/files): a folder tree, the
// current folder's items and an upload with progress. Everything goes over REST
// (omni/api/media.py), which checks roles again; names are shown only through textContent.
import { api } from "./builder/api";
import { boot as readBoot, clear, el, translator } from "./common";

interface MediaBoot {
  view: "prompts" | "files";
  manage: boolean;
  roles: string[];
  strings: Record<string, string>;
}

interface Prompt {
  id: number;
  folder: string;
  name: string;
  duration_ms: number;
  has_original: boolean;
  audio_url: string;
  original_url: string;
}

interface StaffFile {
  id: number;
  folder: string;
  name: string;
  roles: string[];
  size: number;
  download_url: string;
}

const data = readBoot() as unknown as MediaBoot;
const t = translator(data.strings);
const base = data.view === "prompts" ? "/api/v1/prompts" : "/api/v1/staff-files";
const root = document.getElementById("app") as HTMLElement;

let folder = "";
let folders: string[] = [];
/** Bumped per ``refresh``: the page's first load and a click that follows it at once (a new
 * folder) both read the lists; an answer that comes back after a newer refresh started is
 * dropped, or the old folder's items were shown under the new folder's name, twice over. */
let generation = 0;

const tree = el("ul", { class: "media-tree", "data-testid": "folders" });
const items = el("div", { class: "media-items", "data-testid": "items" });
const status = el("p", { class: "media-status", role: "status", "data-testid": "status" });
const crumbs = el("h2", { "data-testid": "current-folder" });

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} ${t("media.seconds")}`;
}

function size(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1024))} KB`;
}

function say(text: string, bad = false): void {
  status.textContent = text;
  status.classList.toggle("bad", bad);
}

async function loadFolders(mine: number): Promise<void> {
  const reply = await api<{ folders: string[] }>("GET", `${base}/folders`);
  if (mine !== generation) return;
  folders = reply.ok ? reply.data.folders : [];
  clear(tree);
  const entry = (path: string, label: string, depth: number): HTMLElement => {
    const button = el("button", { type: "button", class: path === folder ? "current" : "", "data-folder": path, "data-testid": "folder" }, label);
    button.addEventListener("click", () => {
      folder = path;
      void refresh();
    });
    return el("li", { style: `padding-left:${depth * 14}px` }, button);
  };
  tree.append(entry("", t("media.root"), 0));
  for (const path of folders) {
    const parts = path.split("/");
    tree.append(entry(path, parts[parts.length - 1], parts.length));
  }
}

function action(label: string, testid: string, run: () => void): HTMLElement {
  return el("button", { type: "button", class: "small", "data-testid": testid, onclick: run }, label);
}

/** Send a change; on success ``moveTo`` (when given) picks the folder to show, then the view
 * reloads once. Moving first matters: reloading the old folder and then the new one doubled the
 * requests, and a slow server showed the old folder for that long. */
async function change(method: string, path: string, body?: unknown, moveTo?: () => string): Promise<boolean> {
  const reply = await api(method, path, body);
  if (!reply.ok) say(reply.detail || t("media.failed"), true);
  else say(t("media.saved"));
  if (reply.ok) {
    if (moveTo) folder = moveTo();
    await refresh();
  }
  return reply.ok;
}

function renameAndMove(url: string, name: string, current: string): HTMLElement[] {
  return [
    action(t("media.rename"), "rename", () => {
      const value = window.prompt(t("media.new_name"), name);
      if (value !== null && value.trim() && value !== name) void change("PATCH", url, { name: value });
    }),
    action(t("media.move"), "move", () => {
      const value = window.prompt(t("media.move_to"), current);
      if (value !== null && value !== current) void change("PATCH", url, { folder: value });
    }),
  ];
}

async function loadItems(mine: number): Promise<void> {
  const reply = await api<(Prompt | StaffFile)[]>("GET", `${base}/?folder=${encodeURIComponent(folder)}`);
  if (mine !== generation) return;
  clear(items);
  if (!reply.ok) {
    say(reply.detail, true);
    return;
  }
  const table = el("table", { class: "media-table" });
  if (data.view === "prompts") {
    table.append(el("tr", {}, el("th", {}, t("media.name")), el("th", {}, t("media.duration")), el("th", {}, t("media.listen")), el("th", {})));
    for (const p of reply.data as Prompt[]) {
      const audio = el("audio", { controls: true, preload: "none", src: p.audio_url, "data-testid": "prompt-audio" });
      const cells = [
        p.has_original ? el("a", { href: p.original_url, download: "", "data-testid": "original" }, t("media.original")) : null,
        ...(data.manage ? [...renameAndMove(`${base}/${p.id}`, p.name, p.folder), action(t("media.delete"), "delete", () => {
          if (window.confirm(t("media.confirm_delete", { name: p.name }))) void change("DELETE", `${base}/${p.id}`);
        })] : []),
      ];
      table.append(el("tr", { "data-testid": "prompt", "data-id": p.id }, el("td", { class: "name" }, p.name), el("td", {}, seconds(p.duration_ms)), el("td", {}, audio), el("td", { class: "acts" }, ...cells)));
    }
  } else {
    table.append(el("tr", {}, el("th", {}, t("media.name")), el("th", {}, t("media.size")), el("th", {}, t("media.roles")), el("th", {})));
    for (const f of reply.data as StaffFile[]) {
      const who = f.roles.length ? f.roles.map((r) => t(`enum.role.${r}`)).join(", ") : t("media.everyone");
      const cells = [
        el("a", { href: f.download_url, download: "", "data-testid": "download" }, t("media.download")),
        ...(data.manage ? [...renameAndMove(`${base}/${f.id}`, f.name, f.folder), action(t("media.delete"), "delete", () => {
          if (window.confirm(t("media.confirm_delete", { name: f.name }))) void change("DELETE", `${base}/${f.id}`);
        })] : []),
      ];
      table.append(el("tr", { "data-testid": "file", "data-id": f.id }, el("td", { class: "name" }, f.name), el("td", {}, size(f.size)), el("td", {}, who), el("td", { class: "acts" }, ...cells)));
    }
  }
  if (table.rows.length === 1) items.append(el("p", { class: "muted", "data-testid": "empty" }, t("media.empty")));
  else items.append(table);
}

async function refresh(): Promise<void> {
  const mine = ++generation;
  crumbs.textContent = folder ? `/${folder}` : t("media.root");
  await Promise.all([loadFolders(mine), loadItems(mine)]);
}

function folderTools(): HTMLElement {
  return el(
    "div",
    { class: "media-bar" },
    action(t("media.new_folder"), "new-folder", () => {
      const name = window.prompt(t("media.folder_name"));
      if (name && name.trim()) {
        const path = folder ? `${folder}/${name.trim()}` : name.trim();
        void change("POST", `${base}/folders`, { path }, () => path);
      }
    }),
    action(t("media.rename_folder"), "rename-folder", () => {
      if (!folder) return;
      const value = window.prompt(t("media.move_to"), folder);
      if (value !== null && value.trim() && value !== folder) {
        void change("PATCH", `${base}/folders`, { path: folder, new: value }, () =>
          value.trim().replace(/^\/+|\/+$/g, ""),
        );
      }
    }),
    action(t("media.delete_folder"), "delete-folder", () => {
      if (folder)
        void change("DELETE", `${base}/folders?path=${encodeURIComponent(folder)}`, undefined, () =>
          folder.includes("/") ? folder.slice(0, folder.lastIndexOf("/")) : "",
        );
    }),
  );
}

function uploadForm(): HTMLElement {
  const file = el("input", { type: "file", "data-testid": "upload-file", accept: data.view === "prompts" ? ".wav,.mp3,audio/wav,audio/mpeg" : "" });
  const name = el("input", { type: "text", "data-testid": "upload-name", placeholder: t("media.name_optional") });
  const progress = el("progress", { max: 100, value: 0, hidden: true, "data-testid": "upload-progress" });
  const error = el("p", { class: "field-error", role: "alert", "data-testid": "upload-error" });
  const roleBoxes = data.roles.map((r) => {
    const box = el("input", { type: "checkbox", value: r, "data-testid": `role-${r}` });
    return { r, box, label: el("label", { class: "media-role" }, box, t(`enum.role.${r}`)) };
  });
  const send = el("button", { type: "button", "data-testid": "upload" }, t("media.upload"));
  send.addEventListener("click", () => {
    error.textContent = "";
    const chosen = file.files?.[0];
    if (!chosen) {
      error.textContent = t("media.choose_file");
      return;
    }
    const form = new FormData();
    form.append("file", chosen);
    form.append("folder", folder);
    form.append("name", name.value);
    if (data.view === "files") form.append("roles", roleBoxes.filter((x) => x.box.checked).map((x) => x.r).join(","));
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `${base}/`);
    xhr.setRequestHeader("X-Omni-CSRF", "1");
    xhr.upload.addEventListener("progress", (ev) => {
      if (ev.lengthComputable) progress.value = Math.round((ev.loaded / ev.total) * 100);
    });
    xhr.addEventListener("load", () => {
      progress.hidden = true;
      send.disabled = false;
      if (xhr.status >= 200 && xhr.status < 300) {
        file.value = "";
        name.value = "";
        say(t("media.uploaded", { name: chosen.name }));
        void refresh();
        return;
      }
      let detail = xhr.statusText;
      try {
        detail = String((JSON.parse(xhr.responseText) as { detail?: string }).detail ?? detail);
      } catch {
        // not JSON (a proxy's page): the status text
      }
      error.textContent = xhr.status === 413 ? t("media.too_big") : detail || t("media.failed");
    });
    xhr.addEventListener("error", () => {
      progress.hidden = true;
      send.disabled = false;
      error.textContent = t("media.failed");
    });
    progress.value = 0;
    progress.hidden = false;
    send.disabled = true;
    xhr.send(form);
  });
  return el(
    "section",
    { class: "card media-upload" },
    el("h3", {}, t("media.upload_here")),
    el("div", { class: "media-bar" }, file, name, ...(data.view === "files" ? [el("span", { class: "muted" }, t("media.who_reads")), ...roleBoxes.map((x) => x.label)] : []), send),
    progress,
    error,
    data.view === "prompts" ? el("p", { class: "muted" }, t("media.prompt_formats")) : null,
  );
}

root.append(
  el("h1", {}, t(data.view === "prompts" ? "media.prompts_title" : "media.files_title")),
  el(
    "div",
    { class: "media-layout" },
    el("aside", { class: "card" }, el("h3", {}, t("media.folders")), tree, data.manage ? folderTools() : null),
    el("main", {}, crumbs, status, data.manage ? uploadForm() : null, items),
  ),
);
void refresh();
