//! Base64 in both alphabets over one engine (base64ct's URL-safe one): the sealed records and
//! JWS use base64url; Basic credentials and PEM bodies the standard alphabet, which is mapped
//! onto it character for character — one codec in the wasm instead of two.

use base64ct::{Base64UrlUnpadded, Encoding};

/// base64url without padding (RFC 4648 §5).
pub fn url_encode(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

/// The bytes of unpadded base64url; anything else is `None`.
pub fn url_decode(text: &str) -> Option<Vec<u8>> {
    Base64UrlUnpadded::decode_vec(text).ok()
}

/// Standard base64 with padding (RFC 4648 §4).
pub fn encode(bytes: &[u8]) -> String {
    let mut s = swap(url_encode(bytes), b'-', b'+', b'_', b'/');
    while s.len() % 4 != 0 {
        s.push('=');
    }
    s
}

/// `text` with `a` for `b` and `c` for `d` (ASCII for ASCII, so it stays UTF-8).
fn swap(text: String, a: u8, b: u8, c: u8, d: u8) -> String {
    let mut bytes = text.into_bytes();
    for x in &mut bytes {
        if *x == a {
            *x = b;
        } else if *x == c {
            *x = d;
        }
    }
    String::from_utf8(bytes).unwrap_or_default()
}

/// The bytes of standard base64 (padding optional); anything else, the URL-safe alphabet
/// included, is `None`.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let body = text.trim_end_matches('=');
    let padding = text.len() - body.len();
    // padding, when there is any, fills the last quantum exactly
    if body.contains(['-', '_', '=']) || (padding > 0 && (body.len() + padding) % 4 != 0) {
        return None;
    }
    url_decode(&swap(body.to_owned(), b'+', b'-', b'/', b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_alphabets_round_trip_and_match_rfc_4648() {
        for (bytes, std, url) in [
            (&b""[..], "", ""),
            (b"f", "Zg==", "Zg"),
            (b"fo", "Zm8=", "Zm8"),
            (b"foo", "Zm9v", "Zm9v"),
            (&[0xfb, 0xff, 0xbf][..], "+/+/", "-_-_"),
        ] {
            assert_eq!(encode(bytes), std);
            assert_eq!(url_encode(bytes), url);
            assert_eq!(decode(std).as_deref(), Some(bytes));
            assert_eq!(url_decode(url).as_deref(), Some(bytes));
        }
        assert_eq!(decode("Zg"), Some(b"f".to_vec()), "padding is optional");
        for bad in ["-_-_", "Zg=x", "Z", "Zm9v=="] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
