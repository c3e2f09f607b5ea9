//! The edge against a client that does not play by the rules: malformed and oversized
//! requests, anonymous floods from one address, forged forwarding headers, stalled
//! services, and request ids reused for another request.

use e2e::raw::{self, Answer};
use e2e::{Options, System};
use grpc_adapter::pb::mission::v1 as mission;
use prost::Message;
use tonic::Code;

const ACHIEVE: &str = "/game.mission.v1.MissionService/AchieveMission";

/// Words of prost's and tonic's decoding errors that must never reach a client.
const DECODER_WORDS: &[&str] = &[
    "decode",
    "wire type",
    "UTF-8",
    "utf-8",
    "Protobuf",
    "buffer",
    "EOF",
    "varint",
    "customer_id",
    "mission_code",
    "AchieveMissionRequest.",
];

fn assert_no_decoder_text(what: &str, message: &str) {
    for word in DECODER_WORDS {
        assert!(!message.contains(word), "{what}: '{message}' shows the decoder's '{word}'");
    }
}

/// One malformed request: the HTTP body, the code and the message it must get.
struct Case {
    what: &'static str,
    body: Vec<u8>,
    code: Code,
    message: &'static str,
}

fn malformed_cases() -> Vec<Case> {
    let valid = mission::AchieveMissionRequest {
        customer_id: "mal".into(),
        mission_code: "daily-login".into(),
        request_id: "m-1".into(),
    }
    .encode_to_vec();
    let not_valid = "request: not a valid AchieveMissionRequest message";
    let mut invalid_utf8 = vec![0x0a, 3, b'm', b'a', b'l', 0x12, 2, 0xff, 0xfe];
    invalid_utf8.extend_from_slice(&[0x1a, 1, b'x']);
    let case = |what, body, code, message| Case { what, body, code, message };
    vec![
        case("invalid UTF-8 in a string field", raw::frame(&invalid_utf8), Code::InvalidArgument, not_valid),
        case("a truncated message", raw::frame(&valid[..valid.len() - 3]), Code::InvalidArgument, not_valid),
        case("a wrong wire type", raw::frame(&[0x08, 0x01]), Code::InvalidArgument, not_valid),
        case("a length past the end", raw::frame(&[0x0a, 0x7f, b'a']), Code::InvalidArgument, not_valid),
        case(
            "a huge inner length",
            raw::frame(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]),
            Code::InvalidArgument,
            not_valid,
        ),
        case(
            "a truncated frame",
            raw::frame(&valid)[..8].to_vec(),
            Code::InvalidArgument,
            "request: truncated message",
        ),
        case("no message", vec![], Code::InvalidArgument, "request: missing message"),
        case(
            "a bad compressed flag",
            vec![2, 0, 0, 0, 1, 0],
            Code::InvalidArgument,
            "request: malformed message prefix",
        ),
        case(
            "a huge length prefix",
            vec![0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3],
            Code::ResourceExhausted,
            "request: message larger than 4194304 bytes",
        ),
    ]
}

fn check(target: &str, case: &Case, answer: &Answer) {
    let what = format!("{} ({target})", case.what);
    assert_eq!(answer.code, case.code, "{what}: {answer:?}");
    assert_eq!(answer.message, case.message, "{what}");
    assert_no_decoder_text(&what, &answer.message);
}

#[tokio::test]
async fn malformed_requests_are_refused_by_name_without_decoder_text_everywhere_and_change_nothing() {
    let sys = System::start_with(Options { gateway: true, ..Options::default() }).await;
    let token = sys.tokens.customer("mal");
    let targets = [("gateway", sys.gateway()), ("mission", &sys.mission)];
    for (name, service) in targets {
        let channel = service.channel();
        for case in malformed_cases() {
            let answer = raw::grpc(&channel, ACHIEVE, Some(&token), case.body.clone()).await;
            check(&format!("gRPC to {name}"), &case, &answer);
            let (addr, token, body) = (service.addr, token.clone(), case.body.clone());
            let (_, answer) = tokio::task::spawn_blocking(move || {
                raw::grpc_web(addr, "POST", ACHIEVE, Some("application/grpc-web+proto"), Some(&token), &body)
            })
            .await
            .unwrap();
            check(&format!("grpc-web to {name}"), &case, &answer);
        }
        // A message over the limit, sent whole.
        let big = raw::frame(&vec![b'x'; 4 * 1024 * 1024 + 1]);
        let answer = raw::grpc(&channel, ACHIEVE, Some(&token), big).await;
        assert_eq!(answer.code, Code::ResourceExhausted, "oversized to {name}: {answer:?}");
        // A browser's GET, and a plain HTTP/1.1 GET, carry no message.
        for content_type in [Some("application/grpc-web+proto"), None] {
            let (addr, token) = (service.addr, token.clone());
            let (head, answer) = tokio::task::spawn_blocking(move || {
                raw::grpc_web(addr, "GET", ACHIEVE, content_type, Some(&token), &[])
            })
            .await
            .unwrap();
            if content_type.is_some() {
                // grpc-web is POST only: tonic-web refuses the method itself.
                assert!(head.starts_with("HTTP/1.1 405"), "grpc-web GET to {name}: {head}");
            } else {
                assert_eq!(answer.code, Code::InvalidArgument, "GET to {name}: {head} {answer:?}");
                assert_eq!(answer.message, "request: missing message");
            }
        }
        // The health service reads its requests the same way.
        let health = raw::grpc(&channel, "/grpc.health.v1.Health/Check", None, raw::frame(&[0x0a, 1, 0xff])).await;
        assert_eq!(health.code, Code::InvalidArgument, "health at {name}: {health:?}");
        assert_eq!(health.message, "request: not a valid HealthCheckRequest message");
    }
    // Nothing was achieved, and a well-formed request still works.
    let list = mission::ListMissionsRequest { customer_id: "mal".into() }.encode_to_vec();
    let answer = raw::grpc(
        &sys.gateway().channel(),
        "/game.mission.v1.MissionService/ListMissions",
        Some(&token),
        raw::frame(&list),
    )
    .await;
    assert_eq!(answer.code, Code::Ok, "{answer:?}");
    let missions = mission::ListMissionsResponse::decode(answer.data[0].as_slice()).unwrap().missions;
    assert!(missions.is_empty(), "a malformed request achieved {missions:?}");
}
