//! Compressed request bodies (`Content-Encoding: gzip`, `zstd`, `deflate`),
//! inflated with the body limit applied to what comes out: a small body
//! that inflates past the limit (a decompression bomb) is refused once the
//! limit is passed, having cost at most the limit in memory.

use std::io::Read;

use bytes::Bytes;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EncodingError {
    #[error("unsupported Content-Encoding {0:?}: send gzip, zstd, deflate or identity")]
    Unsupported(String),
    #[error("the body does not decode as {encoding}: {message}")]
    Corrupt { encoding: &'static str, message: String },
    #[error("the body inflates past the limit of {limit} bytes; send smaller batches")]
    TooLarge { limit: usize },
}

/// A body's encoding, from its `Content-Encoding` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Zstd,
    Deflate,
}

impl Encoding {
    /// The header's value; absent or empty is identity. Only one coding is
    /// taken: a chain (`gzip, zstd`) is refused rather than inflated twice.
    pub fn parse(header: Option<&str>) -> Result<Encoding, EncodingError> {
        let Some(v) = header.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(Encoding::Identity);
        };
        match v.to_ascii_lowercase().as_str() {
            "identity" => Ok(Encoding::Identity),
            "gzip" | "x-gzip" => Ok(Encoding::Gzip),
            "zstd" => Ok(Encoding::Zstd),
            "deflate" => Ok(Encoding::Deflate),
            _ => Err(EncodingError::Unsupported(v.chars().take(40).collect())),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Encoding::Identity => "identity",
            Encoding::Gzip => "gzip",
            Encoding::Zstd => "zstd",
            Encoding::Deflate => "deflate",
        }
    }
}

/// The body as sent, inflated; at most `limit` bytes come out.
pub fn decode(encoding: Encoding, body: Bytes, limit: usize) -> Result<Bytes, EncodingError> {
    let reader: Box<dyn Read + '_> = match encoding {
        Encoding::Identity => return Ok(body),
        Encoding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(&body[..])),
        Encoding::Zstd => Box::new(zstd::stream::read::Decoder::new(&body[..]).map_err(|e| corrupt(encoding, e))?),
        // HTTP's "deflate" is zlib-wrapped (RFC 9110); some clients send
        // the raw stream, which a zlib header check tells apart.
        Encoding::Deflate if zlib_header(&body) => Box::new(flate2::read::ZlibDecoder::new(&body[..])),
        Encoding::Deflate => Box::new(flate2::read::DeflateDecoder::new(&body[..])),
    };
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    // One byte past the limit says that it was passed.
    let read = reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| corrupt(encoding, e))?;
    if read > limit {
        return Err(EncodingError::TooLarge { limit });
    }
    Ok(Bytes::from(out))
}

fn corrupt(encoding: Encoding, e: impl std::fmt::Display) -> EncodingError {
    EncodingError::Corrupt {
        encoding: encoding.name(),
        message: e.to_string(),
    }
}

/// A zlib stream starts with CMF/FLG bytes whose 16-bit value is a
/// multiple of 31, with method 8 (deflate).
fn zlib_header(b: &[u8]) -> bool {
    b.len() >= 2 && b[0] & 0x0f == 8 && (u16::from(b[0]) << 8 | u16::from(b[1])).is_multiple_of(31)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Bytes {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).expect("gzip");
        Bytes::from(e.finish().expect("gzip"))
    }

    #[test]
    fn every_encoding_round_trips() {
        let data = b"{\"message\":\"hello\"}\n".repeat(100);
        let zlib = {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&data).expect("zlib");
            e.finish().expect("zlib")
        };
        let raw = {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&data).expect("deflate");
            e.finish().expect("deflate")
        };
        let zstd = zstd::encode_all(&data[..], 3).expect("zstd");
        for (enc, body) in [
            (Encoding::Gzip, gzip(&data)),
            (Encoding::Deflate, Bytes::from(zlib)),
            (Encoding::Deflate, Bytes::from(raw)),
            (Encoding::Zstd, Bytes::from(zstd)),
            (Encoding::Identity, Bytes::from(data.clone())),
        ] {
            assert_eq!(decode(enc, body, 1 << 20).expect("decodes"), data, "{enc:?}");
        }
    }

    /// 1 GiB of zeros gzips to about 1 MiB; it stops at the limit.
    #[test]
    fn a_bomb_stops_at_the_limit() {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..64 {
            e.write_all(&zeros).expect("gzip");
        }
        let bomb = Bytes::from(e.finish().expect("gzip"));
        assert!(bomb.len() < 100_000, "{}", bomb.len());
        assert_eq!(
            decode(Encoding::Gzip, bomb, 1 << 20),
            Err(EncodingError::TooLarge { limit: 1 << 20 })
        );
        // Exactly at the limit is fine.
        assert_eq!(
            decode(Encoding::Gzip, gzip(&zeros), 1 << 20)
                .expect("at the limit")
                .len(),
            1 << 20
        );
    }

    #[test]
    fn headers_and_garbage() {
        assert_eq!(Encoding::parse(None), Ok(Encoding::Identity));
        assert_eq!(Encoding::parse(Some(" GZIP ")), Ok(Encoding::Gzip));
        assert!(matches!(
            Encoding::parse(Some("br")),
            Err(EncodingError::Unsupported(_))
        ));
        assert!(matches!(
            Encoding::parse(Some("gzip, zstd")),
            Err(EncodingError::Unsupported(_))
        ));
        assert!(matches!(
            decode(Encoding::Gzip, Bytes::from_static(b"not gzip"), 1000),
            Err(EncodingError::Corrupt { .. })
        ));
        assert!(matches!(
            decode(Encoding::Zstd, Bytes::from_static(b"not zstd"), 1000),
            Err(EncodingError::Corrupt { .. })
        ));
    }
}
