//! Statements kept prepared on their connection although diesel would not keep them.
//!
//! Diesel's statement cache leaves out every `UPDATE` and `INSERT` (their SQL may vary
//! with the values: a `None` skipped from a changeset, a `DEFAULT` for a missing value),
//! so on PostgreSQL each one is parsed and planned again on every call. Measured with
//! `pg_stat_statements` under the bench's load: the flow's updates spent as long in the
//! planner as in the executor (`bench/results/README.md`, "Statements kept prepared").
//! A statement of one fixed shape — the same columns every time, one row — gives the
//! same SQL every time, so caching it by its SQL is bounded: [`Prepared`] says so.

use std::cell::Cell;

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::{QueryResult, RunQueryDsl};

/// Wraps a statement of one fixed shape (one row, fixed columns) so that the connection
/// keeps it prepared, keyed by its SQL. Not for statements whose SQL grows with their
/// input (a multi-row `INSERT`, an `IN` list): each shape would be one more cache entry.
#[derive(Debug, Clone, Copy)]
pub struct Prepared<Q>(pub Q);

impl<Q> QueryId for Prepared<Q> {
    type QueryId = ();
    // Keyed by its SQL, not by its type: one type may give a few shapes (a `None`).
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<DB: Backend, Q: QueryFragment<DB>> QueryFragment<DB> for Prepared<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        // Diesel asks whether a statement may be cached by walking it in a pass of its
        // own, where an `UPDATE` or an `INSERT` says no; the pass is not public, so it is
        // told apart from the others by what `cast_database` converts (the SQL pass has
        // a query builder, the binds pass a collector, the debug pass its binds). In the
        // cache pass, the statement is not walked: nothing says no.
        use diesel::internal::derives::multiconnection::AstPassHelper;
        let (sql, binds) = (Cell::new(false), Cell::new(false));
        let mut pass = pass.cast_database::<DB>(
            |c| {
                binds.set(true);
                c
            },
            |q| {
                sql.set(true);
                q
            },
            |b| b,
            |l| l,
        );
        if sql.get() || binds.get() || pass.debug_binds().is_some() {
            return self.0.walk_ast(pass);
        }
        // The cache pass or the no-op pass: a statement of this kind is never a no-op
        // (`push_sql` says so to the latter and nothing to the former).
        pass.push_sql("");
        Ok(())
    }
}

impl<Q, Conn> RunQueryDsl<Conn> for Prepared<Q> {}

/// Wraps a statement over a table whose size swings — the outbox: empty while the relay
/// keeps up, large after an outage — so that PostgreSQL plans it for each call, for the
/// table as it is then.
///
/// Diesel keeps a `SELECT` or `DELETE` prepared, and after five calls PostgreSQL plans a
/// prepared statement once for every value. Planned just after the outbox was vacuumed
/// empty, that plan scans the whole table, and the connection keeps it for its life:
/// measured, one relay's `DELETE` took 1.45 ms a call where the others took 0.06 ms, and
/// after an outage it would scan the whole backlog for every batch it publishes.
///
/// The relay's claim (`SELECT .. ORDER BY seq LIMIT n FOR UPDATE SKIP LOCKED`) has the
/// same flaw: such a plan sorted 30,000 waiting events to claim 64 (4.9 ms in `psql`), so a
/// relay catching up after an outage would fall further behind the larger its backlog.
/// Planning each call costs the claim more while the relay keeps up (0.55 ms against
/// 0.14 ms under the bench's load): bounded, where the other is not.
/// `bench/results/README.md` has the figures.
#[derive(Debug, Clone, Copy)]
pub struct Unprepared<Q>(pub Q);

impl<Q> QueryId for Unprepared<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<DB: Backend, Q: QueryFragment<DB>> QueryFragment<DB> for Unprepared<Q> {
    fn walk_ast<'b>(&'b self, mut pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        pass.unsafe_to_cache_prepared();
        self.0.walk_ast(pass)
    }
}

impl<Q: Query> Query for Unprepared<Q> {
    type SqlType = Q::SqlType;
}

impl<Q, Conn> RunQueryDsl<Conn> for Unprepared<Q> {}
