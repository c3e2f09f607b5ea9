//! One trace per mission across the processes and the broker: the roles export their
//! spans over OTLP to a receiver this test runs (the collector's `TraceService`, from
//! `opentelemetry-proto`, served by tonic), and the spans of one mission form one tree.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use e2e::api::wallet_of;
use e2e::clients::*;
use e2e::{Options, System, eventually, with_token};
use grpc_adapter::pb::mission::v1 as mission;
use grpc_adapter::pb::wallet::v1 as wallet;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;

const FLOW: Duration = Duration::from_secs(30);

/// A span as received, with the role (service.name) that sent it.
#[derive(Debug, Clone)]
struct Received {
    role: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent: String,
    kind: i32,
    /// The span's status: 0 unset, 1 ok, 2 error.
    status: i32,
    /// String and integer attributes (integers written out).
    attributes: BTreeMap<String, String>,
}

#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<Received>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut got = self.0.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            let role = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref())
                .map(|v| format!("{:?}", v.value))
                .unwrap_or_default();
            let role = role.trim_start_matches("Some(StringValue(\"").trim_end_matches("\"))").to_owned();
            for ss in rs.scope_spans {
                for s in ss.spans {
                    got.push(Received {
                        role: role.clone(),
                        name: s.name,
                        trace_id: hex(&s.trace_id),
                        span_id: hex(&s.span_id),
                        parent: hex(&s.parent_span_id),
                        kind: s.kind,
                        status: s.status.as_ref().map_or(0, |st| st.code),
                        attributes: s
                            .attributes
                            .iter()
                            .filter_map(|a| match a.value.as_ref()?.value.as_ref()? {
                                Value::StringValue(v) => Some((a.key.clone(), v.clone())),
                                Value::IntValue(v) => Some((a.key.clone(), v.to_string())),
                                _ => None,
                            })
                            .collect(),
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn start_receiver() -> (SocketAddr, Receiver) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let receiver = Receiver::default();
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(receiver.clone()))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(server);
    (addr, receiver)
}

/// The tree under `root`, one span a line, indented by depth.
fn tree(spans: &[Received], root: &Received) -> String {
    fn walk(spans: &[Received], at: &Received, depth: usize, out: &mut String) {
        out.push_str(&format!("{}{} [{}]\n", "  ".repeat(depth), at.name, at.role));
        for child in spans.iter().filter(|s| s.parent == at.span_id) {
            walk(spans, child, depth + 1, out);
        }
    }
    let mut out = String::new();
    walk(spans, root, 0, &mut out);
    out
}

fn find<'a>(spans: &'a [Received], role: &str, name: &str) -> &'a Received {
    spans
        .iter()
        .find(|s| s.role == role && s.name == name)
        .unwrap_or_else(|| panic!("no span {name} from {role} in {spans:#?}"))
}

