//! What the contracts say about each gRPC method, read once from the descriptor sets
//! compiled into this crate (ours and the health service's): whether it takes a single
//! request message and whether it answers with a stream. A method added to a `.proto`
//! is known here without a list to keep in step.

use std::collections::HashMap;
use std::sync::LazyLock;

use prost::Message as _;

/// The shape of one method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// The client sends a stream of messages (none of ours; server reflection does).
    pub client_streaming: bool,
    /// The server answers with a stream (`WatchMyPage`, health's `Watch`).
    pub server_streaming: bool,
}

static METHODS: LazyLock<HashMap<String, Shape>> = LazyLock::new(|| {
    let mut methods = HashMap::new();
    for set in [crate::pb::FILE_DESCRIPTOR_SET, tonic_health::pb::FILE_DESCRIPTOR_SET] {
        // Compiled in by build.rs: a set that does not decode is a broken build.
        let set = prost_types::FileDescriptorSet::decode(set).expect("compiled-in descriptor set");
        for file in set.file {
            let package = file.package();
            for service in &file.service {
                for m in &service.method {
                    let shape =
                        Shape { client_streaming: m.client_streaming(), server_streaming: m.server_streaming() };
                    methods.insert(format!("/{package}.{}/{}", service.name(), m.name()), shape);
                }
            }
        }
    }
    methods
});

/// The shape of the method at a gRPC path (`/game.mission.v1.MissionService/AchieveMission`),
/// when it is one of ours or health's.
pub fn shape(path: &str) -> Option<Shape> {
    METHODS.get(path).copied()
}

/// Every method we know, by gRPC path.
pub fn all() -> impl Iterator<Item = (&'static str, Shape)> {
    METHODS.iter().map(|(path, shape)| (path.as_str(), *shape))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_known_by_path_with_their_shape() {
        let unary = Shape { client_streaming: false, server_streaming: false };
        let watch = Shape { client_streaming: false, server_streaming: true };
        assert_eq!(shape("/game.mission.v1.MissionService/AchieveMission"), Some(unary));
        assert_eq!(shape("/game.mypage.v1.MyPageService/WatchMyPage"), Some(watch));
        assert_eq!(shape("/grpc.health.v1.Health/Check"), Some(unary));
        assert_eq!(shape("/grpc.health.v1.Health/Watch"), Some(watch));
        assert_eq!(shape("/game.mission.v1.MissionService/Nope"), None);
        assert!(all().count() > 20);
    }
}
