//! The query log: a bounded in-memory ring for live viewing and SQLite for
//! history, both fed off the hot path.
