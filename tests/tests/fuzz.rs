//! A bounded fuzz run against the live system, through the gateway: random and mutated
//! request bytes to every method (valid messages with flipped bytes, truncations, wrong
//! wire types, huge lengths, invalid UTF-8, deep nesting, lying frame prefixes, noise),
//! with and without a token. Every answer must be a status that names no decoder
//! internals and is neither `INTERNAL` nor `UNKNOWN`; every process stays up; and what
//! was written is exactly what was answered `OK` (a refused request writes nothing).
//!
//! `FUZZ_SECONDS` (default 20) bounds the run: `FUZZ_SECONDS=600 cargo test -p e2e --test
//! fuzz` runs it for ten minutes. A failure is shrunk to a minimal input by proptest and
//! printed with the seed; `FUZZ_SEED=<seed>` replays a run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use e2e::raw::{self, Answer};
use e2e::{Options, System};
use grpc_adapter::pb::gift::v1 as gift;
use grpc_adapter::pb::mission::v1 as mission;
use grpc_adapter::pb::wallet::v1 as wallet;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint};
use prost_types::field_descriptor_proto::Type;
use prost_types::{DescriptorProto, FileDescriptorSet};
use tonic::Code;

const CUSTOMER: &str = "fuzz";

/// Words of prost's and tonic's decoding errors that must never reach a client.
const DECODER_WORDS: &[&str] =
    &["decode", "wire type", "UTF-8", "utf-8", "Protobuf", "buffer", "EOF", "varint", "recursion", "tag"];

/// A method to fuzz and a valid request message for it.
#[derive(Debug, Clone)]
struct Target {
    path: String,
    seed: Vec<u8>,
    streams: bool,
}

/// Every public method the gateway routes, and the gateway's own health check, each with
/// a valid request built from its descriptor.
fn targets() -> Vec<Target> {
    let set = FileDescriptorSet::decode(grpc_adapter::pb::FILE_DESCRIPTOR_SET).unwrap();
    let mut messages = BTreeMap::new();
    for file in &set.file {
        for m in &file.message_type {
            messages.insert(format!(".{}.{}", file.package(), m.name()), m.clone());
        }
    }
    let mut targets = Vec::new();
    for file in &set.file {
        for service in &file.service {
            for method in &service.method {
                let input = &messages[method.input_type()];
                targets.push(Target {
                    path: format!("/{}.{}/{}", file.package(), service.name(), method.name()),
                    seed: valid(input, &messages, 0),
                    streams: method.server_streaming(),
                });
            }
        }
    }
    targets.push(Target {
        path: "/grpc.health.v1.Health/Check".into(),
        seed: tonic_health::pb::HealthCheckRequest { service: String::new() }.encode_to_vec(),
        streams: false,
    });
    targets.sort_by(|a, b| a.path.cmp(&b.path));
    targets
}

/// A plausible message: every field set, strings chosen by their name.
fn valid(message: &DescriptorProto, messages: &BTreeMap<String, DescriptorProto>, depth: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    for f in &message.field {
        let tag = u32::try_from(f.number()).unwrap();
        match f.r#type() {
            Type::String => {
                let value = match f.name() {
                    "customer_id" => CUSTOMER,
                    "request_id" => "fuzz-request",
                    "mission_code" => "daily-login",
                    "gift_code" => "coffee",
                    "password" => "correct horse battery",
                    n if n.ends_with("_id") => "0190f5b4-8c7a-7d3e-9a1b-2c3d4e5f6a7b",
                    _ => "x",
                };
                encode_key(tag, WireType::LengthDelimited, &mut buf);
                encode_varint(value.len() as u64, &mut buf);
                buf.extend_from_slice(value.as_bytes());
            }
            Type::Message if depth < 3 => {
                let inner = messages.get(f.type_name()).map(|m| valid(m, messages, depth + 1)).unwrap_or_default();
                encode_key(tag, WireType::LengthDelimited, &mut buf);
                encode_varint(inner.len() as u64, &mut buf);
                buf.extend_from_slice(&inner);
            }
            Type::Double | Type::Fixed64 | Type::Sfixed64 => {
                encode_key(tag, WireType::SixtyFourBit, &mut buf);
                buf.extend_from_slice(&1u64.to_le_bytes());
            }
            Type::Float | Type::Fixed32 | Type::Sfixed32 => {
                encode_key(tag, WireType::ThirtyTwoBit, &mut buf);
                buf.extend_from_slice(&1u32.to_le_bytes());
            }
            Type::Message | Type::Group | Type::Bytes => {}
            _ => {
                encode_key(tag, WireType::Varint, &mut buf);
                encode_varint(50, &mut buf);
            }
        }
    }
    buf
}

