//! The service over the generations of the view: reads go to the serving generation,
//! facts to every generation the pointer names ([`crate::generation`]), watches follow
//! the pointer when it switches.

use std::pin::Pin;

use async_nats::jetstream::kv::{self, Operation};
use futures::{Stream, StreamExt};
use kernel::{CustomerId, StoreError};
use mypage_domain::archive::Cursor;
use mypage_domain::{Entry, Fact, MyPage, MyPageError, MyPageService, PageStore};

use crate::generation::{self, Pointer};
use crate::kv::KvPages;

/// A page and the generation it was read from.
pub type Versioned = (u64, MyPage);

pub type Updates = Pin<Box<dyn Stream<Item = Result<Versioned, StoreError>> + Send>>;

pub struct App {
    bucket: kv::Store,
}

fn unavailable(e: impl std::fmt::Display) -> MyPageError {
    MyPageError::Unavailable(e.to_string())
}

impl App {
    pub fn new(bucket: kv::Store) -> Self {
        Self { bucket }
    }

    pub fn bucket(&self) -> &kv::Store {
        &self.bucket
    }

    /// Read fresh on every use: a writer that read it before a rebuild began handles only
    /// events that were in the streams before, which the rebuild replays.
    pub async fn pointer(&self) -> Result<Pointer, MyPageError> {
        generation::read(&self.bucket).await.map(|(p, _)| p).map_err(unavailable)
    }

    /// The view's generation `g`.
    pub fn at(&self, g: u64) -> MyPageService<KvPages> {
        MyPageService::new(KvPages::at(self.bucket.clone(), g))
    }

    /// The customer's page as read now, with its generation.
    pub async fn page(&self, customer: &CustomerId) -> Result<Versioned, MyPageError> {
        let g = self.pointer().await?.serving;
        Ok((g, self.at(g).page(customer).await?))
    }

    /// A page of entries from `cursor` in generation `g` (the one its page token was made
    /// in), or the serving one for the first page.
    pub async fn entries(
        &self,
        customer: &CustomerId,
        g: Option<u64>,
        cursor: Cursor,
        size: usize,
    ) -> Result<(u64, MyPage, Vec<Entry>, Option<Cursor>), MyPageError> {
        let g = match g {
            Some(g) => g,
            None => self.pointer().await?.serving,
        };
        let (page, entries, next) = self.at(g).entries(customer, cursor, size).await?;
        Ok((g, page, entries, next))
    }

    /// Applies facts to every generation written now (the one being built first).
    pub async fn apply(&self, customer: &CustomerId, facts: &[Fact]) -> Result<(), MyPageError> {
        for g in self.pointer().await?.writes() {
            self.at(g).apply(customer, facts).await?;
        }
        Ok(())
    }

    /// Every later version of the customer's page, from the serving generation; when the
    /// pointer switches, the new generation's page, then its changes.
    pub async fn watch(&self, customer: &CustomerId) -> Result<Updates, MyPageError> {
        // The pointer is watched before it is read: no switch falls between the two.
        let mut pointers = self.bucket.watch(generation::KEY).await.map_err(unavailable)?;
        let mut g = self.pointer().await?.serving;
        let mut pages = KvPages::at(self.bucket.clone(), g).watch(customer).await?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Versioned, StoreError>>(16);
        let (bucket, customer) = (self.bucket.clone(), customer.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tx.closed() => return,
                    p = pointers.next() => {
                        let next = match p {
                            Some(Ok(e)) if e.operation == Operation::Put => Pointer::decode(&e.value).ok(),
                            Some(Ok(_)) => None,
                            Some(Err(e)) => {
                                let _ = tx.send(Err(StoreError::Unavailable(e.to_string()))).await;
                                return;
                            }
                            None => return,
                        };
                        let Some(next) = next.filter(|n| n.serving != g) else { continue };
                        g = next.serving;
                        let store = KvPages::at(bucket.clone(), g);
                        let switched = async { Ok::<_, StoreError>((store.watch(&customer).await?, store.get(&customer).await?)) };
                        match switched.await {
                            Ok((w, now)) => {
                                pages = w;
                                if let Some(page) = now && tx.send(Ok((g, page))).await.is_err() {
                                    return;
                                }
                            }
                            Err(e) => {
                                let _ = tx.send(Err(e)).await;
                                return;
                            }
                        }
                    }
                    u = pages.next() => match u {
                        Some(u) => if tx.send(u.map(|p| (g, p))).await.is_err() { return },
                        None => return,
                    },
                }
            }
        });
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
    }
}
