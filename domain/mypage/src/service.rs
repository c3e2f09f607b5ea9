//! The mypage application service: applies facts, answers reads.

use chrono::Utc;
use kernel::{CustomerId, StoreError, retry_on_conflict};

use uuid::Uuid;

use crate::archive::{self, Cursor, Planned};
use crate::model::{Entry, Fact, MyPage};
use crate::ports::PageStore;

#[derive(Debug, thiserror::Error)]
pub enum MyPageError {
    /// A cursor this page cannot hold (forged, or of another history).
    #[error(transparent)]
    Cursor(#[from] archive::BeyondPage),
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for MyPageError {
    fn from(e: StoreError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

/// A page is written by every event of its customer: more contended than one aggregate.
const CONFLICT_RETRIES: usize = 16;

pub struct MyPageService<S> {
    store: S,
}

impl<S: PageStore> MyPageService<S> {
    pub fn new(store: S) -> Self {
        Self { store }
    }

    /// The customer's page (totals and the recent entries); an empty page for an unknown
    /// customer.
    pub async fn page(&self, customer: &CustomerId) -> Result<MyPage, MyPageError> {
        Ok(self.store.get(customer).await?.unwrap_or_else(|| MyPage::empty(customer.clone())))
    }

    /// One page of entries from `cursor`, newest first, with the page they belong to
    /// (its totals) and where the next page starts. Its cost is bounded whatever the
    /// cursor: a page read, at most [`archive::chunks_per_page`] chunk reads, one read of
    /// the archived entries.
    ///
    /// # Errors
    /// [`MyPageError::Cursor`] for a cursor beyond the page's history.
    pub async fn entries(
        &self,
        customer: &CustomerId,
        cursor: Cursor,
        size: usize,
    ) -> Result<(MyPage, Vec<Entry>, Option<Cursor>), MyPageError> {
        let page = self.page(customer).await?;
        // The chunks the page does not hold, read one at a time as planning reaches them:
        // at most `archive::chunks_per_page(size)`, whatever the cursor.
        let mut chunks = std::collections::HashMap::new();
        let step = loop {
            match archive::plan(&page, cursor, size, |n| chunks.get(&n).cloned())? {
                Planned::Chunk(n) => {
                    let ids = self.store.chunk(customer, n).await?;
                    chunks.insert(n, ids);
                }
                Planned::Step(step) => break step,
            }
        };
        let stored =
            if step.archived.is_empty() { Vec::new() } else { self.store.archived(customer, &step.archived).await? };
        let stored: std::collections::HashMap<Uuid, Entry> = stored.into_iter().map(|e| (e.mission_id, e)).collect();
        let mut entries = step.recent;
        entries.extend(step.archived.iter().filter_map(|id| page.archive.stored(*id, stored.get(id))));
        Ok((page, entries, step.next))
    }

    pub async fn watch(&self, customer: &CustomerId) -> Result<S::Updates, MyPageError> {
        Ok(self.store.watch(customer).await?)
    }

    /// Applies facts about one customer's page, storing it once if anything changed.
    /// Safe to repeat: the page ends up the same however often and in whatever order
    /// facts arrive. The cost does not grow with the customer's history: one read and one
    /// write of the page, a read of the archived entries the facts are about, and the
    /// writes of what the page archives.
    pub async fn apply(&self, customer: &CustomerId, facts: &[Fact]) -> Result<(), MyPageError> {
        retry_on_conflict(CONFLICT_RETRIES, move || async move {
            let mut page = self.page(customer).await?;
            let mut ids: Vec<Uuid> = facts
                .iter()
                .map(Fact::mission_id)
                .filter(|id| page.entries.binary_search_by_key(id, |e| e.mission_id).is_err())
                .collect();
            ids.sort_unstable();
            ids.dedup();
            let stored = if ids.is_empty() { Vec::new() } else { self.store.archived(customer, &ids).await? };
            let stored: std::collections::HashMap<Uuid, Entry> =
                stored.into_iter().map(|e| (e.mission_id, e)).collect();
            let now = Utc::now();
            let mut changed = false;
            for fact in facts {
                let id = fact.mission_id();
                changed |= page.apply(fact, stored.get(&id), now);
            }
            changed |= page.settle();
            if changed {
                match self.store.put(&page).await {
                    Ok(version) => page.version = version,
                    Err(StoreError::Conflict) => return Ok(None),
                    Err(e) => return Err(e.into()),
                }
            }
            self.write_archive(&mut page).await;
            Ok(Some(()))
        })
        .await
    }

    /// Writes what the stored page decided to archive, then forgets it in the page. Any
    /// failure leaves it in the page, where reads still find it and the next change of the
    /// page writes it again.
    async fn write_archive(&self, page: &mut MyPage) {
        let (entries, chunks) = (page.archive.pending.clone(), page.archive.unsealed.clone());
        if entries.is_empty() && chunks.is_empty() {
            return;
        }
        if self.store.write_archived(&page.customer_id, &entries).await.is_err() {
            return;
        }
        for c in &chunks {
            if self.store.write_chunk(&page.customer_id, c).await.is_err() {
                return;
            }
        }
        page.archive.written(&entries, &chunks);
        // Another writer may have stored the page since: it carries the same and writes it.
        let _ = self.store.put(page).await;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use futures::executor::block_on;
    use futures::stream;
    use uuid::Uuid;

    use super::*;
    use crate::archive::Chunk;

    /// In-memory store that makes the first `conflicts` puts fail like a racing writer,
    /// and counts the calls made to it.
    #[derive(Default)]
    struct Memory {
        pages: Mutex<HashMap<CustomerId, MyPage>>,
        conflicts: Mutex<usize>,
        entries: Mutex<HashMap<Uuid, Entry>>,
        chunks: Mutex<HashMap<u64, Vec<Uuid>>>,
        calls: Mutex<usize>,
    }

    impl Memory {
        fn call(&self) {
            *self.calls.lock().unwrap() += 1;
        }
    }

    impl PageStore for Memory {
        type Updates = stream::Empty<Result<MyPage, StoreError>>;
        async fn get(&self, c: &CustomerId) -> Result<Option<MyPage>, StoreError> {
            self.call();
            Ok(self.pages.lock().unwrap().get(c).cloned())
        }
        async fn put(&self, page: &MyPage) -> Result<u64, StoreError> {
            self.call();
            let mut conflicts = self.conflicts.lock().unwrap();
            if *conflicts > 0 {
                *conflicts -= 1;
                return Err(StoreError::Conflict);
            }
            let mut pages = self.pages.lock().unwrap();
            let stored = pages.get(&page.customer_id).map_or(0, |p| p.version);
            if stored != page.version {
                return Err(StoreError::Conflict);
            }
            let next = MyPage { version: stored + 1, ..page.clone() };
            pages.insert(page.customer_id.clone(), next);
            Ok(stored + 1)
        }
        async fn watch(&self, _: &CustomerId) -> Result<Self::Updates, StoreError> {
            Ok(stream::empty())
        }
        async fn archived(&self, _: &CustomerId, ids: &[Uuid]) -> Result<Vec<Entry>, StoreError> {
            self.call();
            let entries = self.entries.lock().unwrap();
            Ok(ids.iter().filter_map(|id| entries.get(id).cloned()).collect())
        }
        async fn write_archived(&self, _: &CustomerId, written: &[Entry]) -> Result<(), StoreError> {
            self.call();
            let mut entries = self.entries.lock().unwrap();
            for e in written {
                entries.entry(e.mission_id).or_insert_with(|| e.clone()).merge(e);
            }
            Ok(())
        }
        async fn chunk(&self, _: &CustomerId, n: u64) -> Result<Vec<Uuid>, StoreError> {
            self.call();
            Ok(self.chunks.lock().unwrap().get(&n).cloned().unwrap_or_default())
        }
        async fn write_chunk(&self, _: &CustomerId, c: &Chunk) -> Result<(), StoreError> {
            self.call();
            self.chunks.lock().unwrap().insert(c.number, c.ids.clone());
            Ok(())
        }
    }

    fn played(id: Uuid) -> Fact {
        Fact::MissionAchieved { mission_id: id, mission_code: "match-played".into(), points: 1 }
    }

    #[test]
    fn given_a_customer_with_thousands_of_missions_a_new_one_costs_what_it_costs_a_new_customer() {
        let s = MyPageService::new(Memory::default());
        let (whale, newcomer) = (CustomerId::new("whale").unwrap(), CustomerId::new("new").unwrap());
        let mut ids = Vec::new();
        for batch in 0..30 {
            let facts: Vec<Fact> = (0..100).map(|_| Uuid::now_v7()).inspect(|id| ids.push(*id)).map(played).collect();
            block_on(s.apply(&whale, &facts)).unwrap();
            assert!(block_on(s.page(&whale)).unwrap().entries.len() <= archive::RECENT, "batch {batch}");
        }
        let calls = |s: &MyPageService<Memory>, c: &CustomerId| {
            let before = *s.store.calls.lock().unwrap();
            block_on(s.apply(c, &[played(Uuid::now_v7())])).unwrap();
            *s.store.calls.lock().unwrap() - before
        };
        let (for_whale, for_newcomer) = (calls(&s, &whale), calls(&s, &newcomer));
        // a page read, the archive looked up, a page write; the whale's page also archives
        // its oldest recent entry (one entry written, the page written without it)
        assert_eq!((for_newcomer, for_whale), (3, 5));
        let page = block_on(s.page(&whale)).unwrap();
        assert_eq!((page.entry_count, page.points_issued, page.entries.len()), (3001, 0, archive::RECENT));
        assert!(page.archive.pending.is_empty() && page.archive.unsealed.is_empty());

        // an old entry still changes, in its archive key and in the totals
        let old = ids[10];
        block_on(s.apply(&whale, &[Fact::RewardIssued { mission_id: old, reward_id: Uuid::now_v7(), points: 7 }]))
            .unwrap();
        assert_eq!(block_on(s.page(&whale)).unwrap().points_issued, 7);
        assert_eq!(s.store.entries.lock().unwrap()[&old].points, 7);

        // and every entry reads back once, newest first, a page at a time
        let (mut read, mut cursor) = (Vec::new(), Cursor::FIRST);
        loop {
            let (_, entries, next) = block_on(s.entries(&whale, cursor, 500)).unwrap();
            read.extend(entries.iter().map(|e| e.mission_id));
            match next {
                Some(c) => cursor = c,
                None => break,
            }
        }
        assert_eq!(read.len(), 3001);
        assert_eq!(read[3000 - 10], old);
        assert!(read.windows(2).all(|w| w[0] > w[1]), "newest first");
    }

    #[test]
    fn given_a_cursor_beyond_the_page_when_reading_then_it_is_refused_after_reading_the_page_only() {
        let s = MyPageService::new(Memory::default());
        let c = CustomerId::new("me").unwrap();
        let facts: Vec<Fact> = (0..300).map(|_| played(Uuid::now_v7())).collect();
        block_on(s.apply(&c, &facts)).unwrap();
        let before = *s.store.calls.lock().unwrap();
        for chunk in [u64::MAX, 3000] {
            let forged = Cursor::Archive { chunk, before: 0, below: None };
            let e = block_on(s.entries(&c, forged, 50)).unwrap_err();
            assert!(matches!(e, MyPageError::Cursor(archive::BeyondPage { sealed: 5, .. })), "{e:?}");
        }
        assert_eq!(*s.store.calls.lock().unwrap() - before, 2, "one page read each, no chunk read");
    }

    #[test]
    fn an_unknown_customer_gets_an_empty_page() {
        let s = MyPageService::new(Memory::default());
        let p = block_on(s.page(&CustomerId::new("nobody").unwrap())).unwrap();
        assert!(p.entries.is_empty());
        assert_eq!(p.version, 0);
    }

    #[test]
    fn given_a_racing_writer_when_applying_then_the_fact_lands_after_a_retry() {
        let s = MyPageService::new(Memory { conflicts: Mutex::new(2), ..Memory::default() });
        let c = CustomerId::new("c-11").unwrap();
        let fact = Fact::MissionAchieved { mission_id: Uuid::now_v7(), mission_code: "daily-login".into(), points: 10 };
        block_on(s.apply(&c, std::slice::from_ref(&fact))).unwrap();
        let p = block_on(s.page(&c)).unwrap();
        assert_eq!((p.entries.len(), p.version), (1, 1));
        // the same fact again stores nothing new
        block_on(s.apply(&c, &[fact])).unwrap();
        assert_eq!(block_on(s.page(&c)).unwrap().version, 1);
    }
}