/// One change to a message's bytes.
#[derive(Debug, Clone)]
enum Mutation {
    FlipByte {
        at: usize,
        xor: u8,
    },
    Truncate {
        keep: usize,
    },
    Insert {
        at: usize,
        bytes: Vec<u8>,
    },
    /// A field with a wire type that may not be its own, and a payload for that type.
    WrongWireType {
        field: u32,
        wire: u8,
    },
    /// A length-delimited field claiming far more bytes than follow.
    HugeLength {
        field: u32,
        length: u64,
    },
    InvalidUtf8 {
        field: u32,
    },
    /// Groups of an unknown field nested `depth` deep.
    DeepGroups {
        depth: usize,
    },
    Noise {
        bytes: Vec<u8>,
    },
}

/// What happens to the gRPC frame around the message.
#[derive(Debug, Clone)]
enum Framing {
    Proper,
    LengthOff(i64),
    HugeLength,
    Flag(u8),
    NoPrefix,
    Empty,
    Twice,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 1..=255u8).prop_map(|(at, xor)| Mutation::FlipByte { at, xor }),
        2 => any::<usize>().prop_map(|keep| Mutation::Truncate { keep }),
        2 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..12))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        3 => (1..8u32, 0..6u8).prop_map(|(field, wire)| Mutation::WrongWireType { field, wire }),
        2 => (1..8u32, prop_oneof![Just(u64::from(u32::MAX)), Just(u64::MAX), 64..100_000u64])
            .prop_map(|(field, length)| Mutation::HugeLength { field, length }),
        2 => (1..8u32).prop_map(|field| Mutation::InvalidUtf8 { field }),
        1 => (1..300usize).prop_map(|depth| Mutation::DeepGroups { depth }),
        1 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(|bytes| Mutation::Noise { bytes }),
    ]
}

fn framing() -> impl Strategy<Value = Framing> {
    prop_oneof![
        12 => Just(Framing::Proper),
        1 => (-8..8i64).prop_map(Framing::LengthOff),
        1 => Just(Framing::HugeLength),
        1 => (1..=255u8).prop_map(Framing::Flag),
        1 => Just(Framing::NoPrefix),
        1 => Just(Framing::Empty),
        1 => Just(Framing::Twice),
    ]
}

fn apply(seed: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut m = seed.to_vec();
    for mutation in mutations {
        match mutation {
            Mutation::FlipByte { at, xor } if !m.is_empty() => {
                let i = at % m.len();
                m[i] ^= xor;
            }
            Mutation::FlipByte { .. } => {}
            Mutation::Truncate { keep } => m.truncate(keep % (m.len() + 1)),
            Mutation::Insert { at, bytes } => {
                let i = at % (m.len() + 1);
                m.splice(i..i, bytes.iter().copied());
            }
            Mutation::WrongWireType { field, wire } => {
                m.extend(key(*field, *wire));
                match wire {
                    0 => encode_varint(7, &mut m),
                    1 => m.extend_from_slice(&[0; 8]),
                    2 => m.extend_from_slice(&[1, b'x']),
                    5 => m.extend_from_slice(&[0; 4]),
                    _ => {} // start or end of a group, nothing after
                }
            }
            Mutation::HugeLength { field, length } => {
                encode_key(*field, WireType::LengthDelimited, &mut m);
                encode_varint(*length, &mut m);
                m.extend_from_slice(b"abc");
            }
            Mutation::InvalidUtf8 { field } => {
                encode_key(*field, WireType::LengthDelimited, &mut m);
                m.extend_from_slice(&[3, 0xff, 0xfe, 0xc0]);
            }
            Mutation::DeepGroups { depth } => {
                for _ in 0..*depth {
                    encode_key(99, WireType::StartGroup, &mut m);
                }
                for _ in 0..*depth {
                    encode_key(99, WireType::EndGroup, &mut m);
                }
            }
            Mutation::Noise { bytes } => m.clone_from(bytes),
        }
    }
    m
}

