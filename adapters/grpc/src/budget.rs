//! Request bytes a server holds in memory at once, bounded per connection, per client
//! address and in all (`MAX_BUFFERED_BYTES_PER_CONNECTION`, `..._PER_ADDRESS`,
//! `MAX_BUFFERED_BYTES`). The framing check ([`crate::guard`]) reserves a message's
//! announced length as soon as its prefix is read — before the bytes arrive — so 200
//! calls each announcing 4 MiB and never finishing hold at most the budget, and the
//! calls beyond it are refused at once instead of being read. A reservation is given
//! back when the call is over (its [`Reservation`] dropped).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use tonic::Status;

/// The bounds, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferLimits {
    pub per_connection: usize,
    pub per_address: usize,
    pub total: usize,
}

/// What is held, and by whom.
#[derive(Debug)]
pub struct Budget {
    limits: BufferLimits,
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    total: usize,
    connections: HashMap<SocketAddr, usize>,
    addresses: HashMap<IpAddr, usize>,
}

/// Which bound a reservation would have crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhausted {
    Connection,
    Address,
    Total,
}

impl From<Exhausted> for Status {
    /// The client's own connection or address: `RESOURCE_EXHAUSTED`; the server as a
    /// whole: `UNAVAILABLE` (another replica may have room). Either says when to retry.
    fn from(e: Exhausted) -> Self {
        let mut s = match e {
            Exhausted::Connection => Status::resource_exhausted(
                "request: too many request bytes in flight on this connection; try again in 1 s",
            ),
            Exhausted::Address => Status::resource_exhausted(
                "request: too many request bytes in flight from your address; try again in 1 s",
            ),
            Exhausted::Total => Status::unavailable("the server is busy reading other requests; try again in 1 s"),
        };
        s.metadata_mut().insert("retry-after", 1.into());
        s
    }
}

impl Budget {
    pub fn new(limits: BufferLimits) -> Arc<Self> {
        Arc::new(Self { limits, held: Mutex::default() })
    }

    /// An empty reservation for a request on `connection` from `address` (either unknown
    /// when the transport does not say); it grows with [`Reservation::grow_to`].
    pub fn open(self: &Arc<Self>, connection: Option<SocketAddr>, address: Option<IpAddr>) -> Reservation {
        Reservation { budget: Arc::clone(self), connection, address, bytes: 0 }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes held now: in all, on `connection`, from `address`.
    pub fn held(&self, connection: SocketAddr, address: IpAddr) -> (usize, usize, usize) {
        let held = self.lock();
        let on = |n: Option<&usize>| n.copied().unwrap_or(0);
        (held.total, on(held.connections.get(&connection)), on(held.addresses.get(&address)))
    }
}

/// Bytes one request holds; given back on drop.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<Budget>,
    connection: Option<SocketAddr>,
    address: Option<IpAddr>,
    bytes: usize,
}

impl Reservation {
    /// Holds `bytes` in all (more than now), if every bound allows it; else nothing changes.
    ///
    /// # Errors
    /// The bound it would cross.
    pub fn grow_to(&mut self, bytes: usize) -> Result<(), Exhausted> {
        let Some(more) = bytes.checked_sub(self.bytes).filter(|m| *m > 0) else { return Ok(()) };
        let limits = self.budget.limits;
        let mut held = self.budget.lock();
        let connection = self.connection.and_then(|c| held.connections.get(&c)).copied().unwrap_or(0);
        if connection + more > limits.per_connection {
            return Err(Exhausted::Connection);
        }
        let address = self.address.and_then(|a| held.addresses.get(&a)).copied().unwrap_or(0);
        if address + more > limits.per_address {
            return Err(Exhausted::Address);
        }
        if held.total + more > limits.total {
            return Err(Exhausted::Total);
        }
        held.total += more;
        if let Some(c) = self.connection {
            *held.connections.entry(c).or_default() += more;
        }
        if let Some(a) = self.address {
            *held.addresses.entry(a).or_default() += more;
        }
        self.bytes = bytes;
        Ok(())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.bytes == 0 {
            return;
        }
        let mut held = self.budget.lock();
        held.total -= self.bytes;
        let bytes = self.bytes;
        let give_back = |n: &mut usize| {
            *n -= bytes;
            *n > 0
        };
        if let Some(c) = self.connection
            && let Some(n) = held.connections.get_mut(&c)
            && !give_back(n)
        {
            held.connections.remove(&c);
        }
        if let Some(a) = self.address
            && let Some(n) = held.addresses.get_mut(&a)
            && !give_back(n)
        {
            held.addresses.remove(&a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(port: u16) -> Option<SocketAddr> {
        Some(SocketAddr::from(([192, 0, 2, 1], port)))
    }

    fn addr(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([192, 0, 2, last]))
    }

    #[test]
    fn each_bound_refuses_what_would_cross_it_and_a_dropped_reservation_gives_its_bytes_back() {
        let budget = Budget::new(BufferLimits { per_connection: 10, per_address: 15, total: 20 });
        let mut a = budget.open(conn(1), addr(1));
        a.grow_to(8).unwrap();
        assert_eq!(budget.open(conn(1), addr(1)).grow_to(3), Err(Exhausted::Connection));
        let mut b = budget.open(conn(2), addr(1));
        assert_eq!(b.grow_to(8), Err(Exhausted::Address), "8 + 8 from one address");
        b.grow_to(7).unwrap();
        let mut c = budget.open(conn(3), addr(2));
        assert_eq!(c.grow_to(6), Err(Exhausted::Total), "15 + 6 in all");
        c.grow_to(5).unwrap();
        c.grow_to(3).unwrap(); // never shrinks
        assert_eq!(budget.held(conn(1).unwrap(), addr(1).unwrap()), (20, 8, 15));
        drop(a);
        assert_eq!(budget.held(conn(1).unwrap(), addr(1).unwrap()), (12, 0, 7));
        drop((b, c));
        assert_eq!(budget.held(conn(2).unwrap(), addr(1).unwrap()), (0, 0, 0));
        let held = budget.lock();
        assert!(held.connections.is_empty() && held.addresses.is_empty(), "nothing kept");
    }

    #[test]
    fn a_refusal_says_whose_bound_and_when_to_retry() {
        let s = Status::from(Exhausted::Address);
        assert_eq!(s.code(), tonic::Code::ResourceExhausted);
        assert!(s.message().contains("from your address"), "{}", s.message());
        assert_eq!(s.metadata().get("retry-after").unwrap(), "1");
        assert_eq!(Status::from(Exhausted::Total).code(), tonic::Code::Unavailable);
    }
}
