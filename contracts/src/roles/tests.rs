use std::collections::HashSet;

use super::*;

#[test]
fn names_are_unique_and_found() {
    let names: HashSet<_> = ALL.iter().map(|r| r.name).collect();
    assert_eq!(names.len(), ALL.len());
    assert_eq!(find("wallet"), Some(&wallet::ROLE));
    assert_eq!(find("nope"), None);
}

#[test]
fn every_durable_is_named_after_its_role_and_declared_once() {
    let mut seen = HashSet::new();
    for role in ALL {
        for c in role.consumers {
            assert!(c.durable.starts_with(&format!("{}-", role.name)), "{} belongs to {}", c.durable, role.name);
            assert!(seen.insert(c.durable), "{} declared twice", c.durable);
        }
    }
}

#[test]
fn a_role_reads_only_other_roles_streams_and_each_stream_has_one_owner() {
    let owners: Vec<&str> = ALL.iter().filter_map(|r| r.stream.map(|s| s.name)).collect();
    let mut unique = owners.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(owners.len(), unique.len(), "one owner per stream: {owners:?}");
    for role in ALL {
        for c in role.consumers {
            assert_ne!(Some(c.stream), role.stream, "{} reads its own stream", c.durable);
            assert!(owners.contains(&c.stream.name), "{} reads {}, which nobody publishes", c.durable, c.stream.name);
        }
    }
}

#[test]
fn what_touches_the_bus_is_on_the_bus() {
    for role in ALL {
        let uses = role.stream.is_some() || !role.consumers.is_empty() || !role.buckets.is_empty() || role.dead_letters;
        assert!(!uses || role.bus, "{} uses the bus without being on it", role.name);
    }
    let on_bus: Vec<_> = ON_BUS.iter().map(|r| r.name).collect();
    assert_eq!(on_bus, ["mission", "reward", "wallet", "mypage", "gift", "notification", "ops"]);
    assert_eq!(RELATIONAL, ["mission", "reward", "wallet", "gift", "notification", "auth"]);
}

#[test]
fn filters_come_from_the_streams_declarations() {
    assert_eq!(
        reward::ALLOCATE,
        ConsumerSpec { stream: streams::MISSION, durable: "reward-allocate", filter: "game.mission.v1.achieved" }
    );
    assert_eq!(mypage::CONSUMERS[1].filter, "game.reward.v1.>");
    for c in ALL.iter().flat_map(|r| r.consumers) {
        assert!(c.filter == c.stream.subjects || c.stream.holds(c.filter), "{}", c.durable);
    }
}

#[test]
fn the_table_starts_auth_first_gift_before_the_wallet_and_the_gateway_last() {
    let stages = stages();
    assert_eq!(stages.first().map(Vec::as_slice), Some(["auth"].as_slice()));
    assert_eq!(stages.last().map(Vec::as_slice), Some(["gateway"].as_slice()));
    assert!(stage("gift") < stage("wallet"));
    let order = start_order();
    assert_eq!(order.len(), ALL.len());
    // Every role starts after those it must start after.
    for role in ALL {
        for after in role.starts_after(&ALL) {
            assert!(stage(after) < stage(role.name), "{} after {after}", role.name);
        }
    }
    assert_eq!(health_of("gateway"), "game.gateway.v1.Gateway");
    assert_eq!(health_of("mission"), "game.mission.v1.MissionService");
}

fn health_of(name: &str) -> &'static str {
    find(name).map(Role::health).unwrap_or_default()
}

#[test]
fn a_cycle_or_an_unknown_role_has_no_start_order() {
    let a = Role { name: "a", after: &["b"], ..NONE };
    let b = Role { name: "b", after: &["c"], ..NONE };
    let c = Role { name: "c", after: &["a"], ..NONE };
    let d = Role { name: "d", ..NONE };
    assert_eq!(stages_of(&[d, a, b, c]), Err(OrderError::Cycle(vec!["a", "b", "c"])));
    assert_eq!(stages_of(&[a, d]), Err(OrderError::Unknown { role: "a", after: "b" }));
    let c = Role { name: "c", ..NONE };
    assert_eq!(stages_of(&[a, b, c, d]), Ok(vec![vec!["c", "d"], vec!["b"], vec!["a"]]));
    // The front door starts after every role serving an API.
    let front = Role { name: "front", front: true, ..NONE };
    let api = Role { api: Some(crate::services::MISSION), ..c };
    assert_eq!(stages_of(&[front, api, d]), Ok(vec![vec!["c", "d"], vec!["front"]]));
}
