// The plugin API (supervisor/api/..., relative to the UI's <base href>, so it works under any [api] base_url).
// The browser sends Airflow's _token cookie with each same-origin request: the API checks it.
import { useEffect, useRef, useState } from "react";

export type Params = Record<string, string | number | null | undefined>;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function apiUrl(path: string, params: Params = {}): string {
  const url = new URL(`supervisor/api/${path}`, document.baseURI);
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, String(value));
  }
  return url.toString();
}

/** An Airflow UI path (e.g. "dags/x/runs/y") as an absolute URL under the UI's base. */
export function uiUrl(path: string): string {
  return new URL(path, document.baseURI).toString();
}

export async function getJson<T>(path: string, params: Params = {}): Promise<T> {
  const answer = await fetch(apiUrl(path, params), {
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  });
  if (!answer.ok) {
    let detail = answer.statusText;
    try {
      const body = await answer.json();
      detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    } catch {
      // not JSON: keep the status text
    }
    throw new ApiError(answer.status, detail || `HTTP ${answer.status}`);
  }
  return (await answer.json()) as T;
}

export async function sendJson<T>(method: "POST" | "DELETE", path: string, body?: unknown): Promise<T | null> {
  const answer = await fetch(apiUrl(path), {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json", "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!answer.ok) {
    let detail = answer.statusText;
    try {
      const parsed = await answer.json();
      detail = typeof parsed.detail === "string" ? parsed.detail : JSON.stringify(parsed.detail);
    } catch {
      // not JSON: keep the status text
    }
    throw new ApiError(answer.status, detail || `HTTP ${answer.status}`);
  }
  return answer.status === 204 ? null : ((await answer.json()) as T);
}

/** How often open pages ask whether there is something new (a recorded call shows within this plus a query). */
export const POLL_MS = 3000;

/** A value that changes whenever the store has something new for these views (polled while the page is visible). */
export function useStamp(): string {
  const [stamp, setStamp] = useState("");
  useEffect(() => {
    let stopped = false;
    const poll = async () => {
      if (document.visibilityState === "visible") {
        try {
          const answer = await getJson<{ stamp: string }>("stamp");
          if (!stopped) setStamp(answer.stamp);
        } catch {
          // the data views show the error; keep polling
        }
      }
    };
    void poll();
    const timer = window.setInterval(() => void poll(), POLL_MS);
    return () => {
      stopped = true;
      window.clearInterval(timer);
    };
  }, []);
  return stamp;
}

export type Loaded<T> = { data?: T; error?: ApiError; loading: boolean };

/** GET ``path`` with ``params``, again whenever ``refresh`` changes; keeps the last answer while reloading. */
export function useApi<T>(path: string | null, params: Params, refresh: unknown = null): Loaded<T> {
  const [state, setState] = useState<Loaded<T>>({ loading: path !== null });
  const key = path === null ? null : apiUrl(path, params);
  const latest = useRef(key);
  latest.current = key;
  useEffect(() => {
    if (path === null) return;
    let current = true;
    setState((previous) => ({ ...previous, loading: true }));
    getJson<T>(path, params).then(
      (data) => current && setState({ data, loading: false }),
      (error: unknown) =>
        current &&
        setState((previous) => ({
          data: previous.data,
          error: error instanceof ApiError ? error : new ApiError(0, String(error)),
          loading: false,
        })),
    );
    return () => {
      current = false;
    };
    // key stands for path + params
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key, refresh]);
  return state;
}
