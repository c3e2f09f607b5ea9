//! The bench's gRPC baselines, measured in the same run as the system (tonic echo direct
//! and through a gateway, a health check; see baseline.rs for the stores' and JetStream's),
//! and how fast each role starts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use contracts::pb::notification::v1 as notification;
use e2e::{Service, System, with_token};
use notification::notification_service_client::NotificationServiceClient;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use super::{LARGE_ANSWER, channels};
use crate::baseline;
use crate::cli::Plan;
use crate::drive::{FnWorker, Run, closed_loop};
use crate::hist::grpc;
use crate::procs;
use crate::progress::Progress;
use crate::report::Results;

pub(super) async fn baselines(
    plan: &Plan,
    progress: &Progress,
    sys: &Arc<System>,
    private_nats: &e2e::NatsServer,
    r: &mut Results,
) -> Result<(), String> {
    let n = plan.players;
    let each = plan.baseline;
    let token = sys.tokens.customer("echo");
    let b = &mut r.baselines;

    progress.phase("baseline: tonic unary echo (in-process server)", each * 5);
    let echo = baseline::EchoServer::start(false, 0).await?;
    let echo_nodelay = baseline::EchoServer::start(true, 0).await?;
    b.echo_direct = echo_run(&channels(&echo.url(), n), &token, each).await.summary();
    b.echo_direct_nodelay = echo_run(&channels(&echo_nodelay.url(), n), &token, each).await.summary();
    b.echo_direct_1 = echo_run(&channels(&echo.url(), 1), &token, each).await.summary();
    {
        let large = baseline::EchoServer::start(false, LARGE_ANSWER).await?;
        let large_nodelay = baseline::EchoServer::start(true, LARGE_ANSWER).await?;
        b.echo_large_direct = echo_run(&channels(&large.url(), n), &token, each).await.summary();
        b.echo_large_direct_nodelay = echo_run(&channels(&large_nodelay.url(), n), &token, each).await.summary();
    }

    progress.phase("baseline: the same echo through a second gateway process", each * 2);
    let env = vec![
        ("NOTIFICATION_URL", echo.url()),
        ("JWKS_FILES", sys.tokens.jwks_file.display().to_string()),
        ("RATE_LIMIT_PER_SECOND", "1000000000".to_owned()),
        ("RATE_LIMIT_BURST", "1000000000".to_owned()),
    ];
    let dir = sys.dir.path().to_path_buf();
    let mut gw = tokio::task::block_in_place(|| Service::start("gateway-echo", "gateway", &env, &dir));
    gw.wait_serving(e2e::GATEWAY).await;
    // Its health check of the echo must have passed before the first call.
    tokio::time::sleep(Duration::from_millis(600)).await;
    b.echo_gateway = echo_run(&channels(&gw.url(), n), &token, each).await.summary();
    b.echo_gateway_1 = echo_run(&channels(&gw.url(), 1), &token, each).await.summary();
    tokio::task::block_in_place(|| gw.stop());

    progress.phase("baseline: Health/Check in-process, gateway, mission", each * 3);
    b.health_in_process = health_run(&channels(&echo.url(), n), "", each).await.summary();
    b.health_gateway = health_run(&channels(&sys.gateway().url(), n), "", each).await.summary();
    b.health_mission = health_run(&channels(&sys.mission.url(), n), e2e::MISSION, each).await.summary();
    drop((echo, echo_nodelay));

    progress.phase("baseline: JetStream publish", each * 2);
    match baseline::jetstream(&private_nats.url(), each, 256).await {
        Ok(j) => b.jetstream = Some(j),
        Err(e) => b.skipped.push(format!("JetStream: {e}")),
    }

    progress.phase("baseline: SQLite commits", each * 2);
    let sql_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    match baseline::sqlite(sql_dir.path().to_path_buf(), each).await {
        Ok(f) => b.sqlite = Some(f),
        Err(e) => b.skipped.push(format!("SQLite: {e}")),
    }
    progress.phase("baseline: PostgreSQL commits", each * 2);
    match baseline::postgres(each).await {
        Ok(f) => b.postgres = Some(f),
        Err(e) => b.skipped.push(format!("PostgreSQL: {e}")),
    }
    Ok(())
}

pub(super) async fn echo_run(chs: &[Channel], token: &str, each: Duration) -> Run {
    let workers = chs
        .iter()
        .map(|ch| {
            let client = NotificationServiceClient::new(with_token(ch.clone(), token));
            FnWorker(move || {
                let mut c = client.clone();
                async move {
                    Some(grpc(
                        c.list_notifications(notification::ListNotificationsRequest {
                            customer_id: "echo".into(),
                            ..Default::default()
                        })
                        .await,
                    ))
                }
            })
        })
        .collect();
    closed_loop(workers, each, None).await
}

