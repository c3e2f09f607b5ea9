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

/**
 * The role a token names (its `role` claim, else Keycloak's `realm_access.roles`), read
 * only to choose what to show: the services check the signature and the role on every call.
 */
export function roleOf(token: string): string {
  try {
    const part = token.split(".")[1] ?? "";
    const claims: unknown = JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/")));
    if (typeof claims !== "object" || claims === null) return "player";
    const c = claims as { role?: unknown; realm_access?: { roles?: unknown } };
    if (typeof c.role === "string") return c.role;
    const realm = Array.isArray(c.realm_access?.roles) ? (c.realm_access.roles as unknown[]) : [];
    return ["admin", "game_server", "service"].find((r) => realm.includes(r)) ?? "player";
  } catch {
    return "player";
  }
}
