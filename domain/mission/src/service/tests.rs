use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use futures::executor::block_on;

use super::*;
use crate::model::{Caller, MissionCode, MissionEvent, MissionStatus};
use crate::rules::{MissionRule, Repeat, ReportedBy, Reporter, Schedule};

/// An in-memory repository, faithful to the port's contract: unique (customer, request
/// id) and unique (customer, mission, slot).
#[derive(Default)]
struct Memory {
    missions: Mutex<HashMap<Uuid, Mission>>,
    inbox: Mutex<HashSet<Uuid>>,
    outbox: Mutex<Vec<Envelope<MissionEvent>>>,
    /// The next this many history reads miss the latest achievement (a read that raced
    /// a concurrent insert).
    stale_reads: AtomicU32,
    history_reads: AtomicU32,
}

impl MissionRepository for Memory {
    async fn get(&self, id: Uuid) -> Result<Option<Mission>, StoreError> {
        Ok(self.missions.lock().unwrap().get(&id).cloned())
    }
    async fn find_by_request(&self, c: &CustomerId, r: &str) -> Result<Option<Mission>, StoreError> {
        Ok(self.missions.lock().unwrap().values().find(|m| &m.customer_id == c && m.request_id == r).cloned())
    }
    async fn list_by_customer(&self, c: &CustomerId, page: PageRequest) -> Result<Page<Mission>, StoreError> {
        let mut all: Vec<_> = self.missions.lock().unwrap().values().filter(|m| &m.customer_id == c).cloned().collect();
        all.sort_by_key(|m| std::cmp::Reverse(m.id));
        all.retain(|m| page.before.is_none_or(|b| m.id < b));
        all.truncate(page.size + 1);
        Ok(Page::from_probe(all, page, |m| m.id))
    }
    async fn history(
        &self,
        c: &CustomerId,
        code: &MissionCode,
        period: Option<&str>,
        requires: &[MissionCode],
    ) -> Result<History, StoreError> {
        self.history_reads.fetch_add(1, Ordering::SeqCst);
        let missions = self.missions.lock().unwrap();
        let mine: Vec<&Mission> = missions.values().filter(|m| &m.customer_id == c).collect();
        let mut in_period = match period {
            None => 0,
            Some(p) => mine
                .iter()
                .filter(|m| &m.code == code && m.slot.as_deref().is_some_and(|s| s.starts_with(&format!("{p}#"))))
                .count() as u32,
        };
        if self.stale_reads.load(Ordering::SeqCst) > 0 {
            self.stale_reads.fetch_sub(1, Ordering::SeqCst);
            in_period = in_period.saturating_sub(1);
        }
        let achieved: BTreeSet<MissionCode> =
            mine.iter().filter(|m| requires.contains(&m.code)).map(|m| m.code.clone()).collect();
        Ok(History { in_period, achieved })
    }
    async fn insert(&self, m: &Mission, events: Vec<Envelope<MissionEvent>>) -> Result<(), StoreError> {
        let mut missions = self.missions.lock().unwrap();
        let taken = missions.values().any(|o| {
            o.customer_id == m.customer_id
                && (o.request_id == m.request_id || (o.code == m.code && o.slot.is_some() && o.slot == m.slot))
        });
        if taken {
            return Err(StoreError::Duplicate);
        }
        missions.insert(m.id, m.clone());
        self.outbox.lock().unwrap().extend(events);
        Ok(())
    }
    async fn update(
        &self,
        m: &Mission,
        events: Vec<Envelope<MissionEvent>>,
        inbound: Option<Inbound>,
    ) -> Result<(), StoreError> {
        if let Some(i) = inbound
            && !self.inbox.lock().unwrap().insert(i.event_id)
        {
            return Err(StoreError::Duplicate);
        }
        let mut missions = self.missions.lock().unwrap();
        let stored = missions.get_mut(&m.id).ok_or(StoreError::Conflict)?;
        if stored.version != m.version {
            return Err(StoreError::Conflict);
        }
        *stored = Mission { version: m.version + 1, ..m.clone() };
        self.outbox.lock().unwrap().extend(events);
        Ok(())
    }
    async fn record_reward(
        &self,
        id: Uuid,
        c: &CustomerId,
        reward_id: Uuid,
        events: Vec<Envelope<MissionEvent>>,
        inbound: Inbound,
    ) -> Result<bool, StoreError> {
        if self.inbox.lock().unwrap().contains(&inbound.event_id) {
            return Err(StoreError::Duplicate);
        }
        let mut missions = self.missions.lock().unwrap();
        let Some(stored) = missions.get_mut(&id).filter(|m| &m.customer_id == c && m.reward_id.is_none()) else {
            return Ok(false);
        };
        self.inbox.lock().unwrap().insert(inbound.event_id);
        stored.reward_id = Some(reward_id);
        stored.status = MissionStatus::Rewarded;
        stored.version += 1;
        self.outbox.lock().unwrap().extend(events);
        Ok(true)
    }
}

