// CSV/XLSX export of the report as filtered: start a job, follow its progress, download the file.
// The job runs on the server (streamed writers), so a long report never holds the page.
import type { ExportJob } from "./types";

export interface ExportCallbacks {
  progress(done: number, total: number | null): void;
  failed(message: string): void;
  finished(fileUrl: string): void;
}

const POLL_MS = 700;

async function json<T>(resp: Response): Promise<T> {
  const body = (await resp.json().catch(() => ({}))) as T & { detail?: string };
  if (!resp.ok) throw new Error(body.detail ?? `HTTP ${resp.status}`);
  return body;
}

/** Runs one export to the end (or failure), reporting as it goes. */
export async function runExport(
  key: string,
  params: URLSearchParams,
  format: "csv" | "xlsx",
  on: ExportCallbacks,
): Promise<void> {
  const q = new URLSearchParams(params);
  q.set("format", format);
  let job: ExportJob;
  try {
    const started = await json<{ id: number | string }>(
      await fetch(`/api/v1/reports/${encodeURIComponent(key)}/exports?${q}`, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-Omni-CSRF": "1", Accept: "application/json" },
      }),
    );
    const url = `/api/v1/exports/${encodeURIComponent(String(started.id))}`;
    for (;;) {
      job = await json<ExportJob>(await fetch(url, { credentials: "same-origin" }));
      on.progress(job.rows_done, job.rows_total);
      if (job.state === "done") {
        on.finished(`${url}/file`);
        return;
      }
      if (job.state === "failed") {
        on.failed(job.error ?? "");
        return;
      }
      await new Promise((resolve) => window.setTimeout(resolve, POLL_MS));
    }
  } catch (err) {
    on.failed(err instanceof Error ? err.message : String(err));
  }
}
