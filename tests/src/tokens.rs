//! Tokens signed as an identity provider would, and channels that call with them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::transport::Channel;

/// Signs tokens the way an identity provider would, for tests; every service trusts its
/// keys through `JWKS_FILES`.
pub struct Tokens {
    issuer: auth_adapter::TokenIssuer,
    pub jwks_file: PathBuf,
}

impl Tokens {
    /// # Panics
    /// When the key directory cannot be written.
    pub fn new(dir: &Path) -> Self {
        let ring = auth_adapter::KeyRing::open(dir.join("test-keys"), Duration::from_secs(3600)).expect("test keys");
        let jwks_file = dir.join("test-jwks.json");
        std::fs::write(&jwks_file, serde_json::to_vec(&ring.jwks().expect("jwks")).expect("json")).expect("write jwks");
        let issuer = auth_adapter::TokenIssuer {
            ring,
            issuer: "game-rewards".into(),
            audience: "game-rewards".into(),
            ttl: Duration::from_secs(3600),
        };
        Self { issuer, jwks_file }
    }

    pub fn customer(&self, customer: &str) -> String {
        self.issuer.issue(customer, auth_adapter::Role::Player).expect("token").0
    }

    pub fn admin(&self) -> String {
        self.issuer.issue("operator", auth_adapter::Role::Admin).expect("token").0
    }

    /// A token of one of our services (role `service`, `sub` = `svc-<name>`), as the
    /// auth service gives a service account.
    pub fn service(&self, name: &str) -> String {
        self.issuer.issue(&format!("svc-{name}"), auth_adapter::Role::Service).expect("token").0
    }

    /// A game server's token (role `game_server`).
    pub fn game_server(&self, name: &str) -> String {
        self.issuer.issue(&format!("svc-{name}"), auth_adapter::Role::GameServer).expect("token").0
    }

    pub fn issuer(&self) -> &auth_adapter::TokenIssuer {
        &self.issuer
    }
}

/// A channel whose every call carries a bearer token.
pub type Authed = tonic::service::interceptor::InterceptedService<Channel, Bearer>;

#[derive(Clone)]
pub struct Bearer(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

/// `channel`, calling with `token`.
///
/// # Panics
/// When the token is not a valid header value.
pub fn with_token(channel: Channel, token: &str) -> Authed {
    let value = format!("Bearer {token}").parse().expect("header value");
    tonic::service::interceptor::InterceptedService::new(channel, Bearer(value))
}
