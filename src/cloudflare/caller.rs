//! Who may call the Worker: `Authorization: Bearer <one of PROXY_API_KEYS>`, compared in
//! constant time (SHA-256 of both sides, so not even the length leaks), against every key.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Keys shorter than this are refused as configuration errors.
pub const MIN_KEY_LEN: usize = 16;

/// The accepted caller keys, kept only as digests.
pub struct CallerKeys(Vec<[u8; 32]>);

impl CallerKeys {
    /// Parses the comma-separated list; `None` when no key is usable.
    pub fn parse(list: &str) -> Option<Self> {
        let keys: Vec<[u8; 32]> = list
            .split(',')
            .map(str::trim)
            .filter(|k| k.len() >= MIN_KEY_LEN)
            .map(|k| Sha256::digest(k.as_bytes()).into())
            .collect();
        (!keys.is_empty()).then_some(Self(keys))
    }

    /// The SHA-256 digests of the keys.
    pub fn digests(&self) -> &[[u8; 32]] {
        &self.0
    }

    /// Whether the `Authorization` header carries one of the keys.
    pub fn admits(&self, authorization: Option<&str>) -> bool {
        self.matching(authorization).is_some()
    }

    /// Which key the `Authorization` header carries (its index), compared with every key in
    /// constant time.
    pub fn matching(&self, authorization: Option<&str>) -> Option<usize> {
        let presented = authorization.and_then(|h| h.strip_prefix("Bearer "))?;
        let digest: [u8; 32] = Sha256::digest(presented.trim().as_bytes()).into();
        let mut found = subtle::CtOption::new(0u64, subtle::Choice::from(0));
        for (i, key) in self.0.iter().enumerate() {
            let this = subtle::CtOption::new(i as u64, key.ct_eq(&digest));
            found = subtle::ConditionallySelectable::conditional_select(&found, &this, this.is_some());
        }
        Option::<u64>::from(found).map(|i| i as usize)
    }
}
