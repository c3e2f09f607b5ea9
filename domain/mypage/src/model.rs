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

/// A customer's page: the totals of every entry and the most recent entries; older
/// entries live in the [`Archive`], read page by page, so a page costs the same to update
/// and to read after 100,000 missions as after one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MyPage {
    pub customer_id: CustomerId,
    /// The most recent entries (at most [`crate::archive::RECENT`] once settled), ordered
    /// by mission id, i.e. by time of achievement (UUIDv7).
    pub entries: Vec<Entry>,
    /// Points of every reward issued to the customer (exchanged ones included).
    pub points_issued: i64,
    /// Points of the rewards exchanged for gifts.
    pub points_exchanged: i64,
    /// Every entry, archived ones included.
    pub entry_count: u64,
    pub archive: crate::archive::Archive,
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

impl Entry {
    /// Applies a fact about this entry's mission; returns whether the entry changed.
    /// Applying the same fact twice, or an older fact after a newer one, changes nothing.
    pub fn apply(&mut self, fact: &Fact) -> bool {
        let before = self.clone();
        let e = self;
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
        *e != before
    }

    /// What both copies of one entry know (statuses only move forward, ids and codes are
    /// set once): merging is idempotent and order does not matter, so a stale copy
    /// written late cannot undo a newer one.
    pub fn merge(&mut self, other: &Entry) {
        if let Some(s) = other.mission_status {
            forward(&mut self.mission_status, s);
        }
        if let Some(s) = other.reward_status {
            forward(&mut self.reward_status, s);
        }
        if let Some(s) = other.gift_status {
            forward(&mut self.gift_status, s);
        }
        if let Some(r) = other.reward_id {
            fill(&mut self.reward_id, r);
        }
        if let Some(g) = other.gift_id {
            fill(&mut self.gift_id, g);
        }
        fill_text(&mut self.mission_code, &other.mission_code);
        fill_text(&mut self.gift_code, &other.gift_code);
        self.points = self.points.max(other.points);
    }

    /// The points this entry adds to [`MyPage::points_issued`].
    pub fn issued_points(&self) -> i64 {
        if self.reward_status >= Some(RewardStatus::Issued) { self.points } else { 0 }
    }

    /// The points this entry adds to [`MyPage::points_exchanged`].
    pub fn exchanged_points(&self) -> i64 {
        if self.reward_status == Some(RewardStatus::Exchanged) { self.points } else { 0 }
    }
}

impl MyPage {
    pub fn empty(customer_id: CustomerId) -> Self {
        Self {
            customer_id,
            entries: Vec::new(),
            points_issued: 0,
            points_exchanged: 0,
            entry_count: 0,
            archive: crate::archive::Archive::default(),
            version: 0,
            updated_at: None,
        }
    }

    /// Counts an entry's change in the totals.
    fn account(&mut self, before: &Entry, after: &Entry) {
        self.points_issued += after.issued_points() - before.issued_points();
        self.points_exchanged += after.exchanged_points() - before.exchanged_points();
    }

    /// Applies a fact; returns whether the page changed. `archived` is the stored copy of
    /// the fact's entry when it is archived (see [`crate::archive`]); the page's own
    /// pending copy of it, if any, is merged in. Applying the same fact twice, or an older
    /// fact after a newer one, changes nothing.
    pub fn apply(&mut self, fact: &Fact, archived: Option<&Entry>, now: DateTime<Utc>) -> bool {
        let id = fact.mission_id();
        let changed = match self.entries.binary_search_by_key(&id, |e| e.mission_id) {
            Ok(at) => {
                let before = self.entries[at].clone();
                let changed = self.entries[at].apply(fact);
                let after = self.entries[at].clone();
                self.account(&before, &after);
                changed
            }
            Err(at) => match self.archive.stored(id, archived) {
                Some(before) => {
                    let mut after = before.clone();
                    let changed = after.apply(fact);
                    if changed {
                        self.account(&before, &after);
                        self.archive.keep(after);
                    }
                    changed
                }
                None => {
                    let mut e = Entry { mission_id: id, ..Entry::default() };
                    e.apply(fact);
                    self.account(&Entry::default(), &e);
                    self.entries.insert(at, e);
                    self.entry_count += 1;
                    true
                }
            },
        };
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
            assert!(p.apply(f, None, Utc::now()));
        }
        let e = &p.entries[0];
        assert_eq!(e.mission_id, m);
        assert_eq!(e.reward_id, Some(r));
        assert_eq!(e.mission_status, Some(MissionStatus::Rewarded));
        assert_eq!(e.reward_status, Some(RewardStatus::Issued));
        assert_eq!((e.points, p.points_issued, p.points_exchanged), (10, 10, 0));
    }

    #[test]
    fn given_the_same_facts_in_reverse_order_and_twice_then_the_page_is_the_same() {
        let (_, _, facts) = flow();
        let mut in_order = page();
        for f in &facts {
            in_order.apply(f, None, Utc::now());
        }
        let mut reversed = page();
        for f in facts.iter().rev().chain(facts.iter()) {
            reversed.apply(f, None, Utc::now());
        }
        assert_eq!(reversed.entries, in_order.entries);
    }

    #[test]
    fn given_an_issued_reward_when_a_late_allocation_arrives_then_the_status_does_not_move_back() {
        let (m, r, _) = flow();
        let mut p = page();
        p.apply(&Fact::RewardIssued { mission_id: m, reward_id: r, points: 10 }, None, Utc::now());
        assert!(!p.apply(&Fact::RewardIssued { mission_id: m, reward_id: r, points: 10 }, None, Utc::now()));
        p.apply(
            &Fact::RewardAllocated { mission_id: m, reward_id: r, points: 10, mission_code: "x".into() },
            None,
            Utc::now(),
        );
        assert_eq!(p.entries[0].reward_status, Some(RewardStatus::Issued));
        assert_eq!(p.entries[0].mission_code, "x", "the late fact still fills what was missing");
    }

    #[test]
    fn entries_are_kept_in_mission_order() {
        let mut p = page();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        p.apply(&Fact::MissionAchieved { mission_id: b, mission_code: "b".into(), points: 1 }, None, Utc::now());
        p.apply(&Fact::MissionAchieved { mission_id: a, mission_code: "a".into(), points: 1 }, None, Utc::now());
        assert_eq!(p.entries.iter().map(|e| e.mission_id).collect::<Vec<_>>(), vec![a, b]);
    }

    #[test]
    fn an_exchanged_then_used_gift_counts_as_exchanged_points() {
        let (m, r, facts) = flow();
        let mut p = page();
        for f in &facts {
            p.apply(f, None, Utc::now());
        }
        let g = Uuid::now_v7();
        p.apply(&Fact::GiftUsed { mission_id: m, gift_id: g }, None, Utc::now());
        p.apply(
            &Fact::RewardExchanged { mission_id: m, reward_id: r, points: 10, gift_id: g, gift_code: "coffee".into() },
            None,
            Utc::now(),
        );
        assert_eq!(p.entries[0].gift_status, Some(GiftStatus::Used));
        assert_eq!((p.points_issued, p.points_exchanged), (10, 10));
    }
}
