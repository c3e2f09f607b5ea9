//! Generated clients, re-exported for the tests.

pub use contracts::pb::auth::v1::auth_service_client::AuthServiceClient;
pub use contracts::pb::gift::v1::gift_issuing_service_client::GiftIssuingServiceClient;
pub use contracts::pb::gift::v1::gift_service_client::GiftServiceClient;
pub use contracts::pb::mission::v1::mission_service_client::MissionServiceClient;
pub use contracts::pb::mypage::v1::my_page_service_client::MyPageServiceClient;
pub use contracts::pb::reward::v1::reward_service_client::RewardServiceClient;
pub use contracts::pb::wallet::v1::wallet_service_client::WalletServiceClient;
