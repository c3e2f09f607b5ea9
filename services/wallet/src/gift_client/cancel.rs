//! Cancelling a gift (a refund): the internal `GiftIssuingService/CancelGift`, as the
//! wallet with its own service token. An admin's rare call: not behind the exchange's
//! breaker and load shedding, only a deadline (the cancel is idempotent: asked again,
//! the same answer).

use std::time::Duration;

use grpc_adapter::pb::gift::v1 as pb;
use kernel::RequestContext;
use pb::gift_issuing_service_client::GiftIssuingServiceClient;
use tonic::{Code, Status};
use uuid::Uuid;
use wallet_domain::{GiftCallError, GiftRefusal};

use super::{GiftClient, NO_TOKEN_RETRY};

/// A refusal or a failure of the gift service, as the wallet's callers should hear it.
fn to_error(s: &Status) -> GiftCallError {
    match s.code() {
        Code::FailedPrecondition | Code::NotFound => GiftCallError::Refused(GiftRefusal {
            message: s.message().to_owned(),
            reason: grpc_adapter::status::error_info(s),
        }),
        Code::InvalidArgument => {
            let (field, reason) = s.message().split_once(": ").unwrap_or(("gift_id", s.message()));
            GiftCallError::Invalid { field: field.to_owned(), reason: reason.to_owned() }
        }
        _ => GiftCallError::Unavailable { retry_after: Duration::from_secs(1), reason: s.message().to_owned() },
    }
}

impl GiftClient {
    pub(super) async fn cancel(&self, gift_id: Uuid, ctx: &RequestContext) -> Result<(), GiftCallError> {
        let Some(token) = self.token.current() else {
            return Err(GiftCallError::Unavailable {
                retry_after: NO_TOKEN_RETRY,
                reason: "the wallet has no service token yet".into(),
            });
        };
        let deadline = self.deadline;
        let bearer: Option<tonic::metadata::MetadataValue<_>> = format!("Bearer {token}").parse().ok();
        let traceparent: Option<tonic::metadata::MetadataValue<_>> =
            ctx.traceparent.as_deref().and_then(|t| t.parse().ok());
        let call = self.gifts.call(|channel| {
            let mut request = tonic::Request::new(pb::CancelGiftRequest { gift_id: gift_id.to_string() });
            request.set_timeout(deadline);
            if let Some(b) = bearer.clone() {
                request.metadata_mut().insert("authorization", b);
            }
            if let Some(tp) = traceparent.clone() {
                request.metadata_mut().insert("traceparent", tp);
            }
            async move { GiftIssuingServiceClient::new(channel).cancel_gift(request).await }
        });
        match tokio::time::timeout(deadline, call).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(s)) if matches!(s.code(), Code::Unauthenticated | Code::PermissionDenied) => {
                tracing::error!(code = ?s.code(), message = s.message(), "the gift service refused the wallet's service token");
                self.token.invalidate();
                Err(GiftCallError::Unavailable { retry_after: NO_TOKEN_RETRY, reason: "service token refused".into() })
            }
            Ok(Err(s)) => Err(to_error(&s)),
            Err(_) => Err(GiftCallError::Unavailable {
                retry_after: Duration::from_secs(1),
                reason: "deadline exceeded".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_used_gift_is_a_refusal_with_its_reason_and_an_outage_is_unavailable() {
        let used = grpc_adapter::status::refused("the gift was already used", "GIFT_ALREADY_USED", vec![]);
        match to_error(&used) {
            GiftCallError::Refused(r) => {
                assert_eq!(r.reason.map(|(reason, _)| reason).as_deref(), Some("GIFT_ALREADY_USED"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(to_error(&Status::not_found("gift not found")), GiftCallError::Refused(_)));
        assert!(matches!(to_error(&Status::unavailable("down")), GiftCallError::Unavailable { .. }));
    }
}
