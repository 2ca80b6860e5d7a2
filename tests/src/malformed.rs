//! Malformed DNS packets for robustness tests (sent by the `e2e-flood`
//! helper binary from inside a lab namespace).
//!
//! Generation is deterministic from a seed, so a crash can be replayed.

/// A small xorshift generator: deterministic, no dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator (a zero seed is replaced, xorshift needs non-zero).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform-ish in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// Random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

/// The kinds of malformation produced, in rotation.
pub const KINDS: [&str; 8] = [
    "random bytes",
    "truncated header",
    "label longer than the packet",
    "reserved label type",
    "compression pointer loop",
    "pointer past the end",
    "counts larger than the packet",
    "response sent as a query",
];

/// Packet number `i` of the flood.
pub fn packet(rng: &mut Rng, i: usize) -> Vec<u8> {
    let id = (rng.next_u64() as u16).to_be_bytes();
    // Header: id, RD, QDCOUNT=1.
    let header = |qd: u16, an: u16, flags: [u8; 2]| -> Vec<u8> {
        let mut h = Vec::with_capacity(12);
        h.extend_from_slice(&id);
        h.extend_from_slice(&flags);
        h.extend_from_slice(&qd.to_be_bytes());
        h.extend_from_slice(&an.to_be_bytes());
        h.extend_from_slice(&[0, 0, 0, 0]);
        h
    };
    let query = [0x01, 0x00];
    match i % KINDS.len() {
        0 => {
            let len = rng.below(600);
            rng.bytes(len)
        }
        1 => {
            let len = rng.below(12);
            header(1, 0, query)[..len].to_vec()
        }
        2 => {
            let mut p = header(1, 0, query);
            p.push(63);
            p.extend_from_slice(b"short");
            p
        }
        3 => {
            let mut p = header(1, 0, query);
            // 0x40 and 0x80 are reserved label types.
            p.push(if rng.below(2) == 0 { 0x40 } else { 0x80 });
            p.extend_from_slice(&[3, b'a', b'b', b'c', 0, 0, 1, 0, 1]);
            p
        }
        4 => {
            let mut p = header(1, 0, query);
            if rng.below(2) == 0 {
                // Name at offset 12 pointing to itself.
                p.extend_from_slice(&[0xc0, 12]);
            } else {
                // Two labels then a pointer back to the first.
                p.extend_from_slice(&[1, b'a', 1, b'b', 0xc0, 12]);
            }
            p.extend_from_slice(&[0, 1, 0, 1]);
            p
        }
        5 => {
            let mut p = header(1, 0, query);
            p.extend_from_slice(&[3, b'w', b'w', b'w', 0xc0, 0xff, 0, 1, 0, 1]);
            p
        }
        6 => {
            let mut p = header(0xffff, 0xffff, query);
            p.extend_from_slice(&[3, b'w', b'w', b'w', 0, 0, 1, 0, 1]);
            p
        }
        _ => {
            // QR=1: must not be answered (reflection loops).
            let mut p = header(1, 0, [0x81, 0x80]);
            p.extend_from_slice(&[3, b'w', b'w', b'w', 0, 0, 1, 0, 1]);
            p
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_varied() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let pa: Vec<_> = (0..32).map(|i| packet(&mut a, i)).collect();
        let pb: Vec<_> = (0..32).map(|i| packet(&mut b, i)).collect();
        assert_eq!(pa, pb);
        assert!(pa.iter().any(|p| p.len() < 12));
        assert!(pa.iter().any(|p| p.windows(2).any(|w| w == [0xc0, 12])));
    }
}
