//! `--print-responses N`: the first N response bodies of a run are kept as
//! they arrive (one atomic check per call once full) and decoded to JSON
//! only after the run, off the hot path.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use prost_reflect::MessageDescriptor;

use super::json::decode_to_json;

/// The first responses of a run, kept for a first look.
#[derive(Debug)]
pub struct ResponseSamples {
    limit: usize,
    taken: AtomicUsize,
    kept: Mutex<Vec<Sample>>,
    response: MessageDescriptor,
}

#[derive(Debug)]
struct Sample {
    /// The identity of the server that answered, when it sent one.
    from: Option<String>,
    body: Bytes,
}

impl ResponseSamples {
    /// Keeps up to `limit` bodies of `response` messages.
    pub fn new(limit: usize, response: MessageDescriptor) -> ResponseSamples {
        ResponseSamples {
            limit,
            taken: AtomicUsize::new(0),
            kept: Mutex::new(Vec::with_capacity(limit)),
            response,
        }
    }

    /// True while more responses are wanted (cheap: one atomic load).
    pub fn wants_more(&self) -> bool {
        self.taken.load(Ordering::Relaxed) < self.limit
    }

    /// Keeps this response if fewer than the limit were kept.
    pub fn offer(&self, from: Option<&str>, body: &Bytes) {
        if self.taken.fetch_add(1, Ordering::Relaxed) < self.limit
            && let Ok(mut kept) = self.kept.lock()
        {
            kept.push(Sample {
                from: from.map(str::to_string),
                body: body.clone(),
            });
        }
    }

    /// The kept responses, one line each: who answered, and the message as proto3 JSON.
    pub fn render(&self) -> String {
        let Ok(kept) = self.kept.lock() else {
            return String::new();
        };
        if kept.is_empty() {
            return format!("no {} response arrived to print", self.response.full_name());
        }
        kept.iter()
            .enumerate()
            .map(|(i, sample)| {
                let from = sample
                    .from
                    .as_deref()
                    .unwrap_or("a server that did not name itself");
                let json = decode_to_json(&sample.body, &self.response).unwrap_or_else(|e| e);
                format!("response {} of {} from {from}: {json}", i + 1, kept.len())
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::builtin_descriptors;

    #[test]
    fn only_the_first_responses_are_kept_and_printed_as_json() {
        let reply = builtin_descriptors()
            .get_message_by_name("grpclb.v1.EchoReply")
            .expect("EchoReply");
        let samples = ResponseSamples::new(2, reply);
        for body in [&b"\x0a\x01a"[..], b"\x0a\x01b", b"\x0a\x01c"] {
            samples.offer(Some("pod-a"), &Bytes::copy_from_slice(body));
        }
        assert!(!samples.wants_more());
        assert_eq!(
            samples.render(),
            "response 1 of 2 from pod-a: {\"payload\":\"YQ==\"}\nresponse 2 of 2 from pod-a: {\"payload\":\"Yg==\"}"
        );
    }
}
