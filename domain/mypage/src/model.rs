//! The `MyPage` document and how facts change it.

use chrono::{DateTime, Utc};
use kernel::CustomerId;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MissionStatus {
    Achieved,
    Rewarded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RewardStatus {
    Allocated,
    Issued,
    Exchanged,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GiftStatus {
    Issued,
    Used,
}

/// One mission and what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    pub mission_id: Uuid,
    pub mission_code: String,
    pub mission_status: Option<MissionStatus>,
    pub reward_id: Option<Uuid>,
    pub reward_status: Option<RewardStatus>,
    pub points: i64,
    pub gift_id: Option<Uuid>,
    pub gift_code: String,
    pub gift_status: Option<GiftStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MyPage {
    pub customer_id: CustomerId,
    /// Ordered by mission id, i.e. by time of achievement (UUIDv7).
    pub entries: Vec<Entry>,
    /// The store's revision of the document; 0 for a page not stored yet.
    pub version: u64,
    pub updated_at: Option<DateTime<Utc>>,
}

/// Something that happened elsewhere, as my page needs to know it. Every fact names the
/// mission it belongs to, so it can create the entry if it arrives first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    MissionAchieved { mission_id: Uuid, mission_code: String, points: i64 },
    MissionRewarded { mission_id: Uuid, reward_id: Uuid },
    RewardAllocated { mission_id: Uuid, reward_id: Uuid, points: i64, mission_code: String },
    RewardIssued { mission_id: Uuid, reward_id: Uuid, points: i64 },
    RewardExchanged { mission_id: Uuid, reward_id: Uuid, points: i64, gift_id: Uuid, gift_code: String },
    GiftIssued { mission_id: Uuid, reward_id: Uuid, gift_id: Uuid, gift_code: String },
    GiftUsed { mission_id: Uuid, gift_id: Uuid },
}

impl Fact {
    pub fn mission_id(&self) -> Uuid {
        match self {
            Self::MissionAchieved { mission_id, .. }
            | Self::MissionRewarded { mission_id, .. }
            | Self::RewardAllocated { mission_id, .. }
            | Self::RewardIssued { mission_id, .. }
            | Self::RewardExchanged { mission_id, .. }
            | Self::GiftIssued { mission_id, .. }
            | Self::GiftUsed { mission_id, .. } => *mission_id,
        }
    }
}

fn forward<T: Ord + Copy>(slot: &mut Option<T>, to: T) {
    if slot.is_none_or(|now| to > now) {
        *slot = Some(to);
    }
}

fn fill<T: Copy>(slot: &mut Option<T>, value: T) {
    if slot.is_none() {
        *slot = Some(value);
    }
}

fn fill_text(slot: &mut String, value: &str) {
    if slot.is_empty() {
        value.clone_into(slot);
    }
}

impl MyPage {
    pub fn empty(customer_id: CustomerId) -> Self {
        Self { customer_id, entries: Vec::new(), version: 0, updated_at: None }
    }

    /// Points of every reward issued to the customer (exchanged ones included).
    pub fn points_issued(&self) -> i64 {
        self.entries.iter().filter(|e| e.reward_status >= Some(RewardStatus::Issued)).map(|e| e.points).sum()
    }

    /// Points of the rewards exchanged for gifts.
    pub fn points_exchanged(&self) -> i64 {
        self.entries.iter().filter(|e| e.reward_status == Some(RewardStatus::Exchanged)).map(|e| e.points).sum()
    }

    fn entry(&mut self, mission_id: Uuid) -> &mut Entry {
        let at = match self.entries.binary_search_by_key(&mission_id, |e| e.mission_id) {
            Ok(at) => at,
            Err(at) => {
                self.entries.insert(at, Entry { mission_id, ..Entry::default() });
                at
            }
        };
        &mut self.entries[at]
    }

    /// Applies a fact; returns whether the page changed. Applying the same fact twice,
    /// or an older fact after a newer one, changes nothing.
    pub fn apply(&mut self, fact: &Fact, now: DateTime<Utc>) -> bool {
        let before = self.entries.clone();
        let e = self.entry(fact.mission_id());
        match fact {
            Fact::MissionAchieved { mission_code, points, .. } => {
                forward(&mut e.mission_status, MissionStatus::Achieved);
                fill_text(&mut e.mission_code, mission_code);
                if e.points == 0 {
                    e.points = *points;
                }
            }
            Fact::MissionRewarded { reward_id, .. } => {
                forward(&mut e.mission_status, MissionStatus::Rewarded);
                fill(&mut e.reward_id, *reward_id);
            }
            Fact::RewardAllocated { reward_id, points, mission_code, .. } => {
                fill(&mut e.reward_id, *reward_id);
                forward(&mut e.reward_status, RewardStatus::Allocated);
                fill_text(&mut e.mission_code, mission_code);
                e.points = *points;
            }
            Fact::RewardIssued { reward_id, points, .. } => {
                fill(&mut e.reward_id, *reward_id);
                forward(&mut e.reward_status, RewardStatus::Issued);
                e.points = *points;
            }
            Fact::RewardExchanged { reward_id, points, gift_id, gift_code, .. } => {
                fill(&mut e.reward_id, *reward_id);
                forward(&mut e.reward_status, RewardStatus::Exchanged);
                e.points = *points;
                fill(&mut e.gift_id, *gift_id);
                fill_text(&mut e.gift_code, gift_code);
                forward(&mut e.gift_status, GiftStatus::Issued);
            }
            Fact::GiftIssued { reward_id, gift_id, gift_code, .. } => {
                fill(&mut e.reward_id, *reward_id);
                fill(&mut e.gift_id, *gift_id);
                fill_text(&mut e.gift_code, gift_code);
                forward(&mut e.gift_status, GiftStatus::Issued);
            }
            Fact::GiftUsed { gift_id, .. } => {
                fill(&mut e.gift_id, *gift_id);
                forward(&mut e.gift_status, GiftStatus::Used);
            }
        }
        let changed = self.entries != before;
        if changed {
            self.updated_at = Some(now);
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> MyPage {
        MyPage::empty(CustomerId::new("c-11").unwrap())
    }

    fn flow() -> (Uuid, Uuid, Vec<Fact>) {
        let (m, r) = (Uuid::now_v7(), Uuid::now_v7());
        let facts = vec![
            Fact::MissionAchieved { mission_id: m, mission_code: "daily-login".into(), points: 10 },
            Fact::RewardAllocated { mission_id: m, reward_id: r, points: 10, mission_code: "daily-login".into() },
            Fact::MissionRewarded { mission_id: m, reward_id: r },
            Fact::RewardIssued { mission_id: m, reward_id: r, points: 10 },
        ];
        (m, r, facts)
    }

    #[test]
    fn given_the_reward_flow_in_order_when_applied_then_the_entry_shows_the_issued_reward() {
        let (m, r, facts) = flow();
        let mut p = page();
        for f in &facts {
            assert!(p.apply(f, Utc::now()));
        }
        let e = &p.entries[0];
        assert_eq!(e.mission_id, m);
        assert_eq!(e.reward_id, Some(r));
        assert_eq!(e.mission_status, Some(MissionStatus::Rewarded));
        assert_eq!(e.reward_status, Some(RewardStatus::Issued));
        assert_eq!((e.points, p.points_issued(), p.points_exchanged()), (10, 10, 0));
    }

    #[test]
    fn given_the_same_facts_in_reverse_order_and_twice_then_the_page_is_the_same() {
        let (_, _, facts) = flow();
        let mut in_order = page();
        for f in &facts {
            in_order.apply(f, Utc::now());
        }
        let mut reversed = page();
        for f in facts.iter().rev().chain(facts.iter()) {
            reversed.apply(f, Utc::now());
        }
        assert_eq!(reversed.entries, in_order.entries);
    }

    #[test]
    fn given_an_issued_reward_when_a_late_allocation_arrives_then_the_status_does_not_move_back() {
        let (m, r, _) = flow();
        let mut p = page();
        p.apply(&Fact::RewardIssued { mission_id: m, reward_id: r, points: 10 }, Utc::now());
        assert!(!p.apply(&Fact::RewardIssued { mission_id: m, reward_id: r, points: 10 }, Utc::now()));
        p.apply(
            &Fact::RewardAllocated { mission_id: m, reward_id: r, points: 10, mission_code: "x".into() },
            Utc::now(),
        );
        assert_eq!(p.entries[0].reward_status, Some(RewardStatus::Issued));
        assert_eq!(p.entries[0].mission_code, "x", "the late fact still fills what was missing");
    }

    #[test]
    fn entries_are_kept_in_mission_order() {
        let mut p = page();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        p.apply(&Fact::MissionAchieved { mission_id: b, mission_code: "b".into(), points: 1 }, Utc::now());
        p.apply(&Fact::MissionAchieved { mission_id: a, mission_code: "a".into(), points: 1 }, Utc::now());
        assert_eq!(p.entries.iter().map(|e| e.mission_id).collect::<Vec<_>>(), vec![a, b]);
    }

    #[test]
    fn an_exchanged_then_used_gift_counts_as_exchanged_points() {
        let (m, r, facts) = flow();
        let mut p = page();
        for f in &facts {
            p.apply(f, Utc::now());
        }
        let g = Uuid::now_v7();
        p.apply(&Fact::GiftUsed { mission_id: m, gift_id: g }, Utc::now());
        p.apply(
            &Fact::RewardExchanged { mission_id: m, reward_id: r, points: 10, gift_id: g, gift_code: "coffee".into() },
            Utc::now(),
        );
        assert_eq!(p.entries[0].gift_status, Some(GiftStatus::Used));
        assert_eq!((p.points_issued(), p.points_exchanged()), (10, 10));
    }
}
