//! The inbound gRPC adapter.

use std::sync::Arc;

use grpc_adapter::pb::wallet::v1 as pb;
use grpc_adapter::status;
use tonic::{Request, Response, Status};
use wallet_domain::{ItemStatus, WalletError, WalletItem};

use crate::App;

pub fn server(app: Arc<App>) -> pb::wallet_service_server::WalletServiceServer<Handlers> {
    pb::wallet_service_server::WalletServiceServer::new(Handlers { app })
}

pub struct Handlers {
    app: Arc<App>,
}

fn to_status(e: WalletError) -> Status {
    match e {
        WalletError::NotFound(what) => status::not_found(what),
        WalletError::Unavailable(detail) => status::unavailable(&detail),
    }
}

pub fn item_to_proto(i: WalletItem) -> pb::WalletItem {
    pb::WalletItem {
        reward_id: i.reward_id.to_string(),
        mission_id: i.mission_id.to_string(),
        points: i.points,
        status: match i.status {
            ItemStatus::Issued => pb::WalletItemStatus::Issued,
            ItemStatus::Exchanged => pb::WalletItemStatus::Exchanged,
        } as i32,
        gift_id: i.gift_id.map(|g| g.to_string()).unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl pb::wallet_service_server::WalletService for Handlers {
    async fn get_wallet(&self, req: Request<pb::GetWalletRequest>) -> Result<Response<pb::GetWalletResponse>, Status> {
        let customer = status::customer(&req.get_ref().customer_id)?;
        let wallet = self.app.wallet(&customer).await.map_err(to_status)?;
        let available_points = wallet.available_points();
        Ok(Response::new(pb::GetWalletResponse {
            wallet: Some(pb::Wallet {
                customer_id: wallet.customer_id.to_string(),
                available_points,
                items: wallet.items.into_iter().map(item_to_proto).collect(),
            }),
        }))
    }
}
