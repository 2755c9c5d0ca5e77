//! A compiled set of subnets answering "which subnet, first in the order given, holds this
//! address?": one hash map per prefix length present, from the truncated network to the first
//! value stored for it. A lookup costs one hash probe per prefix length in the table (at most
//! 33 for IPv4, 129 for IPv6), whatever the number of subnets. The restrictions keep one per
//! category for their `ip_subnet` rows.

use std::hash::Hash;
use std::net::IpAddr;
use std::ops::BitAnd;

// A probe per prefix length: the hash is most of a lookup, and foldhash's halves it against
// SipHash (see Cargo.toml).
use foldhash::HashMap;
use ipnet::IpNet;

/// The subnets of one prefix length.
#[derive(Debug, Clone)]
struct Length<A, T> {
    mask: A,
    /// Network → (place in insertion order, value): the first one inserted.
    networks: HashMap<A, (u32, T)>,
    /// The earliest place held here: a length that cannot beat the best hit is skipped.
    first: u32,
}

#[derive(Debug, Clone)]
pub struct SubnetTable<T> {
    v4: Vec<Length<u32, T>>,
    v6: Vec<Length<u128, T>>,
    inserted: u32,
}

impl<T> Default for SubnetTable<T> {
    fn default() -> Self {
        SubnetTable {
            v4: Vec::new(),
            v6: Vec::new(),
            inserted: 0,
        }
    }
}

fn store<A: Copy + Eq + Hash, T>(
    lengths: &mut Vec<Length<A, T>>,
    mask: A,
    network: A,
    at: (u32, T),
) {
    let length = match lengths.iter().position(|l| l.mask == mask) {
        Some(index) => &mut lengths[index],
        None => {
            lengths.push(Length {
                mask,
                networks: HashMap::default(),
                first: at.0,
            });
            lengths.last_mut().expect("just pushed")
        }
    };
    length.networks.entry(network).or_insert(at);
}

fn first_holding<A, T>(lengths: &[Length<A, T>], address: A) -> Option<(u32, T)>
where
    A: Copy + Eq + Hash + BitAnd<Output = A>,
    T: Copy,
{
    let mut best: Option<(u32, T)> = None;
    for length in lengths {
        if best.is_some_and(|(place, _)| place < length.first) {
            continue;
        }
        if let Some(&(place, value)) = length.networks.get(&(address & length.mask))
            && best.is_none_or(|(best, _)| place < best)
        {
            best = Some((place, value));
        }
    }
    best
}

impl<T: Copy> SubnetTable<T> {
    /// A network inserted again keeps its first value (its place too).
    pub fn insert(&mut self, net: IpNet, value: T) {
        let at = (self.inserted, value);
        self.inserted += 1;
        match net.trunc() {
            IpNet::V4(net) => store(
                &mut self.v4,
                u32::from(net.netmask()),
                u32::from(net.network()),
                at,
            ),
            IpNet::V6(net) => store(
                &mut self.v6,
                u128::from(net.netmask()),
                u128::from(net.network()),
                at,
            ),
        }
    }

    /// The value of the earliest inserted subnet that holds `ip`. As `IpNet::contains`, an
    /// IPv4 address is never in an IPv6 subnet nor the reverse (IPv4-mapped included).
    pub fn find(&self, ip: IpAddr) -> Option<T> {
        let hit = match ip {
            IpAddr::V4(ip) => first_holding(&self.v4, u32::from(ip)),
            IpAddr::V6(ip) => first_holding(&self.v6, u128::from(ip)),
        };
        hit.map(|(_, value)| value)
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::SubnetTable;

    fn table(nets: &[&str]) -> SubnetTable<usize> {
        let mut table = SubnetTable::default();
        for (index, net) in nets.iter().enumerate() {
            table.insert(net.parse().unwrap(), index);
        }
        table
    }

    #[test]
    fn the_first_subnet_inserted_that_holds_the_address_wins() {
        let t = table(&["10.1.0.0/16", "10.0.0.0/8", "10.1.2.0/24", "10.1.2.3/32"]);
        assert_eq!(t.find("10.1.2.3".parse().unwrap()), Some(0));
        assert_eq!(t.find("10.2.0.1".parse().unwrap()), Some(1));
        assert_eq!(t.find("11.0.0.1".parse().unwrap()), None);
        let t = table(&["10.1.2.3/32", "10.0.0.0/8", "10.1.2.0/24"]);
        assert_eq!(t.find("10.1.2.3".parse().unwrap()), Some(0));
        assert_eq!(t.find("10.1.2.4".parse().unwrap()), Some(1));
    }

    #[test]
    fn host_bits_are_dropped_and_duplicates_keep_the_first_value() {
        let t = table(&["10.1.2.3/24", "10.1.2.0/24", "0.0.0.0/0"]);
        assert_eq!(t.find("10.1.2.200".parse().unwrap()), Some(0));
        assert_eq!(t.find("192.0.2.1".parse().unwrap()), Some(2));
    }

    #[test]
    fn families_never_mix() {
        let t = table(&["0.0.0.0/0", "2001:db8::/32"]);
        assert_eq!(t.find("::ffff:10.0.0.1".parse().unwrap()), None);
        assert_eq!(t.find("2001:db8::1".parse().unwrap()), Some(1));
        assert_eq!(table(&["::/0"]).find("10.0.0.1".parse().unwrap()), None);
        assert!(SubnetTable::<u8>::default().is_empty());
    }
}
