//! Pages in a JetStream key-value bucket. Per customer (`<c>`: the customer id in
//! base64url):
//! - `<c>`: the page, a protobuf `MyPage` (totals, the recent entries) followed by the
//!   archive's bookkeeping (fields 100+, which readers of `MyPage` skip); the entry's
//!   revision is the page's version.
//! - `<c>.e.<mission id>`: an archived entry (protobuf `Entry`), rewritten only when that
//!   mission changes.
//! - `<c>.c.<n>`: archive chunk `n`, the mission ids archived together, written once.
//!
//! Those are generation 0's keys; generation `g`'s carry the prefix `=g<g>.`
//! ([`crate::generation`]).

use std::pin::Pin;

use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, UpdateErrorKind};
use base64::Engine;
use futures::{Stream, StreamExt, TryStreamExt};
use grpc_adapter::pb::mypage::v1 as pb;
use kernel::{CustomerId, StoreError};
use mypage_domain::archive::{Archive, Chunk};
use mypage_domain::{Entry, MyPage, PageStore};
use prost::Message;
use uuid::Uuid;

use crate::grpc::{entry_from_proto, entry_to_proto, page_from_proto, page_to_proto};

/// Archive keys read or written at once.
const CONCURRENCY: usize = 64;
/// Tries of a merge-write of one archived entry against concurrent writers.
const MERGE_TRIES: usize = 16;

pub struct KvPages {
    bucket: kv::Store,
    /// Of the generation's keys ([`crate::generation::prefix`]).
    prefix: String,
}

impl KvPages {
    /// The pages of generation 0.
    pub fn new(bucket: kv::Store) -> Self {
        Self::at(bucket, 0)
    }

    /// The pages of generation `g`.
    pub fn at(bucket: kv::Store, g: u64) -> Self {
        Self { bucket, prefix: crate::generation::prefix(g) }
    }

    fn page_key(&self, customer: &CustomerId) -> String {
        format!("{}{}", self.prefix, key(customer))
    }

    fn entry_key(&self, customer: &CustomerId, mission: Uuid) -> String {
        format!("{}{}", self.prefix, entry_key(customer, mission))
    }

    fn chunk_key(&self, customer: &CustomerId, number: u64) -> String {
        format!("{}{}", self.prefix, chunk_key(customer, number))
    }
}

/// Customer ids are opaque; keys allow only `[-/_=.a-zA-Z0-9]`.
pub fn key(customer: &CustomerId) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(customer.as_str())
}

pub fn entry_key(customer: &CustomerId, mission: Uuid) -> String {
    format!("{}.e.{}", key(customer), mission.hyphenated())
}

