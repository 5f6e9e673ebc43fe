//! A least-recently-used cache bounded in bytes, for tiles in RAM and textures on the GPU.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

/// Entries are evicted oldest-use first once their byte sizes add up past the budget.
pub struct ByteLru<K, V> {
    budget: usize,
    used: usize,
    tick: u64,
    entries: HashMap<K, (V, usize, u64)>,
    order: BTreeMap<u64, K>,
}

impl<K: Clone + Eq + Hash, V> ByteLru<K, V> {
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            used: 0,
            tick: 0,
            entries: HashMap::new(),
            order: BTreeMap::new(),
        }
    }

    /// Bytes held now (never above the budget).
    pub fn used(&self) -> usize {
        self.used
    }

    pub fn budget(&self) -> usize {
        self.budget
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }

    /// The value, marked as just used.
    pub fn get(&mut self, key: &K) -> Option<&V> {
        self.tick += 1;
        let tick = self.tick;
        let entry = self.entries.get_mut(key)?;
        self.order.remove(&entry.2);
        entry.2 = tick;
        self.order.insert(tick, key.clone());
        Some(&entry.0)
    }

    /// Insert (or replace) a value of `bytes` bytes, evicting the least recently used entries
    /// to stay within the budget. A value larger than the whole budget is not kept.
    /// Returns the evicted keys.
    pub fn insert(&mut self, key: K, value: V, bytes: usize) -> Vec<K> {
        self.remove(&key);
        if bytes > self.budget {
            return Vec::new();
        }
        let mut evicted = Vec::new();
        while self.used + bytes > self.budget {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some((_, b, _)) = self.entries.remove(&oldest) {
                self.used -= b;
            }
            evicted.push(oldest);
        }
        self.tick += 1;
        self.order.insert(self.tick, key.clone());
        self.entries.insert(key, (value, bytes, self.tick));
        self.used += bytes;
        evicted
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        let (value, bytes, tick) = self.entries.remove(key)?;
        self.order.remove(&tick);
        self.used -= bytes;
        Some(value)
    }

    /// Drop every entry whose key matches.
    pub fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) {
        let gone: Vec<K> = self.entries.keys().filter(|k| !keep(k)).cloned().collect();
        for k in gone {
            self.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_keeps_within_the_byte_budget_and_drops_the_oldest() {
        let mut c = ByteLru::new(100);
        c.insert(1, "a", 40);
        c.insert(2, "b", 40);
        assert_eq!(c.get(&1), Some(&"a")); // 1 is now newer than 2
        let evicted = c.insert(3, "c", 40);
        assert_eq!(evicted, vec![2]);
        assert!(c.used() <= 100);
        assert!(c.contains(&1) && c.contains(&3) && !c.contains(&2));
    }

    #[test]
    fn a_value_bigger_than_the_budget_is_not_kept() {
        let mut c = ByteLru::new(10);
        c.insert(1, (), 5);
        assert!(c.insert(2, (), 11).is_empty());
        assert!(!c.contains(&2));
        assert_eq!(c.used(), 5);
    }

    #[test]
    fn replacing_a_key_updates_the_byte_count() {
        let mut c = ByteLru::new(100);
        c.insert(1, (), 30);
        c.insert(1, (), 50);
        assert_eq!(c.used(), 50);
        assert_eq!(c.len(), 1);
        c.remove(&1);
        assert_eq!(c.used(), 0);
    }

    #[test]
    fn many_inserts_never_exceed_the_budget() {
        let mut c = ByteLru::new(1000);
        for i in 0..500u32 {
            c.insert(i, i, (i as usize * 37) % 300 + 1);
            assert!(c.used() <= 1000);
        }
    }
}
