//! The keys under a prefix and what each one means, kept in key order.
//!
//! The resolver applies etcd's reads and watch events here and derives the
//! endpoint set from it; a key whose value is not an endpoint stays in the
//! set as *skipped*, with its reason, so that it can be reported.

use std::collections::BTreeMap;

use crate::etcd::value::{self, Decoded};
use crate::resolve::{Endpoint, Notice};

/// What one key holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Endpoint { decoded: Decoded, lease: i64 },
    Skipped { reason: String },
}

/// One key/value pair as etcd returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawKey {
    pub key: String,
    pub value: Vec<u8>,
    /// The lease the key is attached to; 0 for none.
    pub lease: i64,
}

impl RawKey {
    /// Copies a key out of etcd's answer (keys are shown lossily when not UTF-8).
    pub fn from_kv(kv: &etcd_client::KeyValue) -> RawKey {
        RawKey {
            key: String::from_utf8_lossy(kv.key()).into_owned(),
            value: kv.value().to_vec(),
            lease: kv.lease(),
        }
    }
}

/// Every key under the prefix, by key.
#[derive(Debug, Default)]
pub struct KeySet {
    entries: BTreeMap<String, Entry>,
}

impl KeySet {
    /// Replaces every key with those of a fresh read of the prefix.
    ///
    /// Returns a notice for each key that is skipped and was not already
    /// skipped for the same reason.
    pub fn replace(&mut self, keys: Vec<RawKey>) -> Vec<Notice> {
        let previous = std::mem::take(&mut self.entries);
        let mut notices = Vec::new();
        for raw in keys {
            let entry = entry_of(&raw);
            if let Some(notice) = skip_notice(&raw.key, &entry, previous.get(&raw.key)) {
                notices.push(notice);
            }
            self.entries.insert(raw.key, entry);
        }
        notices
    }

    /// Applies a PUT of one key. Returns a notice if the key is now skipped
    /// (and was not already, for the same reason).
    pub fn put(&mut self, raw: RawKey) -> Option<Notice> {
        let entry = entry_of(&raw);
        let notice = skip_notice(&raw.key, &entry, self.entries.get(&raw.key));
        self.entries.insert(raw.key, entry);
        notice
    }

    /// Applies a DELETE of one key (deleted, or its lease expired).
    /// Returns true if the key was known.
    pub fn delete(&mut self, key: &str) -> bool {
        self.entries.remove(key).is_some()
    }

    /// The endpoint set: one endpoint per address, in key order; when two
    /// keys name the same address, the first key is its origin. TTLs are
    /// left unknown (the caller looks leases up).
    pub fn endpoints(&self) -> Vec<Endpoint> {
        let mut endpoints: Vec<Endpoint> = Vec::new();
        for (key, entry) in &self.entries {
            let Entry::Endpoint { decoded, lease } = entry else {
                continue;
            };
            if endpoints.iter().any(|e| e.address == decoded.address) {
                continue;
            }
            let mut endpoint = Endpoint::new(decoded.address.clone(), key.clone());
            endpoint.name = decoded.metadata.name.clone();
            endpoint.node = decoded.metadata.node.clone();
            endpoint.zone = decoded.metadata.zone.clone();
            endpoint.lease = (*lease != 0).then_some(*lease);
            endpoints.push(endpoint);
        }
        endpoints
    }

    /// Keys that are skipped, with why.
    #[cfg(test)]
    pub fn skipped(&self) -> Vec<(String, String)> {
        self.entries
            .iter()
            .filter_map(|(key, entry)| match entry {
                Entry::Skipped { reason } => Some((key.clone(), reason.clone())),
                Entry::Endpoint { .. } => None,
            })
            .collect()
    }
}

fn entry_of(raw: &RawKey) -> Entry {
    match value::decode(&raw.value) {
        Ok(decoded) => Entry::Endpoint {
            decoded,
            lease: raw.lease,
        },
        Err(reason) => Entry::Skipped { reason },
    }
}

/// The notice for a key that became skipped, unless it already was for the same reason.
fn skip_notice(key: &str, entry: &Entry, previous: Option<&Entry>) -> Option<Notice> {
    match entry {
        Entry::Skipped { reason } if previous != Some(entry) => Some(Notice::Skipped {
            key: key.to_string(),
            reason: reason.clone(),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(key: &str, value: &str, lease: i64) -> RawKey {
        RawKey {
            key: key.into(),
            value: value.as_bytes().to_vec(),
            lease,
        }
    }

    #[test]
    fn endpoints_follow_puts_and_deletes() {
        let mut set = KeySet::default();
        assert!(
            set.replace(vec![
                raw("/s/a", "10.0.0.1:80", 7),
                raw("/s/b", "10.0.0.2:80", 0)
            ])
            .is_empty()
        );
        let endpoints = set.endpoints();
        assert_eq!(endpoints.len(), 2);
        assert_eq!(endpoints[0].origin, "/s/a");
        assert_eq!(endpoints[0].lease, Some(7));
        assert_eq!(endpoints[1].lease, None);
        assert!(
            set.put(raw("/s/c", r#"{"Addr":"10.0.0.3:80"}"#, 0))
                .is_none()
        );
        assert!(set.delete("/s/a"));
        assert!(!set.delete("/s/a"));
        let addresses: Vec<_> = set.endpoints().into_iter().map(|e| e.address).collect();
        assert_eq!(addresses, ["10.0.0.2:80", "10.0.0.3:80"]);
    }

    #[test]
    fn malformed_value_is_reported_once_and_kept_as_skipped() {
        let mut set = KeySet::default();
        let notices = set.replace(vec![
            raw("/s/a", "10.0.0.1:80", 0),
            raw("/s/bad", "garbage", 0),
        ]);
        assert_eq!(notices.len(), 1);
        assert!(notices[0].to_string().contains("/s/bad"), "{}", notices[0]);
        assert_eq!(set.endpoints().len(), 1);
        assert_eq!(set.skipped().len(), 1);
        // Re-reading the same value does not repeat the notice; a new reason does.
        assert!(set.replace(vec![raw("/s/bad", "garbage", 0)]).is_empty());
        assert!(set.put(raw("/s/bad", "10.0.0.9", 0)).is_some());
        // A fix clears it.
        assert!(set.put(raw("/s/bad", "10.0.0.9:80", 0)).is_none());
        assert!(set.skipped().is_empty());
    }

    #[test]
    fn two_keys_with_one_address_are_one_endpoint() {
        let mut set = KeySet::default();
        set.replace(vec![
            raw("/s/x", "10.0.0.1:80", 0),
            raw("/s/y", "10.0.0.1:80", 0),
        ]);
        let endpoints = set.endpoints();
        assert_eq!(endpoints.len(), 1);
        assert_eq!(endpoints[0].origin, "/s/x");
        set.delete("/s/x");
        assert_eq!(set.endpoints()[0].origin, "/s/y");
    }
}
