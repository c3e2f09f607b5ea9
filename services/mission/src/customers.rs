//! The registry of customers the mission service asks before it records a game server's
//! or an admin's report: our auth service (`CUSTOMERS_URL`), or anyone when unset.

use kernel::{CustomerId, StoreError};
use mission_domain::ports::Customers;

pub enum Registry {
    /// No `CUSTOMERS_URL`: players come from another identity provider, which cannot be
    /// asked; a report for an id nobody registered is recorded (and inherited by whoever
    /// registers the id later).
    Anyone,
    /// Our auth service's `GET /customers/{id}`.
    Auth(Box<auth_adapter::customers::Lookup>),
}

impl Customers for Registry {
    async fn is_registered(&self, customer: &CustomerId) -> Result<bool, StoreError> {
        match self {
            Self::Anyone => Ok(true),
            Self::Auth(lookup) => lookup.is_registered(customer.as_str()).await.map_err(StoreError::Unavailable),
        }
    }
}
