// NotificationService: the e-mails sent to the customer.

import { createClient } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { NotificationService } from "../gen/game/notification/v1/notification_pb";
import { transport } from "./transport";

const client = createClient(NotificationService, transport);

export interface Email {
  id: string;
  subject: string;
  recipient: string;
  sentAt: Date | null;
}

/** Newest first. */
export async function emails(customerId: string, signal?: AbortSignal): Promise<Email[]> {
  const res = await client.listNotifications({ customerId }, signal ? { signal } : {});
  const list = res.notifications.map((n) => ({
    id: n.notificationId,
    subject: n.subject,
    recipient: n.recipient,
    sentAt: n.sentAt ? timestampDate(n.sentAt) : null,
  }));
  return list.sort((a, b) => (b.sentAt?.getTime() ?? 0) - (a.sentAt?.getTime() ?? 0));
}
