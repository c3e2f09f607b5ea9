-- E-mails sent to customers, one per gift event and channel.
CREATE TABLE notifications (
    id TEXT PRIMARY KEY NOT NULL,
    customer_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    about_event_id TEXT NOT NULL,
    sent_at TIMESTAMP NOT NULL,
    UNIQUE (about_event_id, channel)
);
CREATE INDEX notifications_by_customer ON notifications (customer_id, id);
