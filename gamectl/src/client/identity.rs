//! `gamectl` commands of the auth service: register, log in and out, who am I, keys, roles,
//! revocations, service accounts, the audit log.

use std::io::Write as _;

use contracts::pb::auth::v1 as auth_pb;
use serde_json::json;

use super::{Conn, Failure, emit};
use crate::{auth, cli, output};

pub(super) async fn register(conn: &Conn<'_>, customer_id: String, password: Option<String>) -> Result<(), Failure> {
    let global = conn.global;
    let password = auth::password(password, &customer_id, true).map_err(Failure::Local)?;
    let r = conn
        .auth_client()
        .await?
        .register_customer(auth_pb::RegisterCustomerRequest { customer_id, password })
        .await
        .map_err(|s| Failure::from(s).refused())?
        .into_inner();
    emit(
        global,
        || json!({"customerId": r.customer_id}),
        || format!("registered {} (next: gamectl login {})", r.customer_id, r.customer_id),
    );
    Ok(())
}

pub(super) async fn login(
    conn: &Conn<'_>,
    customer_id: Option<String>,
    password: Option<String>,
    service_account: Option<String>,
    secret: Option<String>,
) -> Result<(), Failure> {
    let global = conn.global;
    let (r, named) = match (customer_id, service_account) {
        (_, Some(client_id)) => {
            let client_secret = auth::service_secret(secret, &client_id).map_err(Failure::Local)?;
            let r = conn
                .auth_client()
                .await?
                .issue_service_token(auth_pb::IssueServiceTokenRequest { client_id: client_id.clone(), client_secret })
                .await
                .map_err(|s| Failure::from(s).refused())?;
            (r.into_inner(), client_id)
        }
        (Some(customer_id), None) => {
            let password = auth::password(password, &customer_id, false).map_err(Failure::Local)?;
            let r = conn
                .auth_client()
                .await?
                .issue_token(auth_pb::IssueTokenRequest { customer_id: customer_id.clone(), password })
                .await
                .map_err(|s| Failure::from(s).refused())?;
            (r.into_inner(), customer_id)
        }
        (None, None) => return Err(Failure::Local("login: name a customer, or --service-account".into())),
    };
    let path = auth::token_path(global);
    auth::save_token(&path, &r.access_token)
        .map_err(|e| Failure::Local(format!("cannot store the token in {}: {e}", path.display())))?;
    let claims = auth::decode(&r.access_token).ok();
    let sub = claims.as_ref().map_or(named, |c| c.sub.clone());
    let role = claims.map(|c| c.role).unwrap_or_default();
    emit(
        global,
        || json!({"customerId": sub, "role": role, "expiresIn": r.expires_in, "tokenFile": path}),
        || format!("logged in as {sub} ({role}) for {}; token in {}", output::duration(r.expires_in), path.display()),
    );
    Ok(())
}

pub(super) async fn logout(conn: &Conn<'_>) -> Result<(), Failure> {
    let global = conn.global;
    let path = auth::token_path(global);
    let removed =
        auth::remove_token(&path).map_err(|e| Failure::Local(format!("cannot remove {}: {e}", path.display())))?;
    emit(
        global,
        || json!({"loggedOut": removed, "tokenFile": path}),
        || if removed { "logged out".into() } else { "not logged in".into() },
    );
    Ok(())
}

pub(super) async fn whoami(conn: &Conn<'_>) -> Result<(), Failure> {
    let global = conn.global;
    let (token, source) = auth::current(global)
        .map_err(Failure::Token)?
        .ok_or_else(|| Failure::Token("not logged in (run gamectl login)".into()))?;
    let c = auth::decode(&token).map_err(|e| Failure::Token(format!("the token is unreadable: {e}")))?;
    let now = chrono::Utc::now().timestamp();
    let from = match source {
        auth::Source::Given => "--token".to_owned(),
        auth::Source::File(p) => p.display().to_string(),
    };
    emit(global, || output::whoami_json(&c, now, &from), || output::whoami_text(&c, now, &from));
    Ok(())
}

