//! The `WalletItem` aggregate (one per reward) and the `Wallet` it belongs to.

use kernel::CustomerId;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ItemStatus {
    Issued,
    Exchanged,
}

impl ItemStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Issued => "ISSUED",
            Self::Exchanged => "EXCHANGED",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "ISSUED" => Some(Self::Issued),
            "EXCHANGED" => Some(Self::Exchanged),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletItem {
    pub reward_id: Uuid,
    pub mission_id: Uuid,
    pub customer_id: CustomerId,
    pub points: i64,
    pub status: ItemStatus,
    pub gift_id: Option<Uuid>,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalletEvent {
    Issued {
        reward_id: Uuid,
        mission_id: Uuid,
        customer_id: CustomerId,
        points: i64,
    },
}

impl WalletItem {
    /// Policy "an allocated reward is issued into the wallet".
    pub fn issue(
        reward_id: Uuid,
        mission_id: Uuid,
        customer_id: CustomerId,
        points: i64,
    ) -> (Self, WalletEvent) {
        let item = Self {
            reward_id,
            mission_id,
            customer_id: customer_id.clone(),
            points,
            status: ItemStatus::Issued,
            gift_id: None,
            version: 0,
        };
        (
            item,
            WalletEvent::Issued {
                reward_id,
                mission_id,
                customer_id,
                points,
            },
        )
    }
}

/// A customer's wallet: every item issued to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wallet {
    pub customer_id: CustomerId,
    pub items: Vec<WalletItem>,
}

impl Wallet {
    /// Points of the items not yet exchanged.
    pub fn available_points(&self) -> i64 {
        self.items
            .iter()
            .filter(|i| i.status == ItemStatus::Issued)
            .map(|i| i.points)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_an_allocated_reward_when_issued_then_the_item_is_issued_and_counts_as_available() {
        let c = CustomerId::new("c-11").unwrap();
        let (item, event) = WalletItem::issue(Uuid::now_v7(), Uuid::now_v7(), c.clone(), 10);
        assert_eq!(item.status, ItemStatus::Issued);
        assert!(matches!(event, WalletEvent::Issued { points: 10, .. }));
        let mut exchanged = WalletItem::issue(Uuid::now_v7(), Uuid::now_v7(), c.clone(), 50).0;
        exchanged.status = ItemStatus::Exchanged;
        let wallet = Wallet {
            customer_id: c,
            items: vec![item, exchanged],
        };
        assert_eq!(wallet.available_points(), 10);
    }
}
