//! `gamectl dlq`: the dead-letter stream for operators: list, show one event decoded,
//! redrive (exactly once in effect, safe to repeat), discard with a reason. By default
//! through the gateway with an admin's token (`game.admin.v1.DeadLetterService`, served
//! by the ops role); with `--bus` straight on the bus with the operator's key
//! (`<data-dir>/nats-auth/operator.nk`, written by `up`).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use contracts::pb::admin::v1 as pb;
use nats_adapter::dlq::{self, DeadLetter};
use nats_adapter::{NatsSettings, access};
use serde_json::{Value, json};

use crate::cli::{BusArgs, DlqArgs, DlqCommand, Global};
use crate::client::{Authed, Failure};

/// Longest wait for the bus, so that a command never hangs on a server that is down.
const TIMEOUT: Duration = Duration::from_secs(15);

pub async fn run(global: &Global, args: DlqArgs) -> ExitCode {
    match tokio::time::timeout(TIMEOUT, call(global, args)).await {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => fail(global, &e),
        Err(_) => fail(global, &format!("NATS did not answer within {TIMEOUT:?}")),
    }
}

/// Says why on stderr (`{"error": {"code": "BUS", "message"}}` with --json).
fn fail(global: &Global, why: &str) -> ExitCode {
    let line = if global.json {
        json!({"error": {"code": "BUS", "message": why}}).to_string()
    } else {
        format!("error: {why}")
    };
    let _ = writeln!(std::io::stderr(), "{line}");
    ExitCode::FAILURE
}

fn decoded(d: &DeadLetter) -> String {
    ops_service::decoded(d)
}

fn to_json(d: &DeadLetter, event: Option<&str>) -> Value {
    let mut v = json!({
        "id": d.seq,
        "consumer": d.consumer,
        "subject": d.subject,
        "reason": d.reason,
        "attempts": d.attempts,
        "occurredAt": d.occurred_at,
        "deadLetteredAt": d.dead_lettered_at,
        "eventId": d.event_id,
        "eventType": d.event_type,
        "customerId": d.customer_id,
    });
    if let Some(why) = &d.discarded {
        v["discarded"] = json!(why);
    }
    if let Some(event) = event {
        v["event"] = json!(event);
    }
    v
}

fn line(d: &DeadLetter) -> String {
    format!(
        "{:<6} {:<28} {:<26} {:<36} {:<12} {:>3}  {}  {}",
        d.seq, d.consumer, d.subject, d.event_id, d.customer_id, d.attempts, d.dead_lettered_at, d.reason
    )
}

fn print(global: &Global, json: impl FnOnce() -> Value, text: impl FnOnce() -> String) {
    let out = if global.json { serde_json::to_string_pretty(&json()).unwrap_or_default() } else { text() };
    let _ = writeln!(std::io::stdout(), "{out}");
}

/// The bus when neither a flag, `NATS_URL` nor the data dir's endpoints.json names one.
const DEFAULT_BUS: &str = "nats://127.0.0.1:4222";

/// The bus given, else the one `up` started for `data_dir`, else [`DEFAULT_BUS`].
///
/// # Errors
/// When the data dir's endpoints.json exists but cannot be read.
fn bus_url(given: Option<String>, data_dir: &std::path::Path) -> Result<String, String> {
    match given {
        Some(url) => Ok(url),
        None => Ok(crate::endpoints::Endpoints::load(data_dir)?.map_or_else(|| DEFAULT_BUS.to_owned(), |e| e.nats)),
    }
}

/// JetStream as the operator on the bus given, else the one `up` started for the data
/// dir (its endpoints.json); with the key given, or the one `up` wrote in the data dir.
///
/// # Errors
/// When the server cannot be reached or refuses the key.
pub async fn operator_js(global: &Global, bus: BusArgs) -> Result<async_nats::jetstream::Context, String> {
    let key = bus.nats_key.or_else(|| {
        let default: PathBuf =
            crate::services::nats_auth_dir(&global.data_dir).join(format!("{}.nk", access::OPERATOR));
        default.exists().then_some(default)
    });
    let url = bus_url(bus.nats_url, &global.data_dir)?;
    let settings = NatsSettings { nkey_seed_file: key, ..NatsSettings::at(url) };
    let client = nats_adapter::connect(&settings, access::OPERATOR).await.map_err(|e| e.to_string())?;
    Ok(async_nats::jetstream::new(client))
}

