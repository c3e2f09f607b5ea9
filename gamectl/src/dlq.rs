//! `gamectl dlq`: the dead-letter stream for operators, straight on the bus with the
//! operator's key (`<data-dir>/nats-auth/operator.nk`, written by `up`): list, show one
//! event decoded, redrive (exactly once in effect, safe to repeat), discard with a reason.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use grpc_adapter::pb::events::v1 as ev;
use nats_adapter::dlq::{self, DeadLetter};
use nats_adapter::{NatsSettings, access};
use prost::Message as _;
use serde_json::{Value, json};

use crate::cli::{BusArgs, DlqArgs, DlqCommand, Global};

/// Longest wait for the bus, so that a command never hangs on a server that is down.
const TIMEOUT: Duration = Duration::from_secs(15);

pub async fn run(global: &Global, args: DlqArgs) -> ExitCode {
    match tokio::time::timeout(TIMEOUT, call(global, args)).await {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            let _ = writeln!(std::io::stderr(), "error: {e}");
            ExitCode::FAILURE
        }
        Err(_) => {
            let _ = writeln!(std::io::stderr(), "error: NATS did not answer within {TIMEOUT:?}");
            ExitCode::FAILURE
        }
    }
}

fn decoded(d: &DeadLetter) -> String {
    let p = d.payload.as_ref();
    let text = match d.event_type.rsplit('.').next().unwrap_or_default() {
        "MissionAchieved" => ev::MissionAchieved::decode(p).map(|m| format!("{m:?}")),
        "MissionRewarded" => ev::MissionRewarded::decode(p).map(|m| format!("{m:?}")),
        "RewardAllocated" => ev::RewardAllocated::decode(p).map(|m| format!("{m:?}")),
        "RewardIssued" => ev::RewardIssued::decode(p).map(|m| format!("{m:?}")),
        "RewardExchanged" => ev::RewardExchanged::decode(p).map(|m| format!("{m:?}")),
        "GiftIssued" => ev::GiftIssued::decode(p).map(|m| format!("{m:?}")),
        "GiftUsed" => ev::GiftUsed::decode(p).map(|m| format!("{m:?}")),
        "NotificationSent" => ev::NotificationSent::decode(p).map(|m| format!("{m:?}")),
        _ => return format!("{} bytes of an unknown event type", p.len()),
    };
    text.unwrap_or_else(|e| format!("undecodable: {e}"))
}

fn to_json(d: &DeadLetter, with_event: bool) -> Value {
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
    if with_event {
        v["event"] = json!(decoded(d));
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

/// JetStream as the operator: the key given, or the one `up` wrote in the data dir.
///
/// # Errors
/// When the server cannot be reached or refuses the key.
pub async fn operator_js(global: &Global, bus: BusArgs) -> Result<async_nats::jetstream::Context, String> {
    let key = bus.nats_key.or_else(|| {
        let default: PathBuf =
            crate::services::nats_auth_dir(&global.data_dir).join(format!("{}.nk", access::OPERATOR));
        default.exists().then_some(default)
    });
    let settings = NatsSettings { nkey_seed_file: key, ..NatsSettings::at(bus.nats_url) };
    let client = nats_adapter::connect(&settings, access::OPERATOR).await.map_err(|e| e.to_string())?;
    Ok(async_nats::jetstream::new(client))
}

async fn call(global: &Global, args: DlqArgs) -> Result<(), String> {
    let js = operator_js(global, args.bus).await?;
    match args.command {
        DlqCommand::List { consumer } => {
            let all = dlq::list(&js, consumer.as_deref()).await?;
            print(
                global,
                || json!({ "deadLetters": all.iter().map(|d| to_json(d, false)).collect::<Vec<_>>() }),
                || {
                    if all.is_empty() {
                        return "the dead-letter stream holds nothing waiting".into();
                    }
                    let head = format!(
                        "{:<6} {:<28} {:<26} {:<36} {:<12} {:>3}  {}  REASON",
                        "ID", "CONSUMER", "SUBJECT", "EVENT", "CUSTOMER", "TRIES", "DEAD-LETTERED AT"
                    );
                    std::iter::once(head).chain(all.iter().map(line)).collect::<Vec<_>>().join("\n")
                },
            );
        }
        DlqCommand::Show { id } => {
            let d = dlq::get(&js, id).await?.ok_or_else(|| format!("no dead-lettered event {id}"))?;
            print(
                global,
                || to_json(&d, true),
                || {
                    let discarded = d.discarded.as_ref().map(|w| format!("\ndiscarded: {w}")).unwrap_or_default();
                    format!(
                        "dead letter {}\nconsumer: {}\nsubject: {}\nreason: {}\nattempts: {}\noccurred at: {}\n\
                         dead-lettered at: {}\nevent: {} {}\ncustomer: {}{discarded}\n{}",
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
                        decoded(&d)
                    )
                },
            );
        }
        DlqCommand::Redrive { id, all, consumer } => {
            let ids: Vec<u64> = match (id, all) {
                (Some(id), false) => vec![id],
                (None, true) => dlq::list(&js, consumer.as_deref()).await?.iter().map(|d| d.seq).collect(),
                _ => return Err("redrive: give an ID or --all".into()),
            };
            let mut sent = Vec::new();
            for id in ids {
                if dlq::redrive(&js, id).await? {
                    sent.push(id);
                }
            }
            print(
                global,
                || json!({ "redriven": sent }),
                || match sent.len() {
                    0 => "nothing to redrive (already redriven or discarded)".into(),
                    n => format!("redriven {n}: {}", sent.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")),
                },
            );
        }
        DlqCommand::Discard { id, reason } => {
            let done = dlq::discard(&js, id, &reason).await?;
            print(
                global,
                || json!({ "discarded": done }),
                || {
                    if done {
                        format!("discarded {id}: {reason}")
                    } else {
                        format!("no dead-lettered event {id} waiting")
                    }
                },
            );
        }
    }
    Ok(())
}
