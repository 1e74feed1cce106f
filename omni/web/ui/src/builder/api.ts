// JSON over the scenarios REST API with the page's session cookie.

export interface Reply<T = unknown> {
  ok: boolean;
  status: number;
  data: T;
  detail: string;
}

export async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<Reply<T>> {
  let resp: Response;
  try {
    resp = await fetch(path, {
      method,
      credentials: "same-origin",
      // The server refuses cookie-authenticated writes that can't show they come from our
      // own pages (omni/api/csrf.py); another site can't add this header without CORS.
      headers: body === undefined ? { "X-Omni-CSRF": "1" } : { "Content-Type": "application/json", "X-Omni-CSRF": "1" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    return { ok: false, status: 0, data: {} as T, detail: String(err) };
  }
  let data: unknown = {};
  try {
    data = await resp.json();
  } catch {
    data = {};
  }
  const detail = resp.ok ? "" : String((data as { detail?: unknown }).detail ?? resp.statusText);
  return { ok: resp.ok, status: resp.status, data: data as T, detail };
}

/** The text of a chosen file, parsed as JSON (null when it is not JSON). */
export async function readJsonFile(file: File): Promise<unknown> {
  try {
    return JSON.parse(await file.text());
  } catch {
    return null;
  }
}
