//! Latency histograms in the JSON document, losslessly: HdrHistogram's V2
//! format compressed with DEFLATE, in base64. `grpclb merge` adds them back
//! together exactly, so the percentiles of a merge are the percentiles of
//! every call that every client made.

use std::io::Read;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

/// The V2 cookies (plain and compressed) that open an encoded histogram
/// (the base cookie with the word size, 0x10, or'ed in).
const V2_COOKIE: u32 = 0x1c84_9313;
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9314;
/// A V2 header: cookie, payload length, offset, digits, low, high, ratio.
const V2_HEADER: usize = 40;
/// Far beyond any real histogram (3 digits, µs up to hours: under 1 MiB),
/// so a crafted document cannot make the decoder allocate gigabytes.
const MAX_DECODED: u64 = 16 << 20;

/// Why an encoded histogram could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HistogramError {
    #[error("not base64 ({0})")]
    Base64(#[from] base64::DecodeError),
    #[error("not an HdrHistogram V2 histogram ({0})")]
    Format(String),
}

/// Encodes a histogram as base64 of its V2 + DEFLATE serialization.
pub fn encode(histogram: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    // Serializing into memory fails only for a histogram too large to
    // describe, which a latency histogram never is; an empty string then
    // makes a merge reject the document instead of reading wrong counts.
    match V2DeflateSerializer::new().serialize(histogram, &mut bytes) {
        Ok(_) => STANDARD.encode(bytes),
        Err(_) => String::new(),
    }
}

/// Decodes what [`encode`] wrote (or plain V2 in base64).
pub fn decode(text: &str) -> Result<Histogram<u64>, HistogramError> {
    let bytes = STANDARD.decode(text.trim())?;
    let plain = plain_v2(&bytes)?;
    // The payload length was checked against the bytes at hand; the
    // decoder is still third-party code reading untrusted input, so a
    // panic in it is a corrupt histogram, not a crash.
    let decoded = std::panic::catch_unwind(|| {
        Deserializer::new().deserialize::<u64, _>(&mut plain.as_slice())
    });
    match decoded {
        Ok(Ok(histogram)) => Ok(histogram),
        Ok(Err(e)) => Err(HistogramError::Format(e.to_string())),
        Err(_) => Err(HistogramError::Format("its counts do not decode".into())),
    }
}

/// The plain V2 bytes, inflated when compressed, with the payload length
/// in the header checked against what is really there.
fn plain_v2(bytes: &[u8]) -> Result<Vec<u8>, HistogramError> {
    let word = |b: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    let too_short = || HistogramError::Format("too short".into());
    let plain = match word(bytes, 0).ok_or_else(too_short)? {
        V2_COOKIE => bytes.to_vec(),
        V2_COMPRESSED_COOKIE => {
            let mut inflated = Vec::new();
            flate2::read::ZlibDecoder::new(bytes.get(8..).ok_or_else(too_short)?)
                .take(MAX_DECODED)
                .read_to_end(&mut inflated)
                .map_err(|e| HistogramError::Format(format!("DEFLATE: {e}")))?;
            inflated
        }
        _ => return Err(HistogramError::Format("unknown cookie".into())),
    };
    if word(&plain, 0) != Some(V2_COOKIE) {
        return Err(HistogramError::Format("unknown inner cookie".into()));
    }
    let payload = word(&plain, 4).ok_or_else(too_short)? as usize;
    if plain.len() < V2_HEADER || plain.len() - V2_HEADER < payload {
        return Err(HistogramError::Format(
            "its header promises more counts than it holds".into(),
        ));
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn histogram(values: &[u64]) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("bounds");
        for &v in values {
            h.saturating_record(v);
        }
        h
    }

    proptest! {
        #[test]
        fn a_histogram_read_back_is_identical(values in prop::collection::vec(1u64..3_600_000_000, 0..500)) {
            let h = histogram(&values);
            let back = decode(&encode(&h)).expect("decodes");
            prop_assert!(back == h);
            let pairs = |h: &Histogram<u64>| -> Vec<(u64, u64)> {
                h.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect()
            };
            prop_assert_eq!(pairs(&back), pairs(&h));
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for text in [
            "",
            "not base64!",
            "AAAA",
            "HISTFAAAAB94nJNpmSzMwMDAxAABzFCaEUSw2X+AsQBDDQMm",
        ] {
            assert!(decode(text).is_err(), "{text:?}");
        }
        // A header that promises a huge payload.
        let mut bytes = V2_COOKIE.to_be_bytes().to_vec();
        bytes.extend(u32::MAX.to_be_bytes());
        bytes.extend([0u8; 32]);
        assert!(decode(&STANDARD.encode(bytes)).is_err());
    }
}