/// A field key with any 3-bit wire type, including the invalid 6 and 7.
fn key(field: u32, wire: u8) -> Vec<u8> {
    let mut k = Vec::new();
    encode_varint((u64::from(field) << 3) | u64::from(wire & 7), &mut k);
    k
}

fn frame(message: &[u8], framing: &Framing) -> Vec<u8> {
    let prefixed = |flag: u8, len: u32| {
        let mut f = vec![flag];
        f.extend_from_slice(&len.to_be_bytes());
        f.extend_from_slice(message);
        f
    };
    let len = u32::try_from(message.len()).unwrap();
    match framing {
        Framing::Proper => prefixed(0, len),
        Framing::LengthOff(off) => prefixed(0, u32::try_from((i64::from(len) + off).max(0)).unwrap()),
        Framing::HugeLength => prefixed(0, u32::MAX),
        Framing::Flag(flag) => prefixed(*flag, len),
        Framing::NoPrefix => message.to_vec(),
        Framing::Empty => Vec::new(),
        Framing::Twice => [prefixed(0, len), prefixed(0, len)].concat(),
    }
}

/// What the servers answered OK to the calls that write, to compare with what is stored.
#[derive(Default, Debug)]
struct Written {
    missions: BTreeSet<String>,
    gifts: BTreeSet<String>,
    calls: u64,
    by_code: BTreeMap<String, u64>,
}

fn record(written: &mut Written, path: &str, answer: &Answer) {
    written.calls += 1;
    *written.by_code.entry(format!("{:?}", answer.code)).or_default() += 1;
    if answer.code != Code::Ok {
        return;
    }
    let first = answer.data.first().map(Vec::as_slice).unwrap_or_default();
    match path {
        "/game.mission.v1.MissionService/AchieveMission" => {
            let m = mission::AchieveMissionResponse::decode(first).unwrap().mission.unwrap();
            written.missions.insert(m.mission_id);
        }
        "/game.gift.v1.GiftService/IssueGift" => {
            let g = gift::IssueGiftResponse::decode(first).unwrap().gift.unwrap();
            written.gifts.insert(g.gift_id);
        }
        "/game.wallet.v1.WalletService/ExchangeReward" => {
            written.gifts.insert(wallet::ExchangeRewardResponse::decode(first).unwrap().gift_id);
        }
        "/game.wallet.v1.WalletService/RedeemGift" => {
            written.gifts.insert(wallet::RedeemGiftResponse::decode(first).unwrap().gift_id);
        }
        _ => {}
    }
}

fn check(path: &str, answer: &Answer) -> Result<(), TestCaseError> {
    prop_assert!(
        !matches!(answer.code, Code::Internal | Code::Unknown),
        "{path} answered {:?}: {}",
        answer.code,
        answer.message
    );
    for word in DECODER_WORDS {
        prop_assert!(!answer.message.contains(word), "{path}: '{}' shows the decoder's '{word}'", answer.message);
    }
    Ok(())
}

fn seconds() -> u64 {
    std::env::var("FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20)
}

fn seed() -> u64 {
    std::env::var("FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        now.as_nanos() as u64 ^ u64::from(std::process::id())
    })
}

