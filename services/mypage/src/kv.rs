//! Pages in a JetStream key-value bucket: one key per customer, the value a protobuf
//! `MyPage`, the entry's revision the page's version.

use std::pin::Pin;

use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, UpdateErrorKind};
use base64::Engine;
use futures::{Stream, StreamExt};
use grpc_adapter::pb::mypage::v1 as pb;
use kernel::{CustomerId, StoreError};
use mypage_domain::{MyPage, PageStore};
use prost::Message;

use crate::grpc::{page_from_proto, page_to_proto};

pub struct KvPages {
    bucket: kv::Store,
}

impl KvPages {
    pub fn new(bucket: kv::Store) -> Self {
        Self { bucket }
    }
}

/// Customer ids are opaque; keys allow only `[-/_=.a-zA-Z0-9]`.
pub fn key(customer: &CustomerId) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(customer.as_str())
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn decode(customer: &CustomerId, value: &[u8], revision: u64) -> Result<MyPage, StoreError> {
    let proto = pb::MyPage::decode(value).map_err(|e| unavailable(format!("corrupt page: {e}")))?;
    let mut page = page_from_proto(customer, proto).map_err(unavailable)?;
    page.version = revision;
    Ok(page)
}

pub type Updates = Pin<Box<dyn Stream<Item = Result<MyPage, StoreError>> + Send>>;

impl PageStore for KvPages {
    type Updates = Updates;

    async fn get(&self, customer: &CustomerId) -> Result<Option<MyPage>, StoreError> {
        match self.bucket.entry(key(customer)).await.map_err(unavailable)? {
            Some(e) if e.operation == Operation::Put => decode(customer, &e.value, e.revision).map(Some),
            _ => Ok(None),
        }
    }

    async fn put(&self, page: &MyPage) -> Result<u64, StoreError> {
        let value = page_to_proto(page).encode_to_vec().into();
        let k = key(&page.customer_id);
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
        let watch = self.bucket.watch(key(customer)).await.map_err(unavailable)?;
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
}
