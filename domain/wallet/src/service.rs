//! The wallet application service.

use chrono::Utc;
use kernel::{CustomerId, Envelope, EventMeta, Inbound, StoreError};
use uuid::Uuid;

use crate::model::{Wallet, WalletItem};
use crate::ports::WalletRepository;

#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for WalletError {
    fn from(e: StoreError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

/// What the reward context told us about an allocation.
#[derive(Debug, Clone)]
pub struct RewardAllocated {
    pub reward_id: Uuid,
    pub mission_id: Uuid,
    pub customer_id: CustomerId,
    pub points: i64,
}

pub struct WalletService<R> {
    repo: R,
}

impl<R: WalletRepository> WalletService<R> {
    pub fn new(repo: R) -> Self {
        Self { repo }
    }

    pub async fn wallet(&self, customer: &CustomerId) -> Result<Wallet, WalletError> {
        let items = self.repo.list_by_customer(customer).await?;
        Ok(Wallet {
            customer_id: customer.clone(),
            items,
        })
    }

    /// Policy: a reward was allocated -> issue it into the customer's wallet (once).
    ///
    /// # Errors
    /// `Unavailable` when the store is down (retry later).
    pub async fn on_reward_allocated(
        &self,
        inbound: Inbound,
        cause: &EventMeta,
        fact: RewardAllocated,
    ) -> Result<(), WalletError> {
        let (item, event) = WalletItem::issue(
            fact.reward_id,
            fact.mission_id,
            fact.customer_id,
            fact.points,
        );
        let envelope = Envelope {
            meta: cause.caused(Utc::now()),
            event,
        };
        match self.repo.insert(&item, vec![envelope], inbound).await {
            Ok(()) | Err(StoreError::Duplicate) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};
    use std::sync::Mutex;

    use futures::executor::block_on;
    use kernel::new_id;

    use super::*;
    use crate::model::{ItemStatus, WalletEvent};

    #[derive(Default)]
    struct Memory {
        items: Mutex<HashMap<Uuid, WalletItem>>,
        inbox: Mutex<HashSet<Uuid>>,
        outbox: Mutex<Vec<Envelope<WalletEvent>>>,
    }

    impl WalletRepository for Memory {
        async fn get(&self, id: Uuid) -> Result<Option<WalletItem>, StoreError> {
            Ok(self.items.lock().unwrap().get(&id).cloned())
        }
        async fn list_by_customer(&self, c: &CustomerId) -> Result<Vec<WalletItem>, StoreError> {
            Ok(self
                .items
                .lock()
                .unwrap()
                .values()
                .filter(|i| &i.customer_id == c)
                .cloned()
                .collect())
        }
        async fn insert(
            &self,
            item: &WalletItem,
            events: Vec<Envelope<WalletEvent>>,
            inbound: Inbound,
        ) -> Result<(), StoreError> {
            if self.items.lock().unwrap().contains_key(&item.reward_id)
                || !self.inbox.lock().unwrap().insert(inbound.event_id)
            {
                return Err(StoreError::Duplicate);
            }
            self.items
                .lock()
                .unwrap()
                .insert(item.reward_id, item.clone());
            self.outbox.lock().unwrap().extend(events);
            Ok(())
        }
    }

    #[test]
    fn given_an_allocated_reward_delivered_twice_when_handled_then_the_wallet_holds_it_once() {
        let s = WalletService::new(Memory::default());
        let customer_id = CustomerId::new("c-11").unwrap();
        let fact = RewardAllocated {
            reward_id: new_id(),
            mission_id: new_id(),
            customer_id: customer_id.clone(),
            points: 10,
        };
        let meta = EventMeta::first(fact.mission_id, "req", customer_id.clone(), Utc::now());
        let inbound = Inbound {
            consumer: "wallet-issue",
            event_id: meta.event_id,
        };
        block_on(s.on_reward_allocated(inbound, &meta, fact.clone())).unwrap();
        block_on(s.on_reward_allocated(inbound, &meta, fact.clone())).unwrap();
        let wallet = block_on(s.wallet(&customer_id)).unwrap();
        assert_eq!(wallet.items.len(), 1);
        assert_eq!(wallet.items[0].status, ItemStatus::Issued);
        assert_eq!(wallet.available_points(), 10);
        assert_eq!(s.repo.outbox.lock().unwrap().len(), 1);
    }

    #[test]
    fn an_unknown_customer_has_an_empty_wallet() {
        let s = WalletService::new(Memory::default());
        let wallet = block_on(s.wallet(&CustomerId::new("nobody").unwrap())).unwrap();
        assert!(wallet.items.is_empty());
        assert_eq!(wallet.available_points(), 0);
    }
}
