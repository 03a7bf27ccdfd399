//! `SmallMap`: an ordered map that takes little memory while it holds few entries.
//!
//! The memory saver keeps several maps per checkpoint and per channel that hold one or two
//! entries in the common case (a step's pending writes, a channel's versions on a short
//! thread) and sometimes thousands. A `BTreeMap` allocates a node of eleven entries for even
//! one, and a `HashMap` a table of four buckets: on a graph run kept on a fresh thread they
//! were most of what the saver kept. `SmallMap` holds its entries in a sorted `Vec` sized to
//! them, and past `FEW` entries in a `BTreeMap`, so a large map still inserts in logarithmic
//! time.

use std::borrow::Borrow;
use std::collections::BTreeMap;

/// Entries a `SmallMap` keeps in a sorted `Vec` before it moves them to a `BTreeMap`.
pub const FEW: usize = 32;

#[derive(Clone, Debug)]
pub enum SmallMap<K, V> {
    Few(Vec<(K, V)>),
    Many(BTreeMap<K, V>),
}

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap::Few(Vec::new())
    }
}

impl<K: Ord, V> SmallMap<K, V> {
    pub fn len(&self) -> usize {
        match self {
            SmallMap::Few(few) => few.len(),
            SmallMap::Many(many) => many.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        match self {
            SmallMap::Few(few) => few.binary_search_by(|(k, _)| k.borrow().cmp(key)).ok().map(|at| &few[at].1),
            SmallMap::Many(many) => many.get(key),
        }
    }

    pub fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.get(key).is_some()
    }

    /// Stores `value` under `key` unless the key holds one already (found in one search);
    /// whether it did.
    pub fn insert_new(&mut self, key: K, value: V) -> bool {
        match self {
            SmallMap::Few(few) => match few.binary_search_by(|(k, _)| k.cmp(&key)) {
                Ok(_) => false,
                Err(at) => {
                    self.insert_absent(at, key, value);
                    true
                }
            },
            SmallMap::Many(many) => match many.entry(key) {
                std::collections::btree_map::Entry::Occupied(_) => false,
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(value);
                    true
                }
            },
        }
    }

    /// Stores `value` under `key`, replacing what was there.
    pub fn insert(&mut self, key: K, value: V) {
        match self {
            SmallMap::Few(few) => match few.binary_search_by(|(k, _)| k.cmp(&key)) {
                Ok(at) => few[at].1 = value,
                Err(at) => self.insert_absent(at, key, value),
            },
            SmallMap::Many(many) => {
                many.insert(key, value);
            }
        }
    }

    /// Stores a key the small form does not hold, at `at` (where a search put it), moving the
    /// entries to a `BTreeMap` once there are `FEW`.
    fn insert_absent(&mut self, at: usize, key: K, value: V) {
        let SmallMap::Few(few) = self else {
            unreachable!("only the small form has positions");
        };
        if few.len() >= FEW {
            let mut many: BTreeMap<K, V> = std::mem::take(few).into_iter().collect();
            many.insert(key, value);
            *self = SmallMap::Many(many);
            return;
        }
        if few.capacity() == 0 {
            // Room for two (a task's usual value and trigger writes; a channel and its next
            // version), not the four a first push reserves.
            few.reserve_exact(2);
        }
        few.insert(at, (key, value));
    }

    /// The entries in key order.
    pub fn iter(&self) -> Iter<'_, K, V> {
        match self {
            SmallMap::Few(few) => Iter::Few(few.iter()),
            SmallMap::Many(many) => Iter::Many(many.iter()),
        }
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.iter().map(|(_, v)| v)
    }

    pub fn values_mut(&mut self) -> ValuesMut<'_, K, V> {
        match self {
            SmallMap::Few(few) => ValuesMut::Few(few.iter_mut()),
            SmallMap::Many(many) => ValuesMut::Many(many.values_mut()),
        }
    }

    /// Keeps the entries `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        match self {
            SmallMap::Few(few) => few.retain_mut(|(k, v)| keep(k, v)),
            SmallMap::Many(many) => many.retain(|k, v| keep(k, v)),
        }
    }

    /// Adds `other`'s entries, which replace those under the same keys.
    pub fn extend(&mut self, other: SmallMap<K, V>) {
        for (key, value) in other {
            self.insert(key, value);
        }
    }
}

