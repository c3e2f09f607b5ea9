//! Key-value buckets. async-nats' own bucket creation failed on nats-server 2.9 (what the
//! tests ran on before the pinned release), so the backing stream is created here with
//! the settings a bucket needs.

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};

/// Opens the bucket, creating its stream `KV_<bucket>` first if needed.
///
/// # Errors
/// When JetStream cannot be reached or refuses the config.
pub async fn ensure_bucket(js: &jetstream::Context, bucket: &str, replicas: usize) -> Result<kv::Store, String> {
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        storage: stream::StorageType::File,
        num_replicas: replicas.max(1),
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .map_err(|e| format!("bucket {bucket}: {e}"))?;
    js.get_key_value(bucket).await.map_err(|e| format!("bucket {bucket}: {e}"))
}
