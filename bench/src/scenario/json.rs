//! AchieveMission as a game server written without gRPC calls it: Connect JSON over
//! HTTP/1.1 keep-alive, one connection per simulated server, at the gateway.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use e2e::{GAME_SERVER, System};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use tonic::Code;

use super::code_for;
use crate::cli::Plan;
use crate::drive::Worker;
use crate::hist::Outcome;

pub(super) struct JsonWorker {
    client: Client<HttpConnector, Full<Bytes>>,
    url: String,
    authorization: String,
    prefix: String,
    per_player: u64,
    n: u64,
    accepted: Arc<AtomicU64>,
}

/// One JSON client per player of the plan, each with its own connection.
pub(super) fn json_workers(plan: &Plan, sys: &System, tag: &str, accepted: &Arc<AtomicU64>) -> Vec<JsonWorker> {
    let url = format!("{}/game.mission.v1.MissionService/AchieveMission", sys.gateway().url());
    let authorization = format!("Bearer {}", sys.tokens.game_server(GAME_SERVER));
    (0..plan.players)
        .map(|i| {
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            JsonWorker {
                client: Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector),
                url: url.clone(),
                authorization: authorization.clone(),
                prefix: format!("{tag}{i}"),
                per_player: u64::from(plan.missions_per_player.max(1)),
                n: 0,
                accepted: accepted.clone(),
            }
        })
        .collect()
}

impl Worker for JsonWorker {
    fn call(&mut self) -> impl Future<Output = Option<Outcome>> + Send {
        // A new player every `missions_per_player` missions, as the gRPC players do.
        let (player, done) = (self.n / self.per_player, self.n % self.per_player);
        self.n += 1;
        let body = serde_json::json!({
            "customerId": format!("{}-{player}", self.prefix),
            "missionCode": code_for(done),
            "requestId": uuid::Uuid::now_v7().to_string(),
        })
        .to_string();
        let req = http::Request::post(&self.url)
            .header("content-type", "application/json")
            .header("authorization", &self.authorization)
            .body(Full::new(Bytes::from(body)));
        let (client, accepted) = (self.client.clone(), self.accepted.clone());
        async move {
            let Ok(req) = req else { return Some(Err(Code::Internal)) };
            let Ok(res) = client.request(req).await else { return Some(Err(Code::Unavailable)) };
            let status = res.status();
            let _ = res.into_body().collect().await;
            match status.as_u16() {
                200 => {
                    accepted.fetch_add(1, Ordering::Relaxed);
                    Some(Ok(()))
                }
                400 => Some(Err(Code::FailedPrecondition)),
                429 => Some(Err(Code::ResourceExhausted)),
                503 => Some(Err(Code::Unavailable)),
                _ => Some(Err(Code::Unknown)),
            }
        }
    }
}
