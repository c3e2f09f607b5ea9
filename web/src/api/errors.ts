// Server refusals in words a player understands: never a raw code. Server messages are
// shown only where our services write them for players (the field at fault, a business
// refusal); a `retry-after` becomes "try again in N s (at 12:03:04)".

import { Code, ConnectError } from "@connectrpc/connect";

export interface Problem {
  text: string;
  /** When trying again makes sense, from the server's `retry-after`. */
  retryAt?: Date;
  /** The token is no longer accepted: the customer must log in again. */
  signedOut?: boolean;
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

function inSeconds(at: Date): string {
  const s = Math.max(1, Math.ceil((at.getTime() - Date.now()) / 1000));
  return `Please try again in ${s} s (at ${clock(at)}).`;
}

export function explain(err: unknown, doing: Doing): Problem {
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
    case Code.FailedPrecondition:
      return { text: sentence(server) || "That cannot be done now." };
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
