//! Compiles every `.proto` under `proto/` into Rust, plus a descriptor set for reflection.
//!
//! Two passes, because what a bad message means depends on the side that reads it:
//! 1. messages, clients and the descriptor set, with tonic's prost codec (a client that
//!    cannot decode an answer reports it as tonic does);
//! 2. servers only (`OUT_DIR/server/`), with [`RequestCodec`] as their codec: a request
//!    that does not decode is the caller's fault, `INVALID_ARGUMENT` without the
//!    decoder's text. The messages are the first pass's (`extern_path`). The health
//!    service's server is generated here too (from its standard proto, kept in
//!    `contracts/proto/`), so that health checks read requests the same way.
//!
//! Every message implements `prost::Name` (its full protobuf name): the type name an event
//! is published under comes from there, not from a string typed by hand.
//!
//! [`RequestCodec`]: ../src/codec.rs

use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-env-changed=PROTOC");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest.join("../proto");
    let ours = [
        "game/mission/v1/mission.proto",
        "game/reward/v1/reward.proto",
        "game/wallet/v1/wallet.proto",
        "game/mypage/v1/mypage.proto",
        "game/gift/v1/gift.proto",
        "game/notification/v1/notification.proto",
        "game/auth/v1/auth.proto",
        "game/events/v1/events.proto",
        "game/admin/v1/dead_letter.proto",
    ];
    let protos: Vec<PathBuf> = ours.iter().map(|p| root.join(p)).collect();
    let health_root = manifest.join("proto");
    let health = health_root.join("grpc/health/v1/health.proto");
    for p in protos.iter().chain([&health]) {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    // protoc is not on the machine image: use the vendored one unless PROTOC names another.
    let protoc = match std::env::var_os("PROTOC") {
        Some(p) => PathBuf::from(p),
        None => protoc_bin_vendored::protoc_bin_path()?,
    };
    let config = || {
        let mut config = prost_build::Config::new();
        config.protoc_executable(&protoc);
        config.enable_type_names();
        config
    };
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let includes = [root.clone(), health_root, protoc_bin_vendored::include_path()?];

    tonic_prost_build::configure()
        .build_server(false)
        .file_descriptor_set_path(out.join("game_descriptor.bin"))
        .compile_with_config(config(), &protos, &includes)?;

    let server_out = out.join("server");
    std::fs::create_dir_all(&server_out)?;
    let mut servers = tonic_prost_build::configure()
        .build_client(false)
        .out_dir(&server_out)
        .codec_path("crate::codec::RequestCodec")
        .extern_path(".grpc.health.v1", "::tonic_health::pb");
    for proto in &ours {
        let (package, module) = package_of(Path::new(proto));
        servers = servers.extern_path(package, module);
    }
    let mut server_protos = protos.clone();
    server_protos.push(health);
    servers.compile_with_config(config(), &server_protos, &includes)?;
    Ok(())
}

/// `game/<context>/v1/x.proto` is package `.game.<context>.v1`, generated into
/// `crate::pb::<context>::v1`.
fn package_of(proto: &Path) -> (String, String) {
    let parts: Vec<String> =
        proto.parent().expect("a proto in a package dir").iter().map(|p| p.to_string_lossy().into_owned()).collect();
    (format!(".{}", parts.join(".")), format!("crate::pb::{}", parts[1..].join("::")))
}
