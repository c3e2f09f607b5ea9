//! Connect JSON's mapping, given/when/then, without a server (the end-to-end test runs
//! curl-like calls against the real gateway: tests/tests/connect_json.rs).

use super::*;

fn achieve() -> MethodDescriptor {
    method("/game.mission.v1.MissionService/AchieveMission", &["game.mission.v1.MissionService"]).expect("unary")
}

#[test]
fn only_the_unary_methods_of_routed_services_are_served_as_json() {
    let routed = ["game.mission.v1.MissionService", "game.mypage.v1.MyPageService"];
    assert!(method("/game.mission.v1.MissionService/AchieveMission", &routed).is_some());
    assert!(method("/game.mission.v1.MissionService/NoSuchMethod", &routed).is_none());
    assert!(method("/game.wallet.v1.WalletService/GetWallet", &routed).is_none(), "not routed here");
    assert!(method("/game.mypage.v1.MyPageService/WatchMyPage", &routed).is_none(), "server streaming");
    assert!(method("/", &routed).is_none());
}

#[test]
fn given_a_json_request_when_transcoded_then_it_is_one_grpc_frame_of_the_same_message() {
    let json = br#"{"customerId": "alice", "missionCode": "daily-login", "requestId": "r-1"}"#;
    let frame = transcode(json, &achieve().input()).expect("transcoded");
    assert_eq!(frame[0], 0, "uncompressed");
    let len = u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]) as usize;
    assert_eq!(len, frame.len() - 5);
    let m = crate::pb::mission::v1::AchieveMissionRequest::decode(&frame[5..]).expect("decodes");
    assert_eq!(
        (m.customer_id.as_str(), m.mission_code.as_str(), m.request_id.as_str()),
        ("alice", "daily-login", "r-1")
    );
    // The proto field names are accepted too, and an empty body is the empty message.
    assert!(transcode(br#"{"mission_code": "x"}"#, &achieve().input()).is_ok());
    assert_eq!(transcode(b"", &achieve().input()).expect("empty").len(), 5);
}

#[test]
fn given_bad_json_when_transcoded_then_invalid_argument_saying_why() {
    for bad in [&b"{"[..], br#"{"missionCode": 7}"#, br#"{"noSuchField": 1}"#, br#"[]"#, br#"{} {}"#] {
        let e = transcode(bad, &achieve().input()).expect_err(&String::from_utf8_lossy(bad));
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{}", String::from_utf8_lossy(bad));
        assert!(e.message().starts_with("request: not a JSON AchieveMissionRequest"), "{}", e.message());
    }
}

#[tokio::test]
async fn a_refusal_becomes_a_connect_error_with_its_http_status_and_error_info() {
    let mut status = crate::status::refused(
        "not enough points",
        "WALLET_NOT_ENOUGH_POINTS",
        vec![("cost_points", "50".into()), ("balance", "10".into())],
    );
    status.metadata_mut().insert("retry-after", "3".parse().unwrap());
    let res = error(&status);
    assert_eq!(res.status(), http::StatusCode::BAD_REQUEST);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(res.headers()["retry-after"], "3");
    let body: Value = serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["code"], "failed_precondition");
    assert_eq!(body["message"], "not enough points");
    assert_eq!(body["details"][0]["type"], "google.rpc.ErrorInfo");
    assert_eq!(body["details"][0]["debug"]["reason"], "WALLET_NOT_ENOUGH_POINTS");
    assert_eq!(body["details"][0]["debug"]["metadata"]["balance"], "10");
    let value = base64::engine::general_purpose::STANDARD_NO_PAD.decode(body["details"][0]["value"].as_str().unwrap());
    let info = tonic_types::pb::ErrorInfo::decode(value.unwrap().as_slice()).unwrap();
    assert_eq!(info.reason, "WALLET_NOT_ENOUGH_POINTS");
}

#[test]
fn every_code_has_connects_name_and_http_status() {
    use tonic::Code as C;
    assert_eq!(connect_code(C::Unauthenticated), ("unauthenticated", http::StatusCode::UNAUTHORIZED));
    assert_eq!(connect_code(C::PermissionDenied), ("permission_denied", http::StatusCode::FORBIDDEN));
    assert_eq!(connect_code(C::ResourceExhausted), ("resource_exhausted", http::StatusCode::TOO_MANY_REQUESTS));
    assert_eq!(connect_code(C::Unimplemented), ("unimplemented", http::StatusCode::NOT_IMPLEMENTED));
    assert_eq!(connect_code(C::Cancelled).0, "canceled");
    assert_eq!(connect_code(C::Unavailable), ("unavailable", http::StatusCode::SERVICE_UNAVAILABLE));
}
