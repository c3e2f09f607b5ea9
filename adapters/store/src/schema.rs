//! Diesel schema of the shared tables.

diesel::table! {
    outbox (seq) {
        seq -> BigInt,
        event_id -> Text,
        subject -> Text,
        event_type -> Text,
        correlation_id -> Text,
        causation_id -> Text,
        customer_id -> Text,
        traceparent -> Nullable<Text>,
        occurred_at -> Timestamp,
        payload -> Binary,
        claimed_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    inbox (consumer, event_id) {
        consumer -> Text,
        event_id -> Text,
        handled_at -> Timestamp,
    }
}