pub(super) async fn health_run(chs: &[Channel], service: &str, each: Duration) -> Run {
    let workers = chs
        .iter()
        .map(|ch| {
            let client = HealthClient::new(ch.clone());
            let service = service.to_owned();
            FnWorker(move || {
                let mut c = client.clone();
                let req = HealthCheckRequest { service: service.clone() };
                async move { Some(grpc(c.check(req).await)) }
            })
        })
        .collect();
    closed_loop(workers, each, None).await
}

// ================================================================ start-up

/// Starts one more instance of each service on a private NATS and a fresh database, and
/// times the way to SERVING (health polled every 2 ms).
pub(super) async fn startup_times(plan: &Plan, sys: &Arc<System>, nats: &e2e::NatsServer, r: &mut Results) {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            r.notes.push(format!("start-up not measured: {e}"));
            return;
        }
    };
    let specs: [(&str, &str, bool); 8] = [
        ("gateway", e2e::GATEWAY, false),
        ("auth", e2e::AUTH, true),
        ("mission", e2e::MISSION, true),
        ("reward", e2e::REWARD, true),
        ("wallet", e2e::WALLET, true),
        ("mypage", e2e::MYPAGE, false),
        ("gift", e2e::GIFT, true),
        ("notification", e2e::NOTIFICATION, true),
    ];
    for (name, health_name, has_db) in specs {
        let mut listening = Vec::new();
        let mut serving = Vec::new();
        let mut rss = None;
        for rep in 0..plan.startup_reps {
            let mut _pg = None;
            let mut env: Vec<(&str, String)> = vec![
                ("NATS_URL", nats.url()),
                ("JWKS_FILES", sys.tokens.jwks_file.display().to_string()),
                ("MAILBOX_DIR", dir.path().join("mailbox").display().to_string()),
            ];
            if has_db {
                let url = if plan.postgres {
                    let db = tokio::task::block_in_place(e2e::TestDatabase::postgres);
                    let url = db.url.clone();
                    _pg = Some(db);
                    url
                } else {
                    format!("sqlite://{}", dir.path().join(format!("{name}-{rep}.db")).display())
                };
                env.push(("DATABASE_URL", url));
            }
            match name {
                "auth" => {
                    env.push(("AUTH_KEYS_DIR", dir.path().join(format!("keys-{rep}")).display().to_string()));
                    env.push(("ADMIN_PASSWORD_FILE", sys.secrets.admin_password_file.display().to_string()));
                    env.push(("REVOCATION_KEY_FILE", sys.secrets.revocation_key_file.display().to_string()));
                }
                "wallet" => {
                    env.push(("GIFT_URL", sys.gift.url()));
                    env.extend(e2e::wallet_account_env(&sys.auth, &sys.secrets));
                }
                "gateway" => {
                    for (var, svc) in [
                        ("MISSION_URL", &sys.mission),
                        ("REWARD_URL", &sys.reward),
                        ("WALLET_URL", &sys.wallet),
                        ("MYPAGE_URL", &sys.mypage),
                        ("GIFT_URL", &sys.gift),
                        ("NOTIFICATION_URL", &sys.notification),
                    ] {
                        env.push((var, svc.url()));
                    }
                }
                _ => {}
            }
            let t0 = Instant::now();
            let mut svc = tokio::task::block_in_place(|| {
                Service::start(&format!("startup-{name}-{rep}"), name, &env, dir.path())
            });
            listening.push(t0.elapsed().as_secs_f64() * 1000.0);
            let mut health = HealthClient::new(svc.channel());
            let limit = t0 + Duration::from_secs(30);
            let ok = loop {
                let status = health.check(HealthCheckRequest { service: health_name.to_owned() }).await;
                if matches!(&status, Ok(s) if s.get_ref().status == ServingStatus::Serving as i32) {
                    break true;
                }
                if Instant::now() > limit {
                    break false;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            };
            if ok {
                serving.push(t0.elapsed().as_secs_f64() * 1000.0);
                rss = rss.or_else(|| svc.pid().and_then(procs::rss_kib));
            } else {
                r.notes.push(format!("{name} did not become SERVING within 30 s: {}", svc.log()));
            }
            tokio::task::block_in_place(|| svc.stop());
        }
        if let Some(f) = r.services.iter_mut().find(|f| f.name == name) {
            f.start_listening_ms = median(&listening);
            f.start_serving_ms = median(&serving);
            f.start_serving_all_ms = serving;
            f.rss_after_start_kib = rss;
        }
    }
}

pub(super) fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    Some(s[s.len() / 2])
}
