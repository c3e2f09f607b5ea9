//! Client-facing statuses. Every refusal names the field or the thing at fault;
//! technical detail is logged here and never sent to the client.

use kernel::ValidationError;
use tonic::Status;

/// `INVALID_ARGUMENT` naming the field.
pub fn invalid(e: &ValidationError) -> Status {
    Status::invalid_argument(format!("{}: {}", e.field, e.reason))
}

/// `NOT_FOUND` for a thing by kind (`mission`, `reward`...).
pub fn not_found(what: &str) -> Status {
    Status::not_found(format!("{what} not found"))
}

/// The domain of our `google.rpc.ErrorInfo` details.
pub const ERROR_DOMAIN: &str = "game-rewards";

/// `FAILED_PRECONDITION` for a business rule that refuses a request (a mission's cap, a
/// gift out of stock): `message` for people, and in the status details a
/// `google.rpc.ErrorInfo` with `reason` (e.g. `MISSION_PERIOD_LIMIT_REACHED`), domain
/// [`ERROR_DOMAIN`] and `metadata`, for programs.
pub fn refused(message: impl Into<String>, reason: &str, metadata: Vec<(&str, String)>) -> Status {
    use tonic_types::{ErrorDetails, StatusExt};
    let metadata: std::collections::HashMap<String, String> =
        metadata.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata);
    Status::with_error_details(tonic::Code::FailedPrecondition, message, details)
}

/// The `google.rpc.ErrorInfo` of a [`refused`] status from one of our services: its reason
/// and metadata, to pass on to the client of a call that made it (the wallet answering
/// an exchange the gift service refused). `None` without one, or with another domain's.
pub fn error_info(status: &Status) -> Option<(String, std::collections::BTreeMap<String, String>)> {
    use tonic_types::StatusExt;
    let info = status.get_details_error_info()?;
    (info.domain == ERROR_DOMAIN).then(|| (info.reason, info.metadata.into_iter().collect()))
}

/// `UNAVAILABLE` with a generic message; `detail` goes to the log only.
pub fn unavailable(detail: &dyn std::fmt::Display) -> Status {
    tracing::warn!(%detail, "request failed: a dependency is unavailable");
    Status::unavailable("the service is temporarily unavailable, please try again later")
}

/// `INTERNAL` with a generic message; `detail` goes to the log only.
pub fn internal(detail: &dyn std::fmt::Display) -> Status {
    tracing::error!(%detail, "request failed");
    Status::internal("internal error")
}

/// A request header as text, when present and printable (e.g. `traceparent`).
pub fn header<T>(req: &tonic::Request<T>, name: &str) -> Option<String> {
    req.metadata().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Parses a customer id from a request field.
///
/// # Errors
/// `INVALID_ARGUMENT` naming `customer_id`.
pub fn customer(raw: &str) -> Result<kernel::CustomerId, Status> {
    kernel::CustomerId::new(raw).map_err(|e| invalid(&e))
}

/// Parses one of our ids (a UUID) from the request field `field`.
///
/// # Errors
/// `INVALID_ARGUMENT` naming `field`.
pub fn id(field: &'static str, raw: &str) -> Result<uuid::Uuid, Status> {
    kernel::parse_id(field, raw).map_err(|e| invalid(&e))
}

/// The canonical name of a gRPC code, as grpcurl and the gRPC docs spell it.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_s_error_info_is_read_back_and_another_domain_s_is_not() {
        let s = refused("coffee is out of stock", "GIFT_OUT_OF_STOCK", vec![("gift_code", "coffee".to_owned())]);
        let (reason, metadata) = error_info(&s).expect("ours");
        assert_eq!(
            (reason.as_str(), metadata["gift_code"].as_str(), metadata.len()),
            ("GIFT_OUT_OF_STOCK", "coffee", 1)
        );

        let details = tonic_types::ErrorDetails::with_error_info("X", "example.com", std::collections::HashMap::new());
        let theirs =
            <Status as tonic_types::StatusExt>::with_error_details(tonic::Code::FailedPrecondition, "no", details);
        assert_eq!(error_info(&theirs), None);
        assert_eq!(error_info(&Status::failed_precondition("plain")), None);
    }
}
