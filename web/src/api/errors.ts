// Server refusals in words a player understands: never a raw code. Server messages are
// shown only where our services write them for players (the field at fault, a business
// refusal); a `retry-after` becomes "try again in N s (at 12:03:04)"; a refusal of the
// economy's rules is read from its google.rpc.ErrorInfo (the reason, and when to try
// again from `next_available_at`), so the page can say it with titles and local times.

import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema } from "../gen/google/rpc/error_info_pb";

/** The domain of our services' ErrorInfo. */
const DOMAIN = "game-rewards";

/** A refusal of the economy's rules, as its ErrorInfo says it. */
export interface Refusal {
  /** E.g. MISSION_PERIOD_LIMIT_REACHED, GIFT_OUT_OF_STOCK. */
  reason: string;
  /** E.g. mission_code, gift_code, cost_points, reward_points. */
  metadata: Record<string, string>;
  /** When it can be tried again, from `next_available_at`; absent when never. */
  nextAt?: Date;
}

/** Puts a refusal into words, or says nothing to fall back on the server's message. */
export type Describe = (refusal: Refusal) => string | undefined;

export interface Problem {
  text: string;
  /** When trying again makes sense, from the server's `retry-after`. */
  retryAt?: Date;
  /** The token is no longer accepted: the customer must log in again. */
  signedOut?: boolean;
  /** The economy's refusal, when the server gave its ErrorInfo. */
  refusal?: Refusal;
}

/** What was being done, for the sentences that depend on it. */
export type Doing = "log in" | "register" | "load" | "achieve" | "exchange" | "use";

const FIELDS: Record<string, string> = {
  customer_id: "Customer id",
  password: "Password",
  mission_code: "Mission",
  reward_id: "Reward",
  gift_code: "Gift",
  gift_id: "Gift",
};

function sentence(s: string): string {
  const t = s.trim();
  if (!t) return t;
  const first = t.charAt(0).toUpperCase() + t.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

/** "customer_id: must be ..." -> "Customer id: must be ...". */
function namingTheField(message: string): string {
  const m = /^([a-z_]+): (.*)$/s.exec(message);
  if (!m) return sentence(message);
  const field = m[1] ?? "";
  const label = FIELDS[field] ?? sentence(field.replace(/_/g, " ")).replace(/\.$/, "");
  return sentence(`${label}: ${m[2] ?? ""}`);
}

function retryAt(err: ConnectError): Date | undefined {
  const seconds = Number.parseInt(err.metadata.get("retry-after") ?? "", 10);
  return Number.isFinite(seconds) && seconds >= 0 ? new Date(Date.now() + seconds * 1000) : undefined;
}

export function clock(d: Date): string {
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/** A day and time in the reader's own time zone: "Fri 27 Nov, 09:00". */
export function when(d: Date): string {
  return d.toLocaleString([], { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
}

/** The ErrorInfo of our services in a refusal, if there is one. */
export function refusalOf(err: ConnectError): Refusal | undefined {
  const info = err.findDetails(ErrorInfoSchema).find((i) => i.domain === DOMAIN);
  if (!info) return undefined;
  const next = new Date(info.metadata["next_available_at"] ?? "");
  const refusal: Refusal = { reason: info.reason, metadata: { ...info.metadata } };
  return Number.isNaN(next.getTime()) ? refusal : { ...refusal, nextAt: next };
}

function inSeconds(at: Date): string {
  const s = Math.max(1, Math.ceil((at.getTime() - Date.now()) / 1000));
  return `Please try again in ${s} s (at ${clock(at)}).`;
}

/** `err` in words for someone who was `doing` something; `describe` words the economy's
 *  refusals (it knows the titles and names), the server's message otherwise. */
export function explain(err: unknown, doing: Doing, describe?: Describe): Problem {
  const e = ConnectError.from(err);
  const server = e.rawMessage;
  const at = retryAt(e);
  const later = at ? ` ${inSeconds(at)}` : " Please try again in a moment.";
  const withRetry = (text: string): Problem => (at ? { text: text + later, retryAt: at } : { text: text + later });
  switch (e.code) {
    case Code.Unauthenticated:
      if (doing === "log in") return { text: "The customer id or the password is not right." };
      return { text: "Your session has ended. Please log in again.", signedOut: true };
    case Code.AlreadyExists:
      return { text: doing === "register" ? "That customer id is taken. Log in, or choose another." : namingTheField(server) };
    case Code.InvalidArgument:
    case Code.OutOfRange:
      return { text: namingTheField(server) || "Please check what you entered." };
    case Code.FailedPrecondition: {
      const refusal = refusalOf(e);
      if (!refusal) return { text: sentence(server) || "That cannot be done now." };
      const said = describe?.(refusal) ?? sentence(server);
      const next = refusal.nextAt ? ` You can try again from ${when(refusal.nextAt)}.` : "";
      return { text: said + next, refusal };
    }
    case Code.PermissionDenied:
      return { text: `You may not do that: ${sentence(server) || "it is not yours."}` };
    case Code.NotFound:
      return { text: sentence(server) || "That no longer exists." };
    case Code.ResourceExhausted:
      return withRetry(doing === "log in" ? "Too many attempts." : "Too many requests.");
    case Code.Unavailable:
      if (doing === "exchange") return withRetry("Gifts cannot be handed out right now; your reward is unchanged.");
      return withRetry("The service is not available right now; nothing was changed.");
    case Code.DeadlineExceeded:
      return { text: "The server took too long to answer. Please try again." };
    case Code.Canceled:
      return { text: "The request was cancelled." };
    case Code.Unknown:
      if (/fetch|network/i.test(server)) return { text: "The server cannot be reached. Check the connection and try again." };
      return { text: "Something went wrong on our side. Please try again." };
    default:
      return { text: "Something went wrong on our side. Please try again." };
  }
}
