//! The gRPC APIs of the system: the service name (also its health-check name), the
//! environment variable giving its address to whoever calls it, and which of its methods
//! are public (callable without a token) or internal (services only). Each is declared in
//! its role's row ([`crate::roles`]); this module lists them. The gateway routes and
//! authenticates by this list, each service authenticates by its row, `gamectl` and the
//! tests find the services by it.

use crate::roles::{self, Has};

/// One gRPC API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Api {
    /// Its full gRPC service name, also the name its health is reported under.
    pub name: &'static str,
    /// The variable giving its address(es), e.g. `MISSION_URL`.
    pub url_env: &'static str,
    /// Methods callable without a token, as gRPC paths (`/package.Service/Method`).
    pub public: &'static [&'static str],
    /// Path prefixes of services of the same role only callers with the role `service`
    /// may call (`/package.Service/`); not routed by the gateway.
    pub internal: &'static [&'static str],
    /// Other services the same processes serve, routed by the gateway to this API's
    /// endpoints (full names, e.g. `game.mypage.v1.MyPageAdminService`).
    pub served_with: &'static [&'static str],
}

/// An [`Api`] from its package, service, variable and methods (names only).
macro_rules! api {
    ($package:literal, $service:literal, $env:literal,
     public: [$($public:literal),*], internal: [$($internal:literal),*]
     $(, served_with: [$($with:literal),*])?) => {
        $crate::services::Api {
            name: concat!($package, ".", $service),
            url_env: $env,
            public: &[$(concat!("/", $package, ".", $service, "/", $public)),*],
            internal: &[$(concat!("/", $package, ".", $internal, "/")),*],
            served_with: &[$($(concat!($package, ".", $with)),*)?],
        }
    };
}
pub(crate) use api;

/// The API of a role that has one (a role without one does not compile here).
const fn of(role: roles::Role) -> Api {
    match role.api {
        Some(api) => api,
        None => panic!("a role without an API"),
    }
}

// Shorthands for the callers of one API in particular.
pub const MISSION: Api = of(roles::mission::ROLE);
pub const REWARD: Api = of(roles::reward::ROLE);
pub const WALLET: Api = of(roles::wallet::ROLE);
pub const MYPAGE: Api = of(roles::mypage::ROLE);
pub const GIFT: Api = of(roles::gift::ROLE);
pub const NOTIFICATION: Api = of(roles::notification::ROLE);
pub const AUTH: Api = of(roles::auth::ROLE);
/// The operators' tools (admins only): the dead letters.
pub const OPS: Api = of(roles::ops::ROLE);

const API_COUNT: usize = roles::count(Has::Api);

/// Every API, in the order of the role table (the gateway's routes, `gamectl`'s tables).
pub const APIS: &[Api] = &{
    let mut out = [MISSION; API_COUNT];
    let (mut i, mut n) = (0, 0);
    while i < roles::ALL.len() {
        if let Some(api) = roles::ALL[i].api {
            out[n] = api;
            n += 1;
        }
        i += 1;
    }
    out
};

/// The gateway's own name (its health; it has no API of its own).
pub const GATEWAY: &str = "game.gateway.v1.Gateway";

/// The API served by `role`.
pub fn by_role(role: &str) -> Option<&'static Api> {
    roles::find(role).and_then(|r| r.api.as_ref())
}

/// The role serving the API named `name`.
pub fn role_of(name: &str) -> Option<&'static roles::Role> {
    roles::ALL.iter().find(|r| r.api.is_some_and(|a| a.name == name))
}

/// The API named `name` (a gRPC service name).
pub fn by_name(name: &str) -> Option<&'static Api> {
    APIS.iter().find(|a| a.name == name)
}

/// The API whose endpoints serve the service named `name`: its own, or the one it is
/// served with.
pub fn route(name: &str) -> Option<&'static Api> {
    APIS.iter().find(|a| a.name == name || a.served_with.contains(&name))
}

/// Every service the gateway routes (for reflection): the APIs and those served with them.
pub fn routed() -> impl Iterator<Item = &'static str> {
    APIS.iter().flat_map(|a| std::iter::once(a.name).chain(a.served_with.iter().copied()))
}

/// Every public method of every API, as gRPC paths.
pub fn public_methods() -> impl Iterator<Item = &'static str> {
    APIS.iter().flat_map(|a| a.public.iter().copied())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use prost::Message as _;

    use super::*;
    use crate::pb;

    /// Service names of the compiled descriptors.
    fn compiled() -> HashSet<String> {
        let set = prost_types::FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET).unwrap();
        set.file.iter().flat_map(|f| f.service.iter().map(move |s| format!("{}.{}", f.package(), s.name()))).collect()
    }

    #[test]
    fn the_names_are_the_generated_servers_names() {
        assert_eq!(MISSION.name, pb::mission::v1::mission_service_server::SERVICE_NAME);
        assert_eq!(REWARD.name, pb::reward::v1::reward_service_server::SERVICE_NAME);
        assert_eq!(WALLET.name, pb::wallet::v1::wallet_service_server::SERVICE_NAME);
        assert_eq!(MYPAGE.name, pb::mypage::v1::my_page_service_server::SERVICE_NAME);
        assert_eq!(GIFT.name, pb::gift::v1::gift_service_server::SERVICE_NAME);
        assert_eq!(NOTIFICATION.name, pb::notification::v1::notification_service_server::SERVICE_NAME);
        assert_eq!(AUTH.name, pb::auth::v1::auth_service_server::SERVICE_NAME);
        assert_eq!(OPS.name, pb::admin::v1::dead_letter_service_server::SERVICE_NAME);
        assert_eq!(GIFT.internal, [format!("/{}/", pb::gift::v1::gift_issuing_service_server::SERVICE_NAME)]);
    }

    #[test]
    fn every_compiled_service_is_an_api_or_internal_and_every_public_path_a_method() {
        let declared: HashSet<String> = APIS
            .iter()
            .map(|a| a.name.to_owned())
            .chain(APIS.iter().flat_map(|a| a.internal.iter().map(|p| p.trim_matches('/').to_owned())))
            .chain(APIS.iter().flat_map(|a| a.served_with.iter().map(|s| (*s).to_owned())))
            .collect();
        assert_eq!(declared, compiled());
        for path in public_methods() {
            assert!(crate::methods::shape(path).is_some(), "{path} is not a method");
        }
        assert_eq!(public_methods().count(), 6);
    }

    #[test]
    fn roles_and_variables_are_unique() {
        let names: HashSet<_> = APIS.iter().map(|a| a.name).collect();
        let vars: HashSet<_> = APIS.iter().map(|a| a.url_env).collect();
        assert_eq!((names.len(), vars.len()), (APIS.len(), APIS.len()));
        assert_eq!(role_of(WALLET.name).map(|r| r.name), Some("wallet"));
        assert_eq!(by_role("gift"), Some(&GIFT));
        assert_eq!(by_name("game.auth.v1.AuthService"), Some(&AUTH));
        assert_eq!(by_role("gateway"), None);
        assert_eq!(route("game.mypage.v1.MyPageAdminService"), Some(&MYPAGE));
        assert_eq!(route(MYPAGE.name), Some(&MYPAGE));
        assert_eq!(MYPAGE.served_with, [pb::mypage::v1::my_page_admin_service_server::SERVICE_NAME]);
    }
}