#[tokio::test]
async fn one_mission_is_one_trace_across_the_gateway_the_services_and_the_broker() {
    let (addr, receiver) = start_receiver().await;
    let service_env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}")),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
        // The notification's mail relay is down: its handler fails, and its process span
        // must say so.
        ("SMTP_URL", format!("smtp://127.0.0.1:{}", e2e::free_port())),
    ];
    let mut sys = System::start_with(Options { gateway: true, service_env, ..Options::default() }).await;

    let player = "c-traced";
    let answer = MissionServiceClient::new(with_token(sys.gateway().channel(), &sys.tokens.customer(player)))
        .achieve_mission(mission::AchieveMissionRequest {
            customer_id: player.into(),
            mission_code: "daily-login".into(),
            request_id: "traced".into(),
        })
        .await
        .expect("achieve through the gateway");
    assert!(answer.into_inner().mission.is_some());
    eventually(FLOW, "the reward reaches the wallet", || async {
        (wallet_of(&sys, player).await.items.len() == 1).then_some(())
    })
    .await;

    // The gateway's span of the call is the root; the rest of the chain arrives within
    // a few export intervals.
    let chain = [
        ("gateway", "game.mission.v1.MissionService/AchieveMission"),
        ("mission", "game.mission.v1.MissionService/AchieveMission"),
        ("mission", "game.mission.v1.achieved publish"),
        ("reward", "game.mission.v1.achieved process"),
        ("reward", "game.reward.v1.allocated publish"),
        ("wallet", "game.reward.v1.allocated process"),
        ("mission", "game.reward.v1.allocated process"),
        ("wallet", "game.wallet.v1.issued publish"),
        ("mypage", "game.wallet.v1.issued process"),
    ];
    let spans = eventually(FLOW, "the spans of the whole chain arrive", || async {
        let all = receiver.0.lock().unwrap().clone();
        let root = all.iter().find(|s| s.role == "gateway" && s.name == chain[0].1)?;
        let trace: Vec<Received> = all.iter().filter(|s| s.trace_id == root.trace_id).cloned().collect();
        chain.iter().all(|(role, name)| trace.iter().any(|s| s.role == *role && s.name == *name)).then_some(trace)
    })
    .await;
    let root = find(&spans, "gateway", chain[0].1);
    println!("the trace of one mission ({}):\n{}", root.trace_id, tree(&spans, root));

    let roles: BTreeSet<&str> = spans.iter().map(|s| s.role.as_str()).collect();
    assert!(roles.len() >= 5, "spans of at least five roles share the trace: {roles:?}");
    // Parents: each hop under the one before it.
    let parent_of = |child: (&str, &str), parent: (&str, &str)| {
        let (c, p) = (find(&spans, child.0, child.1), find(&spans, parent.0, parent.1));
        assert_eq!(c.parent, p.span_id, "{} [{}] is a child of {} [{}]", c.name, c.role, p.name, p.role);
    };
    parent_of(chain[1], chain[0]);
    parent_of(chain[2], chain[1]);
    parent_of(chain[3], chain[2]);
    parent_of(chain[4], chain[3]);
    parent_of(chain[5], chain[4]);
    parent_of(chain[6], chain[4]);
    parent_of(chain[7], chain[5]);
    parent_of(chain[8], chain[7]);
    // Every span of the trace hangs in the tree (no parent outside it but the root's).
    let ids: BTreeSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    for s in &spans {
        assert!(s.span_id == root.span_id || ids.contains(s.parent.as_str()), "{s:?} has no parent in the trace");
    }
    // Kinds: server, producer, consumer (OTLP's numbers).
    let kinds: BTreeMap<&str, i32> = spans.iter().map(|s| (s.name.as_str(), s.kind)).collect();
    assert_eq!(kinds[chain[0].1], 2, "server");
    assert_eq!(kinds[chain[2].1], 4, "producer");
    assert_eq!(kinds[chain[3].1], 5, "consumer");
    let process = find(&spans, "reward", chain[3].1);
    assert_eq!(process.attributes.get("messaging.consumer.group.name").map(String::as_str), Some("reward-allocate"));

    // The exchange: wallet's server span, its call to gift as a client span carrying the
    // breaker's decision, gift's server span under that.
    let reward_id = wallet_of(&sys, player).await.items[0].reward_id.clone();
    WalletServiceClient::new(sys.as_customer(&sys.wallet, player))
        .exchange_reward(wallet::ExchangeRewardRequest {
            customer_id: player.into(),
            reward_id,
            gift_code: "coffee".into(),
            request_id: "traced".into(),
        })
        .await
        .expect("exchange");
    let issue = "game.gift.v1.GiftIssuingService/IssueGift";
    let (server, client, gift) = eventually(FLOW, "the exchange's spans arrive", || async {
        let all = receiver.0.lock().unwrap().clone();
        let server = all.iter().find(|s| s.role == "wallet" && s.name.ends_with("WalletService/ExchangeReward"))?;
        let client = all.iter().find(|s| s.role == "wallet" && s.name == issue)?;
        let gift = all.iter().find(|s| s.role == "gift" && s.name == issue)?;
        Some((server.clone(), client.clone(), gift.clone()))
    })
    .await;
    assert_eq!(client.parent, server.span_id, "the call to gift is a child of the exchange");
    assert_eq!(client.kind, 3, "client");
    assert_eq!(client.attributes.get("breaker.state").map(String::as_str), Some("closed"));
    assert_eq!(gift.parent, client.span_id, "gift's span is a child of the wallet's call");
    assert_eq!(gift.trace_id, client.trace_id);
    assert_eq!(server.attributes.get("rpc.grpc.status_code").map(String::as_str), Some("0"));
    assert_eq!(server.status, 0, "OK leaves a server span's status unset");

    // A caller's mistake is not the server's fault: the code on the span, status unset.
    // A service that is down is: the gateway's span of that call is an error.
    let get_wallet = "game.wallet.v1.WalletService/GetWallet";
    let stranger = WalletServiceClient::new(with_token(sys.gateway().channel(), &sys.tokens.customer(player)))
        .get_wallet(wallet::GetWalletRequest { customer_id: "c-someone-else".into(), page_size: 0 })
        .await
        .expect_err("another customer's wallet");
    sys.wallet.stop();
    let down = WalletServiceClient::new(with_token(sys.gateway().channel(), &sys.tokens.customer(player)))
        .get_wallet(wallet::GetWalletRequest { customer_id: player.into(), page_size: 0 })
        .await
        .expect_err("the wallet service is down");
    assert_eq!(down.code(), tonic::Code::Unavailable);
    let (refused, failed) = eventually(FLOW, "the failed calls' spans arrive", || async {
        let all = receiver.0.lock().unwrap().clone();
        let at_gateway = |code: i32| {
            all.iter()
                .find(|s| {
                    s.role == "gateway"
                        && s.name == get_wallet
                        && s.attributes.get("rpc.grpc.status_code") == Some(&code.to_string())
                })
                .cloned()
        };
        Some((at_gateway(stranger.code() as i32)?, at_gateway(tonic::Code::Unavailable as i32)?))
    })
    .await;
    assert_eq!(refused.status, 0, "{:?} is the caller's: status unset", stranger.code());
    assert_eq!(failed.status, 2, "UNAVAILABLE is the server side's fault: status ERROR");

    // The exchange's gift.issued reached the notification, whose mail relay is down: the
    // process span of that delivery is an error; the deliveries that worked are not.
    let (mail, fine) = eventually(FLOW, "the notification's failed process span arrives", || async {
        let all = receiver.0.lock().unwrap().clone();
        let mail = all.iter().find(|s| s.role == "notification" && s.name.ends_with(" process") && s.status == 2)?;
        let fine = all.iter().find(|s| s.role == "reward" && s.name.ends_with(" process"))?;
        Some((mail.clone(), fine.clone()))
    })
    .await;
    assert_eq!(mail.kind, 5, "consumer");
    assert_eq!(fine.status, 0, "a handled event's process span has its status unset");
}