#[test]
fn random_and_mutated_requests_to_every_method_never_break_a_server_nor_write_anything() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let options = Options {
        gateway: true,
        gateway_env: vec![
            ("RATE_LIMIT_PER_SECOND", "1000000".into()),
            ("RATE_LIMIT_BURST", "1000000".into()),
            ("ANONYMOUS_RATE_PER_MINUTE", "100000000".into()),
        ],
        ..Options::default()
    };
    let mut sys = rt.block_on(System::start_with(options));
    let token = sys.tokens.customer(CUSTOMER);
    let gateway = sys.gateway().addr;
    let targets = targets();
    assert!(targets.len() > 20, "every method: {:?}", targets.iter().map(|t| &t.path).collect::<Vec<_>>());
    let before = rt.block_on(stored(&sys));
    assert_eq!(before, (BTreeSet::new(), BTreeSet::new()), "a fresh system");

    let seed = seed();
    println!("fuzz seed {seed} (FUZZ_SEED={seed} replays it), {} s (FUZZ_SECONDS)", seconds());
    // A runner runs its cases once: batches of 64 until the time is up, each batch's
    // random source derived from the seed and the batch's number.
    let runner = |batch: u64| {
        let mut seed_bytes = [0u8; 32];
        seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
        seed_bytes[8..16].copy_from_slice(&batch.to_le_bytes());
        let config = Config { cases: 64, failure_persistence: None, max_shrink_iters: 256, ..Config::default() };
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes))
    };
    let strategy =
        (0..targets.len(), proptest::bool::weighted(0.8), proptest::collection::vec(mutation(), 0..4), framing());
    let written = Mutex::new(Written::default());
    let deadline = Instant::now() + Duration::from_secs(seconds());
    let mut batch = 0;
    while Instant::now() < deadline {
        batch += 1;
        let result = runner(batch).run(&strategy, |(target, with_token, mutations, framing)| {
            let t = &targets[target];
            let body = frame(&apply(&t.seed, &mutations), &framing);
            // A stream that is accepted would never end by itself: give it a deadline.
            let headers: &[(&str, &str)] = if t.streams { &[("grpc-timeout", "300m")] } else { &[] };
            let token = with_token.then_some(token.as_str());
            let call = raw::grpc_with(gateway, &t.path, token, body, headers);
            let answer = rt
                .block_on(async { tokio::time::timeout(Duration::from_secs(15), call).await })
                .map_err(|_| TestCaseError::fail(format!("{}: no answer within 15 s", t.path)))?;
            record(&mut written.lock().unwrap(), &t.path, &answer);
            check(&t.path, &answer)
        });
        if let Err(e) = result {
            panic!("fuzz seed {seed}, batch {batch}: {e}");
        }
    }
    let written = written.into_inner().unwrap();
    println!("{} calls, answers by code: {:?}", written.calls, written.by_code);

    for service in
        [&mut sys.gift, &mut sys.mission, &mut sys.reward, &mut sys.wallet, &mut sys.mypage, &mut sys.notification]
    {
        assert!(service.is_running(), "{} died; see its log", service.name);
    }
    assert!(sys.auth.is_running(), "auth died");
    assert!(sys.gateway.as_mut().unwrap().is_running(), "the gateway died");
    rt.block_on(sys.gateway().wait_serving(e2e::GATEWAY));
    let (missions, gifts) = rt.block_on(stored(&sys));
    assert_eq!(missions, written.missions, "missions stored = missions answered OK");
    assert_eq!(gifts, written.gifts, "gifts stored = gifts answered OK");
}

/// The fuzzing customer's missions and gifts, as stored.
async fn stored(sys: &System) -> (BTreeSet<String>, BTreeSet<String>) {
    use e2e::clients::GiftServiceClient;
    let missions = e2e::api::missions(sys, CUSTOMER).await.into_iter().map(|m| m.mission_id).collect();
    let gifts = GiftServiceClient::new(sys.as_customer(&sys.gift, CUSTOMER))
        .list_gifts(gift::ListGiftsRequest { customer_id: CUSTOMER.into(), ..Default::default() })
        .await
        .expect("gifts")
        .into_inner()
        .gifts
        .into_iter()
        .map(|g| g.gift_id)
        .collect();
    (missions, gifts)
}