fn service() -> MissionService<Memory> {
    MissionService::new(Memory::default(), Catalog::default())
}

fn code(c: &str) -> MissionCode {
    MissionCode::new(c).unwrap()
}

/// The default catalog plus `extra` missions.
fn with_missions(extra: Vec<MissionRule>) -> MissionService<Memory> {
    let mut missions = Catalog::default().missions().to_vec();
    missions.extend(extra);
    MissionService::new(Memory::default(), Catalog::new(Schedule::default(), missions).unwrap())
}

fn rule(c: &str, repeat: Repeat, max: u32, requires: &[&str]) -> MissionRule {
    MissionRule {
        code: code(c),
        title: c.into(),
        points: 5,
        repeat,
        max_per_period: max,
        reported_by: ReportedBy::Player,
        available_from: None,
        available_until: None,
        requires: requires.iter().map(|r| code(r)).collect(),
        points_expire_after: None,
    }
}

fn player() -> Caller {
    Caller { kind: Reporter::Player, subject: "c-11".into() }
}

fn game_server() -> Caller {
    Caller { kind: Reporter::GameServer, subject: "studio-1".into() }
}

fn try_achieve(s: &MissionService<Memory>, code: &str, request_id: &str, by: Caller) -> Result<Mission, MissionError> {
    block_on(s.achieve(AchieveMission::new("c-11", code, request_id, by).unwrap(), &RequestContext::default()))
}

fn achieve(s: &MissionService<Memory>, request_id: &str) -> Mission {
    try_achieve(s, "daily-login", request_id, player()).unwrap()
}