pub(super) async fn rotate_key(conn: &Conn<'_>) -> Result<(), Failure> {
    let global = conn.global;
    let r = conn.auth_client().await?.rotate_signing_key(auth_pb::RotateSigningKeyRequest {}).await?.into_inner();
    emit(
        global,
        || json!({"keyId": r.key_id}),
        || format!("signing with key {}; tokens signed with earlier keys stay valid until they expire", r.key_id),
    );
    Ok(())
}

pub(super) async fn role(conn: &Conn<'_>, command: cli::RoleCommand) -> Result<(), Failure> {
    let global = conn.global;
    let mut c = conn.auth_client().await?;
    let (customer_id, role, changed, granted) = match command {
        cli::RoleCommand::Grant { customer_id, role } => {
            let r = c.grant_role(auth_pb::GrantRoleRequest { customer_id, role }).await?.into_inner();
            (r.customer_id, r.role, r.changed, true)
        }
        cli::RoleCommand::Revoke { customer_id, role } => {
            let r = c.revoke_role(auth_pb::RevokeRoleRequest { customer_id, role }).await?.into_inner();
            (r.customer_id, r.role, r.changed, false)
        }
    };
    emit(
        global,
        || json!({"customerId": customer_id, "role": role, "changed": changed}),
        || match (granted, changed) {
            (true, true) => format!("{customer_id} is now {role} (from their next login)"),
            (false, true) => format!("{customer_id} is now {role}; their tokens are revoked"),
            (_, false) => format!("{customer_id} is {role}: nothing changed"),
        },
    );
    Ok(())
}

pub(super) async fn revoke(conn: &Conn<'_>, customer_id: String, external: bool) -> Result<(), Failure> {
    let global = conn.global;
    let request = auth_pb::RevokeTokensRequest { customer_id, external };
    let r = conn.auth_client().await?.revoke_tokens(request).await?.into_inner();
    let before = output::timestamp(r.revoked_before.as_ref()).unwrap_or_default();
    emit(
        global,
        || json!({"customerId": r.customer_id, "revokedBefore": before}),
        || format!("every token of {} issued before {before} is refused from now on", r.customer_id),
    );
    Ok(())
}

pub(super) async fn create_service_account(conn: &Conn<'_>, name: String, role: String) -> Result<(), Failure> {
    let global = conn.global;
    let r = conn
        .auth_client()
        .await?
        .create_service_account(auth_pb::CreateServiceAccountRequest { name, role })
        .await?
        .into_inner();
    emit(
        global,
        || json!({"clientId": r.client_id, "clientSecret": r.client_secret, "role": r.role}),
        || {
            format!(
                "service account {} ({})\nsecret: {}\nKeep the secret now: it is not shown again. Log in with: \
                     gamectl login --service-account {}",
                r.client_id, r.role, r.client_secret, r.client_id
            )
        },
    );
    Ok(())
}

pub(super) async fn provision_file(client_id: String, role: String, secret: Option<String>) -> Result<(), Failure> {
    let secret = auth::service_secret(secret, &client_id).map_err(Failure::Local)?;
    let file = crate::secrets::provision_file(&[(client_id, role, secret)]).map_err(Failure::Local)?;
    let _ = writeln!(std::io::stdout(), "{file}");
    Ok(())
}

pub(super) async fn audit(conn: &Conn<'_>, subject: Option<String>, limit: Option<u32>) -> Result<(), Failure> {
    let global = conn.global;
    let r = conn
        .auth_client()
        .await?
        .list_audit_entries(auth_pb::ListAuditEntriesRequest {
            subject: subject.unwrap_or_default(),
            limit: limit.unwrap_or(0),
        })
        .await?
        .into_inner();
    emit(
        global,
        || json!({"entries": r.entries.iter().map(output::audit_json).collect::<Vec<_>>()}),
        || output::audit_text(&r.entries),
    );
    Ok(())
}