async fn call(global: &Global, args: DlqArgs) -> Result<(), String> {
    let js = operator_js(global, args.nats).await?;
    match args.command {
        DlqCommand::List { consumer, .. } => {
            let all = dlq::list(&js, consumer.as_deref()).await?;
            print_list(global, &all, "");
        }
        DlqCommand::Show { id } => {
            let d = dlq::get(&js, id).await?.ok_or_else(|| format!("no dead-lettered event {id}"))?;
            print_one(global, &d, &decoded(&d));
        }
        DlqCommand::Redrive { id, all, consumer } => {
            let ids: Vec<u64> = match (id, all) {
                (Some(id), false) => vec![id],
                (None, true) => dlq::list(&js, consumer.as_deref()).await?.iter().map(|d| d.seq).collect(),
                _ => return Err("redrive: give an ID or --all".into()),
            };
            print_redriven(global, &dlq::redrive_each(&js, ids).await?);
        }
        DlqCommand::Discard { id, reason } => {
            let done = dlq::discard(&js, id, &reason).await?;
            print_discarded(global, id, &reason, done);
        }
    }
    Ok(())
}

fn print_list(global: &Global, all: &[DeadLetter], next: &str) {
    print(
        global,
        || json!({ "deadLetters": all.iter().map(|d| to_json(d, None)).collect::<Vec<_>>(), "nextPageToken": next }),
        || {
            if all.is_empty() {
                return "the dead-letter stream holds nothing waiting".into();
            }
            let head = format!(
                "{:<6} {:<28} {:<26} {:<36} {:<12} {:>3}  {}  REASON",
                "ID", "CONSUMER", "SUBJECT", "EVENT", "CUSTOMER", "TRIES", "DEAD-LETTERED AT"
            );
            let text = std::iter::once(head).chain(all.iter().map(line)).collect::<Vec<_>>().join("\n");
            crate::output::with_next_page(text, next)
        },
    );
}

fn print_one(global: &Global, d: &DeadLetter, event: &str) {
    print(
        global,
        || to_json(d, Some(event)),
        || {
            let discarded = d.discarded.as_ref().map(|w| format!("\ndiscarded: {w}")).unwrap_or_default();
            format!(
                "dead letter {}\nconsumer: {}\nsubject: {}\nreason: {}\nattempts: {}\noccurred at: {}\n\
                 dead-lettered at: {}\nevent: {} {}\ncustomer: {}{discarded}\n{event}",
                d.seq,
                d.consumer,
                d.subject,
                d.reason,
                d.attempts,
                d.occurred_at,
                d.dead_lettered_at,
                d.event_type,
                d.event_id,
                d.customer_id,
            )
        },
    );
}

