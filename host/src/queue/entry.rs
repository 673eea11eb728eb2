//! One accepted request as the queue stores it.

use bytes::Bytes;

use super::corrupt;
use crate::error::BackendError;

/// A request body accepted by ingest, waiting for the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    pub tenant: String,
    /// Names the batch: the raw object key and the ids of records that came
    /// without one derive from it, so a replay rebuilds the same ids.
    pub batch_id: ulid::Ulid,
    pub received_at: i64,
    pub content_type: String,
    pub service: Option<String>,
    /// Sent with an `Idempotency-Key`: the same batch may have been accepted
    /// before, so its records may already be stored.
    pub idempotent: bool,
    pub body: Bytes,
}

const VERSION: u8 = 2;

impl QueueEntry {
    pub fn encoded_len(&self) -> usize {
        1 + 1
            + 16
            + 8
            + 3 * 4
            + 1
            + self.tenant.len()
            + self.content_type.len()
            + self.service.as_ref().map_or(0, String::len)
            + 4
            + self.body.len()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.push(VERSION);
        out.push(u8::from(self.idempotent));
        out.extend_from_slice(&self.batch_id.0.to_le_bytes());
        out.extend_from_slice(&self.received_at.to_le_bytes());
        put(&mut out, self.tenant.as_bytes());
        put(&mut out, self.content_type.as_bytes());
        match &self.service {
            Some(s) => {
                out.push(1);
                put(&mut out, s.as_bytes());
            }
            None => out.push(0),
        }
        put(&mut out, &self.body);
        out
    }

    pub fn decode(buf: &[u8]) -> Result<QueueEntry, BackendError> {
        let mut r = Reader(buf);
        let version = r.take(1)?[0];
        if version != VERSION {
            return Err(corrupt(format!("unknown entry version {version}")));
        }
        let idempotent = r.take(1)?[0] != 0;
        let mut id = [0u8; 16];
        id.copy_from_slice(r.take(16)?);
        let mut ts = [0u8; 8];
        ts.copy_from_slice(r.take(8)?);
        let tenant = r.string()?;
        let content_type = r.string()?;
        let service = match r.take(1)?[0] {
            0 => None,
            _ => Some(r.string()?),
        };
        let body = Bytes::copy_from_slice(r.bytes()?);
        Ok(QueueEntry {
            tenant,
            batch_id: ulid::Ulid(u128::from_le_bytes(id)),
            received_at: i64::from_le_bytes(ts),
            content_type,
            service,
            idempotent,
            body,
        })
    }
}

fn put(out: &mut Vec<u8>, b: &[u8]) {
    // Bodies are capped far below 4 GiB by ingest.
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BackendError> {
        if self.0.len() < n {
            return Err(corrupt("truncated entry"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn bytes(&mut self) -> Result<&'a [u8], BackendError> {
        let len = self.take(4)?;
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        self.take(len)
    }

    fn string(&mut self) -> Result<String, BackendError> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| corrupt("non-utf8 field"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let e = QueueEntry {
            tenant: "acme".into(),
            batch_id: ulid::Ulid::new(),
            received_at: 42,
            content_type: "application/json".into(),
            service: Some("api".into()),
            idempotent: true,
            body: Bytes::from_static(b"{\"message\":\"x\"}"),
        };
        let buf = e.encode();
        assert_eq!(buf.len(), e.encoded_len());
        assert_eq!(QueueEntry::decode(&buf).ok(), Some(e));
        for cut in 0..buf.len() {
            assert!(QueueEntry::decode(&buf[..cut]).is_err());
        }
    }
}