impl<K, V> IntoIterator for SmallMap<K, V> {
    type Item = (K, V);
    type IntoIter = IntoIter<K, V>;

    fn into_iter(self) -> IntoIter<K, V> {
        match self {
            SmallMap::Few(few) => IntoIter::Few(few.into_iter()),
            SmallMap::Many(many) => IntoIter::Many(many.into_iter()),
        }
    }
}

impl<'a, K: Ord, V> IntoIterator for &'a SmallMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;

    fn into_iter(self) -> Iter<'a, K, V> {
        self.iter()
    }
}

/// `SmallMap::iter`.
pub enum Iter<'a, K, V> {
    Few(std::slice::Iter<'a, (K, V)>),
    Many(std::collections::btree_map::Iter<'a, K, V>),
}

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Few(few) => few.next().map(|(k, v)| (k, v)),
            Iter::Many(many) => many.next(),
        }
    }
}

/// `SmallMap::values_mut`.
pub enum ValuesMut<'a, K, V> {
    Few(std::slice::IterMut<'a, (K, V)>),
    Many(std::collections::btree_map::ValuesMut<'a, K, V>),
}

impl<'a, K, V> Iterator for ValuesMut<'a, K, V> {
    type Item = &'a mut V;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            ValuesMut::Few(few) => few.next().map(|(_, v)| v),
            ValuesMut::Many(many) => many.next(),
        }
    }
}

/// `SmallMap::into_iter`.
pub enum IntoIter<K, V> {
    Few(std::vec::IntoIter<(K, V)>),
    Many(std::collections::btree_map::IntoIter<K, V>),
}

impl<K, V> Iterator for IntoIter<K, V> {
    type Item = (K, V);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            IntoIter::Few(few) => few.next(),
            IntoIter::Many(many) => many.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same inserts, lookups and removals on a `SmallMap` and a `BTreeMap`, across the
    /// move from the small form to the large one.
    #[test]
    fn behaves_as_an_ordered_map_on_both_sides_of_few() {
        let mut small: SmallMap<String, usize> = SmallMap::default();
        let mut reference = BTreeMap::new();
        for round in 0..3 {
            for i in 0..(FEW + 8) {
                let key = format!("k{:03}", (i * 37 + round) % (FEW + 8));
                small.insert(key.clone(), i + round);
                reference.insert(key, i + round);
                assert_eq!(small.len(), reference.len());
            }
        }
        assert!(matches!(small, SmallMap::Many(_)));
        let entries: Vec<(&String, &usize)> = small.iter().collect();
        assert_eq!(entries, reference.iter().collect::<Vec<_>>());
        assert_eq!(small.get("k005"), reference.get("k005"));
        assert!(!small.contains_key("missing"));
        assert!(!small.insert_new("k005".into(), 999));
        assert_eq!(small.get("k005"), reference.get("k005"));
        assert!(small.insert_new("k999".into(), 999));
        reference.insert("k999".into(), 999);
        small.retain(|k, _| k.ends_with('1'));
        reference.retain(|k, _| k.ends_with('1'));
        assert_eq!(small.iter().collect::<Vec<_>>(), reference.iter().collect::<Vec<_>>());
    }

    #[test]
    fn a_few_entries_stay_in_key_order_with_the_last_value() {
        let mut small: SmallMap<(String, i64), &str> = SmallMap::default();
        small.insert(("b".into(), 0), "b0");
        small.insert(("a".into(), 1), "a1");
        small.insert(("a".into(), -1), "a-1");
        small.insert(("b".into(), 0), "b0 again");
        assert!(matches!(small, SmallMap::Few(_)));
        assert_eq!(small.values().copied().collect::<Vec<_>>(), ["a-1", "a1", "b0 again"]);
        let mut other = SmallMap::default();
        other.insert(("a".into(), 1), "replaced");
        other.insert(("c".into(), 0), "c0");
        small.extend(other);
        assert_eq!(small.values().copied().collect::<Vec<_>>(), ["a-1", "replaced", "b0 again", "c0"]);
        assert!(!small.insert_new(("c".into(), 0), "kept?"));
        assert!(small.insert_new(("d".into(), 0), "d0"));
        assert_eq!(small.get(&("c".to_string(), 0)), Some(&"c0"));
        assert!(!small.is_empty());
    }
}
