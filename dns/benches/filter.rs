//! Filter benchmarks: filled in with the compiled set.
fn main() {}
