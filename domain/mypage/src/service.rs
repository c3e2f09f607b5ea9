//! The mypage application service: applies facts, answers reads.

use chrono::Utc;
use kernel::{CustomerId, StoreError};

use crate::model::{Fact, MyPage};
use crate::ports::PageStore;

#[derive(Debug, thiserror::Error)]
pub enum MyPageError {
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for MyPageError {
    fn from(e: StoreError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

const CONFLICT_RETRIES: usize = 16;

pub struct MyPageService<S> {
    store: S,
}

impl<S: PageStore> MyPageService<S> {
    pub fn new(store: S) -> Self {
        Self { store }
    }

    /// The customer's page; an empty page for an unknown customer.
    pub async fn page(&self, customer: &CustomerId) -> Result<MyPage, MyPageError> {
        Ok(self.store.get(customer).await?.unwrap_or_else(|| MyPage::empty(customer.clone())))
    }

    pub async fn watch(&self, customer: &CustomerId) -> Result<S::Updates, MyPageError> {
        Ok(self.store.watch(customer).await?)
    }

    /// Applies facts about one customer's page, storing it once if anything changed.
    /// Safe to repeat: the page ends up the same however often and in whatever order
    /// facts arrive.
    pub async fn apply(&self, customer: &CustomerId, facts: &[Fact]) -> Result<(), MyPageError> {
        for _ in 0..CONFLICT_RETRIES {
            let mut page = self.page(customer).await?;
            let now = Utc::now();
            let mut changed = false;
            for fact in facts {
                changed |= page.apply(fact, now);
            }
            if !changed {
                return Ok(());
            }
            match self.store.put(&page).await {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(MyPageError::Unavailable("too many concurrent changes".into()))
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

    /// In-memory store that makes the first `conflicts` puts fail like a racing writer.
    #[derive(Default)]
    struct Memory {
        pages: Mutex<HashMap<CustomerId, MyPage>>,
        conflicts: Mutex<usize>,
    }

    impl PageStore for Memory {
        type Updates = stream::Empty<Result<MyPage, StoreError>>;
        async fn get(&self, c: &CustomerId) -> Result<Option<MyPage>, StoreError> {
            Ok(self.pages.lock().unwrap().get(c).cloned())
        }
        async fn put(&self, page: &MyPage) -> Result<u64, StoreError> {
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
