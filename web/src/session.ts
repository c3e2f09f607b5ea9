// Who is signed in: the token lives in memory and in this tab's sessionStorage (it
// survives a reload, dies with the tab), never in a URL or localStorage.

export interface Session {
  customerId: string;
  token: string;
  /** Milliseconds since the epoch when the token stops being accepted. */
  expiresAt: number;
}

const KEY = "game-rewards.session";
let current: Session | null = null;

function isSession(v: unknown): v is Session {
  if (typeof v !== "object" || v === null) return false;
  const s = v as Record<string, unknown>;
  return typeof s["customerId"] === "string" && typeof s["token"] === "string" && typeof s["expiresAt"] === "number";
}

/** The session kept by this tab, if its token has not expired. */
export function restore(): Session | null {
  try {
    const saved: unknown = JSON.parse(sessionStorage.getItem(KEY) ?? "null");
    current = isSession(saved) && saved.expiresAt > Date.now() ? saved : null;
  } catch {
    current = null;
  }
  if (!current) sessionStorage.removeItem(KEY);
  return current;
}

export function start(session: Session): void {
  current = session;
  sessionStorage.setItem(KEY, JSON.stringify(session));
}

export function end(): void {
  current = null;
  sessionStorage.removeItem(KEY);
}

/** The bearer token to send, if someone is signed in. */
export function token(): string | null {
  return current?.token ?? null;
}
