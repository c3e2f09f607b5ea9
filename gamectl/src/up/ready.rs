//! The table `up` prints once everything is SERVING.

use std::path::Path;

use super::replicas::Planned;
use crate::endpoints::Endpoints;

/// The ready table: the gateway first (the address to use), nats, the services (every
/// replica) in start order, where the e-mails go.
pub(super) fn ready_rows(table: &Endpoints, planned: &[Planned], mailbox: Option<&Path>) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    rows.extend(table.gateway.iter().map(|g| vec!["gateway".to_owned(), g.clone()]));
    rows.push(vec!["nats".to_owned(), table.nats.clone()]);
    for stage in stages(planned) {
        rows.extend(
            planned
                .iter()
                .filter(|p| p.spec.stage == stage && p.spec.name != "gateway")
                .filter_map(|p| table.services.get(&p.name).map(|a| vec![p.name.clone(), a.clone()])),
        );
    }
    rows.extend(mailbox.map(|d| vec!["mailbox".to_owned(), d.display().to_string()]));
    rows
}

/// The stages of the planned services, in start order.
pub(super) fn stages(planned: &[Planned]) -> Vec<u8> {
    let mut stages: Vec<u8> = planned.iter().map(|p| p.spec.stage).collect();
    stages.sort_unstable();
    stages.dedup();
    stages
}
