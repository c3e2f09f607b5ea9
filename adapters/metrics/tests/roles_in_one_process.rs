//! Several roles in one process (`gamectl up --all-in-one`, `serve --roles a,b`) share one
//! registry: the scrape shows the process as a whole, not whichever role sampled last.

use metrics_adapter::scrape::Scrape;

fn scrape() -> Scrape {
    Scrape::parse(&metrics_adapter::encode())
}

#[test]
fn the_roles_of_one_process_add_up_and_it_is_ready_only_when_all_are() {
    metrics_adapter::enable();

    // Two outboxes (say mission's and wallet's), sampled one after the other.
    let (mission, wallet) = (metrics_adapter::outbox().backlog(), metrics_adapter::outbox().backlog());
    mission.set(3, 2.5);
    wallet.set(4, 70.0);
    mission.set(5, 1.0);
    assert_eq!(scrape().value("outbox_pending", &[]), Some(9.0), "rows of both outboxes");
    assert_eq!(scrape().value("outbox_oldest_age_seconds", &[]), Some(70.0), "the oldest of the two");
    drop(wallet);
    assert_eq!(scrape().value("outbox_pending", &[]), Some(5.0), "a stopped role no longer counts");

    // Two databases: pools and inboxes summed; the inbox keeps its last count.
    let (a, b) = (metrics_adapter::store().database(), metrics_adapter::store().database());
    a.set(2, Some(100));
    b.set(1, Some(20));
    a.set(0, None);
    assert_eq!(scrape().value("db_pool_in_use", &[]), Some(1.0));
    assert_eq!(scrape().value("inbox_rows", &[]), Some(120.0));

    // Two gRPC servers: ready only while both are.
    let (gateway, gift) = (metrics_adapter::process().server(), metrics_adapter::process().server());
    gateway.ready(true);
    gift.ready(false);
    assert_eq!(scrape().value("readiness", &[]), Some(0.0), "one role not ready: the process is not");
    gift.ready(true);
    assert_eq!(scrape().value("readiness", &[]), Some(1.0));
}
