//! TFRecord framing of event files.
//!
//! Each record is `length: u64 little-endian`, `masked_crc32c(length bytes): u32`, the `length`
//! bytes of data (a serialized `Event`), and `masked_crc32c(data): u32`. The mask (TensorFlow's
//! `crc32c::Mask`) rotates the CRC-32C right by 15 bits and adds `0xa282ead8`, so that a CRC of
//! data that itself contains CRCs does not degenerate.

use std::io::{self, Write};

use crate::error::{Error, Result};

const MASK_DELTA: u32 = 0xa282_ead8;

/// The masked CRC-32C (Castagnoli) of `data`.
pub(crate) fn masked_crc(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
        .rotate_right(15)
        .wrapping_add(MASK_DELTA)
}

/// Writes one framed record.
pub(crate) fn write_record(w: &mut impl Write, data: &[u8]) -> io::Result<()> {
    let len = (data.len() as u64).to_le_bytes();
    w.write_all(&len)?;
    w.write_all(&masked_crc(&len).to_le_bytes())?;
    w.write_all(data)?;
    w.write_all(&masked_crc(data).to_le_bytes())
}

/// Splits `bytes` into record payloads, checking both CRCs of every record. Each payload comes
/// with its record's offset in `bytes`.
///
/// A short header, a length running past the end, or a CRC mismatch is an [`Error::Format`]
/// naming the record's byte offset; nothing after a bad record is trusted.
pub(crate) fn split_records(bytes: &[u8]) -> Result<Vec<(usize, &[u8])>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        if rest.len() < 12 {
            return Err(Error::Format(format!(
                "event file: truncated record header at offset {pos} ({} of 12 bytes)",
                rest.len()
            )));
        }
        let len_bytes = &rest[..8];
        let stored = u32::from_le_bytes(rest[8..12].try_into().unwrap());
        if stored != masked_crc(len_bytes) {
            return Err(Error::Format(format!(
                "event file: corrupt record at offset {pos}: the length's CRC does not match"
            )));
        }
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap());
        let avail = (rest.len() - 12) as u64;
        if avail < 4 || len > avail - 4 {
            return Err(Error::Format(format!(
                "event file: truncated record at offset {pos}: {len} data bytes and a CRC \
                 announced, {avail} bytes left"
            )));
        }
        let len = len as usize;
        let data = &rest[12..12 + len];
        let stored = u32::from_le_bytes(rest[12 + len..16 + len].try_into().unwrap());
        if stored != masked_crc(data) {
            return Err(Error::Format(format!(
                "event file: corrupt record at offset {pos}: the data's CRC does not match"
            )));
        }
        out.push((pos, data));
        pos += 16 + len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_crc_matches_tensorflows() {
        // The CRC-32C check value: crc32c("123456789") = 0xe3069283 (RFC 3720, appendix B.4);
        // masked: rotr(0xe3069283, 15) + 0xa282ead8 = 0xc78ab0e5, which is also what
        // tensorboard's Python `masked_crc32c(b"123456789")` returns.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(masked_crc(b"123456789"), 0xc78a_b0e5);
    }

    #[test]
    fn records_round_trip_with_their_offsets() {
        let mut buf = Vec::new();
        write_record(&mut buf, b"hello").unwrap();
        write_record(&mut buf, b"").unwrap();
        write_record(&mut buf, b"world!").unwrap();
        let recs = split_records(&buf).unwrap();
        let got: Vec<(usize, &[u8])> = recs;
        assert_eq!(
            got,
            vec![(0, &b"hello"[..]), (21, &b""[..]), (37, &b"world!"[..])]
        );
    }

    #[test]
    fn a_flipped_data_byte_is_a_crc_error_at_the_record_offset() {
        let mut buf = Vec::new();
        write_record(&mut buf, b"first").unwrap();
        write_record(&mut buf, b"second").unwrap();
        buf[21 + 12] ^= 0x01; // first data byte of the second record
        let e = split_records(&buf).unwrap_err().to_string();
        assert!(e.contains("offset 21") && e.contains("data's CRC"), "{e}");
    }

    #[test]
    fn a_cut_file_is_reported_as_truncated() {
        let mut buf = Vec::new();
        write_record(&mut buf, b"payload").unwrap();
        for cut in 1..buf.len() {
            let e = split_records(&buf[..cut]).unwrap_err().to_string();
            assert!(
                e.contains("truncated") && e.contains("offset 0"),
                "{cut}: {e}"
            );
        }
    }
}
