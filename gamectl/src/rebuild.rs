//! `gamectl rebuild mypage --bus`: my page rebuilt from the streams into a new
//! generation while the old one keeps serving, then reads switched over
//! (`mypage_service::rebuild`), in this process, on the bus with the operator's key —
//! for when the mypage service cannot do it. Without `--bus` the command asks the mypage
//! service through the gateway (`MyPageAdminService/RebuildMyPage`, an admin's token;
//! see `client.rs`).

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use contracts::pb::mypage::v1 as pb;
use serde_json::json;

use crate::cli::{Global, RebuildArgs};

pub async fn run(global: &Global, args: RebuildArgs) -> ExitCode {
    match call(global, args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn call(global: &Global, args: RebuildArgs) -> Result<(), String> {
    let js = crate::dlq::operator_js(global, args.nats).await?;
    let bucket = js.get_key_value(&args.bucket).await.map_err(|e| format!("bucket {}: {e}", args.bucket))?;
    let app = Arc::new(mypage_service::App::new(bucket));
    let options = mypage_service::rebuild::Options {
        allow_partial: args.allow_partial,
        hold_before_switch: std::time::Duration::from_millis(args.hold_before_switch_ms),
    };
    let r = mypage_service::rebuild::rebuild(&js, &app, options).await.map_err(|e| e.to_string())?;
    print(
        global,
        &args.view,
        &pb::RebuildMyPageResponse {
            previous_generation: r.previous,
            generation: r.generation,
            events_replayed: r.events,
            events_skipped: r.rejected,
            values_purged: r.purged,
            seconds: r.took.as_secs_f64(),
        },
    );
    Ok(())
}

/// What a rebuild did, as JSON or text; the same whichever way it ran.
pub fn print(global: &Global, view: &str, r: &pb::RebuildMyPageResponse) {
    let out = if global.json {
        serde_json::to_string_pretty(&json!({
            "view": view,
            "previousGeneration": r.previous_generation,
            "generation": r.generation,
            "eventsReplayed": r.events_replayed,
            "eventsSkipped": r.events_skipped,
            "valuesPurged": r.values_purged,
            "seconds": r.seconds,
        }))
        .unwrap_or_default()
    } else {
        format!(
            "{view} rebuilt: generation {} serves (was {}); {} events replayed{} in {:.1}s; {} values of older generations purged",
            r.generation,
            r.previous_generation,
            r.events_replayed,
            if r.events_skipped > 0 {
                format!(", {} skipped (not handleable)", r.events_skipped)
            } else {
                String::new()
            },
            r.seconds,
            r.values_purged
        )
    };
    let _ = writeln!(std::io::stdout(), "{out}");
}
