//! Which shard a target belongs to: FNV-1a (64-bit) of its display name, modulo the number of
//! shards. A hash of the name alone, not a position in the list, so pods that read the list at
//! different times (a tenant added meanwhile, or the rows in another order) still split it
//! disjointly and completely.

/// FNV-1a, 64-bit, of `bytes`.
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The shard of the target shown as `name`, out of `shards` (at least 1).
pub(crate) fn of(name: &str, shards: u64) -> u64 {
    fnv1a64(name.as_bytes()) % shards.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn shards_split_any_list_disjointly_and_completely() {
        let names: Vec<String> = (0..1000).map(|i| format!("tenant_{i}")).collect();
        let mut counts = [0usize; 3];
        for n in &names {
            let s = of(n, 3);
            counts[s as usize] += 1;
            // Stable: the same name, the same shard, whatever else is in the list.
            assert_eq!(s, of(n, 3));
        }
        assert_eq!(counts.iter().sum::<usize>(), 1000);
        assert!(counts.iter().all(|c| *c > 250), "{counts:?}");
        assert_eq!(of("anything", 1), 0);
    }
}
