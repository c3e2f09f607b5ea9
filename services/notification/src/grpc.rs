//! The inbound gRPC adapter: `game.notification.v1.NotificationService`.

use std::sync::Arc;

use contracts::pb::notification::v1 as pb;
use grpc_adapter::convert::timestamp;
use grpc_adapter::{paging, status};
use notification_domain::{Notification, NotificationError};
use tonic::{Request, Response, Status};

use crate::App;

pub fn server(app: Arc<App>) -> pb::notification_service_server::NotificationServiceServer<Handlers> {
    pb::notification_service_server::NotificationServiceServer::new(Handlers { app })
}

pub struct Handlers {
    app: Arc<App>,
}

fn to_status(e: NotificationError) -> Status {
    match e {
        NotificationError::Unavailable(detail) => status::unavailable(&detail),
        // Only sending can be rejected, and no request sends.
        NotificationError::Rejected(detail) => status::internal(&detail),
    }
}

fn to_proto(n: Notification) -> pb::Notification {
    pb::Notification {
        notification_id: n.id.to_string(),
        customer_id: n.customer_id.to_string(),
        channel: n.channel.as_str().to_owned(),
        subject: n.subject,
        event_id: n.about_event_id.to_string(),
        sent_at: Some(timestamp(n.sent_at)),
        recipient: n.recipient.to_string(),
    }
}

#[tonic::async_trait]
impl pb::notification_service_server::NotificationService for Handlers {
    async fn list_notifications(
        &self,
        req: Request<pb::ListNotificationsRequest>,
    ) -> Result<Response<pb::ListNotificationsResponse>, Status> {
        let customer = grpc_adapter::auth::read_for(&req, &req.get_ref().customer_id)?;
        let scope = format!("notifications/{customer}");
        let page = paging::request(req.get_ref().page_size, &req.get_ref().page_token, &scope)?;
        let notifications = self.app.notifications(&customer, page).await.map_err(to_status)?;
        let (notifications, next_page_token) = paging::answer(notifications, &scope, to_proto);
        Ok(Response::new(pb::ListNotificationsResponse { notifications, next_page_token }))
    }
}

#[cfg(test)]
mod status_tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn each_notification_error_becomes_its_status_without_its_detail() {
        let s = to_status(NotificationError::Unavailable("smtp://relay:25 refused".into()));
        assert_eq!(s.code(), Code::Unavailable);
        assert!(!s.message().contains("relay"), "{}", s.message());
        let s = to_status(NotificationError::Rejected("550 mailbox unknown".into()));
        assert_eq!((s.code(), s.message()), (Code::Internal, "internal error"));
    }
}
