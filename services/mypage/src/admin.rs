//! `game.mypage.v1.MyPageAdminService`: the operators' tools for the view, admins only.

use std::sync::Arc;

use async_nats::jetstream;
use grpc_adapter::pb::mypage::v1 as pb;
use grpc_adapter::{auth, status};
use tonic::{Request, Response, Status};

use crate::App;
use crate::rebuild::{self, RebuildError};

pub const SERVICE_NAME: &str = "game.mypage.v1.MyPageAdminService";

pub fn server(
    app: Arc<App>,
    js: jetstream::Context,
) -> pb::my_page_admin_service_server::MyPageAdminServiceServer<Admin> {
    pb::my_page_admin_service_server::MyPageAdminServiceServer::new(Admin { app, js, running: Arc::default() })
}

pub struct Admin {
    app: Arc<App>,
    js: jetstream::Context,
    /// Held while a rebuild runs in this process.
    running: Arc<tokio::sync::Mutex<()>>,
}

fn to_status(e: &RebuildError) -> Status {
    match e {
        RebuildError::Incomplete(_) => Status::failed_precondition(e.to_string()),
        RebuildError::Superseded(_) => Status::aborted(e.to_string()),
        RebuildError::Unavailable(detail) => status::unavailable(detail),
    }
}

#[tonic::async_trait]
impl pb::my_page_admin_service_server::MyPageAdminService for Admin {
    async fn rebuild_my_page(
        &self,
        req: Request<pb::RebuildMyPageRequest>,
    ) -> Result<Response<pb::RebuildMyPageResponse>, Status> {
        let who = auth::identity(&req)?;
        auth::require_admin(&who)?;
        let Ok(guard) = self.running.clone().try_lock_owned() else {
            return Err(Status::aborted("a rebuild of my page is already running"));
        };
        let allow_partial = req.get_ref().allow_partial;
        tracing::info!(admin = %who.customer_id, allow_partial, "rebuild of my page asked for");
        let (js, app) = (self.js.clone(), self.app.clone());
        // Its own task: a caller that goes away does not stop it half-way.
        let task = tokio::spawn(async move {
            let _running = guard;
            rebuild::rebuild(&js, &app, rebuild::Options { allow_partial, ..Default::default() }).await
        });
        let r = task.await.map_err(|e| status::internal(&e))?.map_err(|e| to_status(&e))?;
        tracing::info!(admin = %who.customer_id, generation = r.generation, events = r.events, "my page rebuilt");
        Ok(Response::new(pb::RebuildMyPageResponse {
            previous_generation: r.previous,
            generation: r.generation,
            events_replayed: r.events,
            events_skipped: r.rejected,
            values_purged: r.purged,
            seconds: r.took.as_secs_f64(),
        }))
    }
}