/// What a redrive did: the ids sent back, and those refused with why (they stay waiting).
fn print_redriven(global: &Global, done: &dlq::Redriven) {
    let refused = || done.refused.iter().map(|(id, reason)| json!({ "id": id, "reason": reason })).collect::<Vec<_>>();
    print(
        global,
        || json!({ "redriven": done.sent, "refused": refused() }),
        || {
            let sent = match done.sent.len() {
                0 if done.refused.is_empty() => "nothing to redrive (already redriven or discarded)".to_owned(),
                0 => "redriven none".to_owned(),
                n => format!("redriven {n}: {}", done.sent.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")),
            };
            let refused = done.refused.iter().map(|(id, reason)| format!("\nrefused {id}: {reason}"));
            std::iter::once(sent).chain(refused).collect()
        },
    );
}

fn print_discarded(global: &Global, id: u64, reason: &str, done: bool) {
    print(
        global,
        || json!({ "discarded": done }),
        || if done { format!("discarded {id}: {reason}") } else { format!("no dead-lettered event {id} waiting") },
    );
}

fn from_pb(d: pb::DeadLetter, payload: Vec<u8>) -> DeadLetter {
    DeadLetter {
        seq: d.id,
        consumer: d.consumer,
        subject: d.subject,
        reason: d.reason,
        attempts: d.attempts,
        occurred_at: d.occurred_at,
        dead_lettered_at: d.dead_lettered_at,
        event_id: d.event_id,
        event_type: d.event_type,
        customer_id: d.customer_id,
        payload: payload.into(),
        discarded: (!d.discard_reason.is_empty()).then_some(d.discard_reason),
    }
}

/// The same commands through the gateway (`game.admin.v1.DeadLetterService`, an admin's
/// token), printed the same way.
///
/// # Errors
/// The call's status (`PERMISSION_DENIED` for a player), or an unreachable gateway.
pub async fn via_gateway(
    global: &Global,
    mut c: pb::dead_letter_service_client::DeadLetterServiceClient<Authed>,
    command: DlqCommand,
) -> Result<(), Failure> {
    match command {
        DlqCommand::List { consumer, paging } => {
            let consumer = consumer.unwrap_or_default();
            let (mut items, mut token) = (Vec::new(), paging.page_token.clone().unwrap_or_default());
            loop {
                let r = c
                    .list_dead_letters(pb::ListDeadLettersRequest {
                        consumer: consumer.clone(),
                        page_size: paging.page_size.unwrap_or(0),
                        page_token: token,
                    })
                    .await?
                    .into_inner();
                items.extend(r.dead_letters.into_iter().map(|d| from_pb(d, Vec::new())));
                token = r.next_page_token;
                if !paging.all || token.is_empty() {
                    break;
                }
            }
            print_list(global, &items, &token);
        }
        DlqCommand::Show { id } => {
            let r = c.get_dead_letter(pb::GetDeadLetterRequest { id }).await?.into_inner();
            let d = r.dead_letter.ok_or_else(|| Failure::Local(format!("no dead-lettered event {id}")))?;
            print_one(global, &from_pb(d, r.payload), &r.event);
        }
        DlqCommand::Redrive { id, all, consumer } => {
            let req =
                pb::RedriveDeadLettersRequest { id: id.unwrap_or(0), all, consumer: consumer.unwrap_or_default() };
            let r = c.redrive_dead_letters(req).await?.into_inner();
            let refused = r.refused.into_iter().map(|d| (d.id, d.reason)).collect();
            print_redriven(global, &dlq::Redriven { sent: r.redriven, refused });
        }
        DlqCommand::Discard { id, reason } => {
            let r = c.discard_dead_letter(pb::DiscardDeadLetterRequest { id, reason: reason.clone() }).await?;
            print_discarded(global, id, &reason, r.into_inner().discarded);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::endpoints::Endpoints;

    #[test]
    fn the_bus_is_the_one_given_else_the_systems_in_the_data_dir_else_the_local_default() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(bus_url(None, dir.path()).unwrap(), "nats://127.0.0.1:4222", "no system here");
        let system = Endpoints {
            nats: "nats://127.0.0.1:50151".into(),
            gateway: None,
            services: BTreeMap::new(),
            metrics: BTreeMap::new(),
        };
        system.write(dir.path()).unwrap();
        assert_eq!(bus_url(None, dir.path()).unwrap(), "nats://127.0.0.1:50151", "the system's bus");
        assert_eq!(bus_url(Some("nats://n:4222".into()), dir.path()).unwrap(), "nats://n:4222", "the flag wins");
        std::fs::write(Endpoints::path(dir.path()), "{").unwrap();
        assert!(bus_url(None, dir.path()).unwrap_err().contains("endpoints.json"), "a broken file is named");
    }
}