fn refusal(r: Result<Mission, MissionError>) -> Refusal {
    match r {
        Err(MissionError::Rule(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn given_a_request_when_achieving_then_one_mission_and_one_event_are_stored_with_slot_and_reporter() {
    let s = service();
    let m = achieve(&s, "r1");
    assert_eq!(m.status, MissionStatus::Achieved);
    assert!(m.slot.as_deref().is_some_and(|slot| slot.ends_with("#1")), "{:?}", m.slot);
    assert_eq!(m.reported_by, "c-11");
    let outbox = s.repo.outbox.lock().unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].meta.correlation_id, m.id.to_string());
    assert_eq!(outbox[0].meta.causation_id, "r1");
}

#[test]
fn given_a_cap_of_one_without_prerequisites_then_the_achievement_is_one_write_without_a_read() {
    let s = service();
    achieve(&s, "r1");
    assert_eq!(s.repo.history_reads.load(Ordering::SeqCst), 0);
}

#[test]
fn given_an_achieved_request_when_the_same_request_comes_again_then_the_same_mission_is_returned() {
    let s = service();
    let first = achieve(&s, "r1");
    let again = achieve(&s, "r1");
    assert_eq!(first.id, again.id);
    assert_eq!(s.repo.outbox.lock().unwrap().len(), 1);
}

#[test]
fn given_daily_login_achieved_today_when_reported_again_with_a_new_request_then_it_is_refused_and_nothing_written() {
    let s = service();
    achieve(&s, "r1");
    let r = refusal(try_achieve(&s, "daily-login", "r2", player()));
    assert_eq!(r.reason(), "MISSION_PERIOD_LIMIT_REACHED");
    assert!(r.next_available().is_some());
    assert_eq!(s.repo.missions.lock().unwrap().len(), 1);
    assert_eq!(s.repo.outbox.lock().unwrap().len(), 1);
    // without a request id it is a new request, refused all the same
    refusal(try_achieve(&s, "daily-login", "", player()));
}

#[test]
fn given_a_once_mission_when_a_game_server_reports_it_twice_then_the_second_is_refused() {
    let s = service();
    let m = try_achieve(&s, "first-win", "w1", game_server()).unwrap();
    assert_eq!((m.slot.as_deref(), m.reported_by.as_str()), (Some("once#1"), "studio-1"));
    assert_eq!(refusal(try_achieve(&s, "first-win", "w2", game_server())).reason(), "MISSION_ALREADY_ACHIEVED");
}

#[test]
fn given_a_game_server_mission_when_a_player_reports_it_then_permission_is_denied_and_nothing_written() {
    let s = service();
    let r = refusal(try_achieve(&s, "first-win", "w1", player()));
    assert!(r.is_permission());
    assert!(s.repo.missions.lock().unwrap().is_empty());
}

#[test]
fn given_an_unlimited_mission_then_a_game_server_reports_it_any_number_of_times() {
    let s = service();
    for i in 0..10 {
        let m = try_achieve(&s, "match-played", &format!("m{i}"), game_server()).unwrap();
        assert_eq!(m.slot, None);
    }
    assert_eq!(s.repo.missions.lock().unwrap().len(), 10);
    assert_eq!(s.repo.history_reads.load(Ordering::SeqCst), 0, "nothing to count: no read");
}

#[test]
fn given_an_unlimited_mission_with_a_prerequisite_then_each_report_reads_whether_it_was_achieved() {
    let s = with_missions(vec![rule("ranked-match", Repeat::Unlimited, 1, &["tutorial-complete"])]);
    let r = refusal(try_achieve(&s, "ranked-match", "m1", player()));
    assert!(matches!(r, Refusal::PrerequisiteMissing { .. }), "{r:?}");
    try_achieve(&s, "tutorial-complete", "t1", player()).unwrap();
    try_achieve(&s, "ranked-match", "m2", player()).unwrap();
    assert_eq!(s.repo.history_reads.load(Ordering::SeqCst), 2, "one read per report of ranked-match");
}

#[test]
fn given_a_cap_of_two_when_reported_three_times_then_the_third_is_refused_but_a_retry_of_the_first_is_answered() {
    let s = with_missions(vec![rule("quest", Repeat::Daily, 2, &[])]);
    let first = try_achieve(&s, "quest", "q1", player()).unwrap();
    let second = try_achieve(&s, "quest", "q2", player()).unwrap();
    assert_eq!(
        (first.slot.unwrap().split_once('#').unwrap().1, second.slot.unwrap().split_once('#').unwrap().1),
        ("1", "2")
    );
    assert_eq!(refusal(try_achieve(&s, "quest", "q3", player())).reason(), "MISSION_PERIOD_LIMIT_REACHED");
    assert_eq!(try_achieve(&s, "quest", "q1", player()).unwrap().id, first.id, "a retry is never refused");
}

#[test]
fn given_a_stale_history_when_the_slot_turns_out_taken_then_it_decides_again_on_a_fresh_read() {
    let s = with_missions(vec![rule("quest", Repeat::Daily, 3, &[])]);
    try_achieve(&s, "quest", "q1", player()).unwrap();
    // The read misses q1, as if it had raced it: slot #1 is tried, taken, re-read -> #2.
    s.repo.stale_reads.store(1, Ordering::SeqCst);
    let m = try_achieve(&s, "quest", "q2", player()).unwrap();
    assert!(m.slot.unwrap().ends_with("#2"));
    assert_eq!(s.repo.history_reads.load(Ordering::SeqCst), 3, "q1's read, q2's stale read, the re-read");
}

#[test]
fn given_a_prerequisite_when_it_is_missing_then_refused_and_once_achieved_then_accepted() {
    let s = with_missions(vec![rule("boss", Repeat::Once, 1, &["tutorial-complete"])]);
    let r = refusal(try_achieve(&s, "boss", "b1", player()));
    assert_eq!(r.reason(), "MISSION_PREREQUISITE_MISSING");
    try_achieve(&s, "tutorial-complete", "t1", player()).unwrap();
    try_achieve(&s, "boss", "b2", player()).unwrap();
}

#[test]
fn availability_says_per_mission_what_is_left_and_when_next() {
    let s = service();
    achieve(&s, "r1");
    try_achieve(&s, "first-win", "w1", game_server()).unwrap();
    let now = Utc::now();
    let a = block_on(s.availability(&CustomerId::new("c-11").unwrap(), now)).unwrap();
    let by = |c: &str| a.iter().find(|x| x.code.as_str() == c).unwrap();
    assert!(!by("daily-login").available);
    assert!(by("daily-login").next_at.is_some_and(|t| t > now));
    assert_eq!(by("daily-login").remaining, Some(0));
    assert!(!by("first-win").available);
    assert_eq!(by("first-win").next_at, None, "never again");
    assert!(by("tutorial-complete").available);
    assert_eq!((by("match-played").available, by("match-played").remaining), (true, None));
}

#[test]
fn given_an_achieved_request_when_its_id_comes_with_another_mission_then_it_is_refused_and_nothing_is_written() {
    // A mission the rules would accept and one they refuse (a prerequisite missing): the
    // reuse is the answer either way.
    let s = with_missions(vec![rule("boss", Repeat::Once, 1, &["tutorial-complete"])]);
    let first = achieve(&s, "r1");
    for (code, by) in [("first-win", game_server()), ("tutorial-complete", player()), ("boss", player())] {
        let err = try_achieve(&s, code, "r1", by).unwrap_err();
        assert!(matches!(err, MissionError::Refused(MissionRefusal::RequestReused(_))), "{code}: {err:?}");
        assert_eq!(err.to_string(), "request id already used for another request");
    }
    assert_eq!(block_on(s.list(&first.customer_id, PageRequest::default())).unwrap().items, vec![first.clone()]);
    assert_eq!(s.repo.outbox.lock().unwrap().len(), 1);
    // the same request again still gets the first answer; another customer's key is theirs
    assert_eq!(achieve(&s, "r1").id, first.id);
    let theirs = AchieveMission::new("c-12", "first-win", "r1", game_server()).unwrap();
    assert_ne!(block_on(s.achieve(theirs, &RequestContext::default())).unwrap().id, first.id);
}

#[test]
fn given_a_mission_when_its_reward_allocation_is_delivered_twice_then_it_is_recorded_once() {
    let s = service();
    let m = achieve(&s, "r1");
    let cause = s.repo.outbox.lock().unwrap()[0].meta.clone();
    let inbound = Inbound { consumer: "mission-record-reward", event_id: new_id() };
    let reward = new_id();
    block_on(s.on_reward_allocated(inbound, &cause, m.id, reward)).unwrap();
    block_on(s.on_reward_allocated(inbound, &cause, m.id, reward)).unwrap();
    let stored = block_on(s.get(m.id)).unwrap();
    assert_eq!(stored.status, MissionStatus::Rewarded);
    assert_eq!(stored.reward_id, Some(reward));
    let outbox = s.repo.outbox.lock().unwrap();
    assert_eq!(outbox.len(), 2, "achieved + one rewarded");
    assert_eq!(outbox[1].meta.causation_id, cause.event_id.to_string());
}

#[test]
fn given_a_rewarded_mission_when_another_reward_is_allocated_for_it_then_it_keeps_the_first_and_says_so() {
    let s = service();
    let m = achieve(&s, "r1");
    let cause = s.repo.outbox.lock().unwrap()[0].meta.clone();
    let first = new_id();
    block_on(s.on_reward_allocated(Inbound { consumer: "x", event_id: new_id() }, &cause, m.id, first)).unwrap();
    let err = block_on(s.on_reward_allocated(Inbound { consumer: "x", event_id: new_id() }, &cause, m.id, new_id()));
    assert!(matches!(err, Err(MissionError::Refused(_))), "{err:?}");
    assert_eq!(block_on(s.get(m.id)).unwrap().reward_id, Some(first));
    assert_eq!(s.repo.outbox.lock().unwrap().len(), 2, "achieved + one rewarded");
}

#[test]
fn given_another_customers_mission_when_a_reward_is_allocated_for_it_then_it_is_not_found() {
    let s = service();
    let m = achieve(&s, "r1");
    let cause = EventMeta::first(new_id(), "r", CustomerId::new("c-12").unwrap(), Utc::now());
    let err = block_on(s.on_reward_allocated(Inbound { consumer: "x", event_id: new_id() }, &cause, m.id, new_id()));
    assert!(matches!(err, Err(MissionError::NotFound("mission"))), "{err:?}");
    assert_eq!(block_on(s.get(m.id)).unwrap().reward_id, None);
}

#[test]
fn given_no_mission_when_a_reward_is_allocated_for_it_then_it_is_not_found() {
    let s = service();
    let cause = EventMeta::first(new_id(), "r", CustomerId::new("c").unwrap(), Utc::now());
    let inbound = Inbound { consumer: "x", event_id: new_id() };
    let err = block_on(s.on_reward_allocated(inbound, &cause, new_id(), new_id())).unwrap_err();
    assert!(matches!(err, MissionError::NotFound("mission")));
}

/// The registry of customers, as the auth service answers it.
struct Registered(&'static [&'static str]);

impl Customers for Registered {
    async fn is_registered(&self, c: &CustomerId) -> Result<bool, StoreError> {
        Ok(self.0.contains(&c.as_str()))
    }
}

#[test]
fn given_an_id_nobody_registered_when_a_game_server_reports_it_then_it_is_refused_and_nothing_is_written() {
    let s = service().with_customers(Registered(&["c-12"]));
    let report = |who: &str| AchieveMission::new(who, "daily-login", "r1", game_server()).unwrap();
    let e = block_on(s.achieve(report("c-11"), &RequestContext::default())).unwrap_err();
    assert!(matches!(&e, MissionError::UnknownCustomer(c) if c.as_str() == "c-11"), "{e:?}");
    assert!(e.to_string().starts_with("customer_id: "), "{e}");
    assert!(e.to_string().contains("RegisterCustomer"), "what to do next: {e}");
    assert!(s.repo.missions.lock().unwrap().is_empty() && s.repo.outbox.lock().unwrap().is_empty());

    // A registered one, under any spelling, is recorded.
    let m = block_on(s.achieve(report("C-12"), &RequestContext::default())).unwrap();
    assert_eq!(m.customer_id.as_str(), "c-12");
}

#[test]
fn given_a_players_own_report_then_the_registry_is_not_asked() {
    // Their token shows they are a customer (of our auth service or another provider).
    let s = service().with_customers(Registered(&[]));
    let m = block_on(
        s.achieve(AchieveMission::new("c-11", "daily-login", "r1", player()).unwrap(), &RequestContext::default()),
    );
    assert_eq!(m.unwrap().customer_id.as_str(), "c-11");
}

#[test]
fn given_the_registry_is_down_when_a_game_server_reports_then_it_is_unavailable() {
    struct Down;
    impl Customers for Down {
        async fn is_registered(&self, _: &CustomerId) -> Result<bool, StoreError> {
            Err(StoreError::Unavailable("auth: connection refused".into()))
        }
    }
    let s = service().with_customers(Down);
    let e = block_on(
        s.achieve(AchieveMission::new("c-11", "daily-login", "", game_server()).unwrap(), &RequestContext::default()),
    );
    assert!(matches!(e, Err(MissionError::Unavailable(_))), "{e:?}");
}
