//! Who does what on the bus, as the role table says (`contracts::roles`): each role's
//! stream, the durable consumers it reads through and the key-value buckets it keeps.
//! Services take their consumer specs from there and [`crate::access`] derives each
//! role's permissions from the same table, so a new consumer cannot be declared without
//! being authorised.

pub use contracts::roles::{
    ConsumerSpec, MYPAGE_BUCKET, Role, gift, mission, mypage, notification, ops, reward, wallet,
};

/// Where a role's replies arrive (JetStream API answers, pulled messages, KV watches):
/// its own prefix, so that it alone may subscribe there and no role reads another's.
pub fn inbox_prefix(role: &str) -> String {
    format!("_INBOX.{role}")
}

/// Every role that talks to NATS (auth and the gateway do not).
pub const ALL: [Role; contracts::roles::ON_BUS.len()] = contracts::roles::ON_BUS;

/// The role of a service on the bus, by name.
pub fn find(name: &str) -> Option<&'static Role> {
    ALL.iter().find(|r| r.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_found_by_name() {
        assert_eq!(find("wallet"), Some(&wallet::ROLE));
        assert_eq!(find("gateway"), None);
        assert_eq!(find("auth"), None, "auth is not on the bus");
        assert_eq!(inbox_prefix("wallet"), "_INBOX.wallet");
    }
}