/// An OTLP/HTTP receiver: `POST /v1/traces` with a protobuf body, answered 200.
async fn start_http_receiver() -> (SocketAddr, Receiver) {
    use http_body_util::BodyExt as _;
    use prost::Message as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let receiver = Receiver::default();
    let keep = receiver.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let receiver = keep.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let receiver = receiver.clone();
                    async move {
                        let path = req.uri().path().to_owned();
                        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        if path == "/v1/traces"
                            && let Ok(export) = ExportTraceServiceRequest::decode(body)
                        {
                            let _ = receiver.export(tonic::Request::new(export)).await;
                        }
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Full::new(
                            bytes::Bytes::new(),
                        )))
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            });
        }
    });
    (addr, receiver)
}

#[tokio::test]
async fn spans_are_exported_over_otlp_http_protobuf_too_named_after_the_role() {
    let (addr, receiver) = start_http_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = e2e::Secrets::write(dir.path());
    let db = format!("sqlite://{}", dir.path().join("auth.db").display());
    let mut env = e2e::auth_env(&db, dir.path(), &secrets);
    env.extend([
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}")),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
    ]);
    let auth = e2e::Service::start("auth", "auth", &env, dir.path());
    auth.wait_serving(e2e::AUTH).await;
    let span = eventually(FLOW, "the health check's server span arrives over HTTP", || async {
        receiver.0.lock().unwrap().iter().find(|s| s.name == "grpc.health.v1.Health/Check").cloned()
    })
    .await;
    assert_eq!(span.role, "auth", "OTEL_SERVICE_NAME defaults to the role");
    assert_eq!(span.kind, 2, "server");
}

#[test]
fn an_unknown_otlp_protocol_stops_the_role_naming_the_setting() {
    let out = e2e::serve("auth")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
        .output()
        .expect("run auth");
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("OTEL_EXPORTER_OTLP_PROTOCOL: `http/json` is not one of grpc, http/protobuf"), "{said}");
}
