//! Compiles every `.proto` under `proto/` into Rust, plus a descriptor set for reflection.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-env-changed=PROTOC");
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let protos: Vec<PathBuf> = [
        "game/mission/v1/mission.proto",
        "game/reward/v1/reward.proto",
        "game/wallet/v1/wallet.proto",
        "game/mypage/v1/mypage.proto",
        "game/gift/v1/gift.proto",
        "game/notification/v1/notification.proto",
        "game/auth/v1/auth.proto",
        "game/events/v1/events.proto",
    ]
    .iter()
    .map(|p| root.join(p))
    .collect();
    for p in &protos {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    // protoc is not on the machine image: use the vendored one unless PROTOC names another.
    let protoc = match std::env::var_os("PROTOC") {
        Some(p) => PathBuf::from(p),
        None => protoc_bin_vendored::protoc_bin_path()?,
    };
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc);
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure().file_descriptor_set_path(out.join("game_descriptor.bin")).compile_with_config(
        config,
        &protos,
        &[root, protoc_bin_vendored::include_path()?],
    )?;
    Ok(())
}