pub fn chunk_key(customer: &CustomerId, number: u64) -> String {
    format!("{}.c.{number}", key(customer))
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// The archive's bookkeeping, stored after the page's `MyPage` fields.
#[derive(Clone, PartialEq, prost::Message)]
struct StoredArchive {
    #[prost(uint64, tag = "100")]
    sealed: u64,
    #[prost(string, repeated, tag = "101")]
    tail: Vec<String>,
    #[prost(message, repeated, tag = "102")]
    unsealed: Vec<StoredChunk>,
    #[prost(message, repeated, tag = "103")]
    pending: Vec<pb::Entry>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredChunk {
    #[prost(uint64, tag = "1")]
    pub number: u64,
    #[prost(string, repeated, tag = "2")]
    pub ids: Vec<String>,
}

fn ids(raw: &[String]) -> Result<Vec<Uuid>, StoreError> {
    raw.iter().map(|s| Uuid::try_parse(s).map_err(|e| unavailable(format!("corrupt archive id: {e}")))).collect()
}

fn id_texts(ids: &[Uuid]) -> Vec<String> {
    ids.iter().map(|u| u.hyphenated().to_string()).collect()
}

/// The stored form of a page: `MyPage` then the archive (protobuf fields concatenate).
pub fn encode(page: &MyPage) -> Vec<u8> {
    let mut out = page_to_proto(page, &page.entries).encode_to_vec();
    let a = &page.archive;
    StoredArchive {
        sealed: a.sealed,
        tail: id_texts(&a.tail),
        unsealed: a.unsealed.iter().map(|c| StoredChunk { number: c.number, ids: id_texts(&c.ids) }).collect(),
        pending: a.pending.iter().map(entry_to_proto).collect(),
    }
    .encode(&mut out)
    .unwrap_or_default(); // a Vec grows as needed
    out
}

pub fn decode(customer: &CustomerId, value: &[u8], revision: u64) -> Result<MyPage, StoreError> {
    let proto = pb::MyPage::decode(value).map_err(|e| unavailable(format!("corrupt page: {e}")))?;
    let stored = StoredArchive::decode(value).map_err(|e| unavailable(format!("corrupt page archive: {e}")))?;
    let mut page = page_from_proto(customer, proto).map_err(unavailable)?;
    let mut unsealed = Vec::with_capacity(stored.unsealed.len());
    for c in &stored.unsealed {
        unsealed.push(Chunk { number: c.number, ids: ids(&c.ids)? });
    }
    let pending = stored.pending.into_iter().map(entry_from_proto).collect::<Result<_, _>>().map_err(unavailable)?;
    page.archive = Archive { sealed: stored.sealed, tail: ids(&stored.tail)?, unsealed, pending };
    page.version = revision;
    Ok(page)
}

/// The stored form of an archive chunk.
pub fn encode_chunk(chunk: &Chunk) -> Vec<u8> {
    StoredChunk { number: chunk.number, ids: id_texts(&chunk.ids) }.encode_to_vec()
}

/// The stored form of an archived entry.
pub fn encode_entry(entry: &Entry) -> Vec<u8> {
    entry_to_proto(entry).encode_to_vec()
}

pub type Updates = Pin<Box<dyn Stream<Item = Result<MyPage, StoreError>> + Send>>;

impl KvPages {
    /// One archived entry with its revision, when stored.
    async fn archived_one(&self, customer: &CustomerId, id: Uuid) -> Result<Option<(Entry, u64)>, StoreError> {
        match self.bucket.entry(self.entry_key(customer, id)).await.map_err(unavailable)? {
            Some(e) if e.operation == Operation::Put => {
                let proto =
                    pb::Entry::decode(e.value.as_ref()).map_err(|e| unavailable(format!("corrupt entry: {e}")))?;
                Ok(Some((entry_from_proto(proto).map_err(unavailable)?, e.revision)))
            }
            _ => Ok(None),
        }
    }

    /// Writes `entry` merged with its stored copy (create, or update on the revision read).
    async fn merge_one(&self, customer: &CustomerId, entry: &Entry) -> Result<(), StoreError> {
        let k = self.entry_key(customer, entry.mission_id);
        for _ in 0..MERGE_TRIES {
            let written = match self.archived_one(customer, entry.mission_id).await? {
                None => {
                    let value = encode_entry(entry).into();
                    match self.bucket.create(&k, value).await {
                        Ok(_) => true,
                        Err(e) if e.kind() == CreateErrorKind::AlreadyExists => false,
                        Err(e) => return Err(unavailable(e)),
                    }
                }
                Some((mut stored, revision)) => {
                    let before = stored.clone();
                    stored.merge(entry);
                    if stored == before {
                        return Ok(());
                    }
                    let value = encode_entry(&stored).into();
                    match self.bucket.update(&k, value, revision).await {
                        Ok(_) => true,
                        Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => false,
                        Err(e) => return Err(unavailable(e)),
                    }
                }
            };
            if written {
                return Ok(());
            }
        }
        Err(StoreError::Conflict)
    }
}

impl PageStore for KvPages {
    type Updates = Updates;

    async fn get(&self, customer: &CustomerId) -> Result<Option<MyPage>, StoreError> {
        match self.bucket.entry(self.page_key(customer)).await.map_err(unavailable)? {
            Some(e) if e.operation == Operation::Put => decode(customer, &e.value, e.revision).map(Some),
            _ => Ok(None),
        }
    }

    async fn put(&self, page: &MyPage) -> Result<u64, StoreError> {
        let value = encode(page).into();
        let k = self.page_key(&page.customer_id);
        if page.version == 0 {
            self.bucket.create(k, value).await.map_err(|e| match e.kind() {
                CreateErrorKind::AlreadyExists => StoreError::Conflict,
                _ => unavailable(e),
            })
        } else {
            self.bucket.update(k, value, page.version).await.map_err(|e| match e.kind() {
                UpdateErrorKind::WrongLastRevision => StoreError::Conflict,
                _ => unavailable(e),
            })
        }
    }

    async fn watch(&self, customer: &CustomerId) -> Result<Self::Updates, StoreError> {
        let watch = self.bucket.watch(self.page_key(customer)).await.map_err(unavailable)?;
        let customer = customer.clone();
        Ok(Box::pin(watch.filter_map(move |entry| {
            let customer = customer.clone();
            async move {
                match entry {
                    Ok(e) if e.operation == Operation::Put => Some(decode(&customer, &e.value, e.revision)),
                    Ok(_) => None,
                    Err(e) => Some(Err(unavailable(e))),
                }
            }
        })))
    }

    async fn archived(&self, customer: &CustomerId, ids: &[Uuid]) -> Result<Vec<Entry>, StoreError> {
        let found: Vec<Option<(Entry, u64)>> = futures::stream::iter(ids.iter().copied())
            .map(|id| self.archived_one(customer, id))
            .buffered(CONCURRENCY)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().map(|(e, _)| e).collect())
    }

    async fn write_archived(&self, customer: &CustomerId, entries: &[Entry]) -> Result<(), StoreError> {
        futures::stream::iter(entries.to_vec())
            .map(|e| async move { self.merge_one(customer, &e).await })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    async fn chunk(&self, customer: &CustomerId, number: u64) -> Result<Vec<Uuid>, StoreError> {
        match self.bucket.entry(self.chunk_key(customer, number)).await.map_err(unavailable)? {
            Some(e) if e.operation == Operation::Put => {
                let c =
                    StoredChunk::decode(e.value.as_ref()).map_err(|e| unavailable(format!("corrupt chunk: {e}")))?;
                ids(&c.ids)
            }
            _ => Ok(Vec::new()),
        }
    }

    async fn write_chunk(&self, customer: &CustomerId, chunk: &Chunk) -> Result<(), StoreError> {
        let value = encode_chunk(chunk);
        self.bucket.put(self.chunk_key(customer, chunk.number), value.into()).await.map_err(unavailable)?;
        Ok(())
    }
}
