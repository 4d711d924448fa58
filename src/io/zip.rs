//! A small reader for the zip archives `torch.save` writes: the central directory (with zip64
//! sizes and offsets), stored entries as they are and deflated ones through flate2. Every offset
//! and size is checked against the buffer, so a corrupt archive is an error, never a panic.

use std::borrow::Cow;
use std::io::Read;

use crate::{Error, Result};

/// One file of the archive.
struct Entry {
    name: String,
    /// Where the entry's local header starts.
    header: usize,
    compressed: usize,
    size: usize,
    method: u16,
}

/// A zip archive held in memory.
pub(crate) struct ZipArchive<'a> {
    data: &'a [u8],
    entries: Vec<Entry>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::Format(format!("zip: {}", msg.into()))
}

/// Little-endian reads at checked offsets.
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn get<const N: usize>(&self, at: usize) -> Result<[u8; N]> {
        at.checked_add(N)
            .and_then(|end| self.0.get(at..end))
            .map(|s| s.try_into().expect("N bytes"))
            .ok_or_else(|| {
                bad(format!(
                    "a field at byte {at} is past the end of the archive"
                ))
            })
    }
    fn u16(&self, at: usize) -> Result<u16> {
        Ok(u16::from_le_bytes(self.get(at)?))
    }
    fn u32(&self, at: usize) -> Result<u32> {
        Ok(u32::from_le_bytes(self.get(at)?))
    }
    fn u64(&self, at: usize) -> Result<u64> {
        Ok(u64::from_le_bytes(self.get(at)?))
    }
    fn slice(&self, at: usize, len: usize) -> Result<&'a [u8]> {
        at.checked_add(len)
            .and_then(|end| self.0.get(at..end))
            .ok_or_else(|| {
                bad(format!(
                    "{len} bytes at {at} are past the end of the archive"
                ))
            })
    }
}

fn usize_of(v: u64) -> Result<usize> {
    usize::try_from(v).map_err(|_| bad(format!("the size or offset {v} is too large")))
}

const EOCD: u32 = 0x0605_4b50;
const EOCD64_LOCATOR: u32 = 0x0706_4b50;
const EOCD64: u32 = 0x0606_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const LOCAL: u32 = 0x0403_4b50;

impl<'a> ZipArchive<'a> {
    /// Reads the central directory of `data`.
    pub(crate) fn new(data: &'a [u8]) -> Result<ZipArchive<'a>> {
        let b = Bytes(data);
        // the end-of-central-directory record is the last 22 bytes plus a comment of < 64 KiB
        let lowest = data.len().saturating_sub(22 + u16::MAX as usize);
        let eocd = (lowest..=data.len().saturating_sub(22))
            .rev()
            .find(|&i| b.u32(i).ok() == Some(EOCD))
            .ok_or_else(|| bad("not a zip archive (no end-of-central-directory record)"))?;
        let mut count = b.u16(eocd + 10)? as u64;
        let mut cd_size = b.u32(eocd + 12)? as u64;
        let mut cd_offset = b.u32(eocd + 16)? as u64;
        if eocd >= 20 && b.u32(eocd - 20)? == EOCD64_LOCATOR {
            let at = usize_of(b.u64(eocd - 20 + 8)?)?;
            if b.u32(at)? != EOCD64 {
                return Err(bad("the zip64 end-of-central-directory record is missing"));
            }
            count = b.u64(at + 32)?;
            cd_size = b.u64(at + 40)?;
            cd_offset = b.u64(at + 48)?;
        }
        let cd = b.slice(usize_of(cd_offset)?, usize_of(cd_size)?)?;
        // each central entry takes at least 46 bytes: this bounds the allocation
        if count > (cd.len() / 46) as u64 {
            return Err(bad(format!(
                "{count} entries cannot fit a central directory of {} bytes",
                cd.len()
            )));
        }
        let c = Bytes(cd);
        let mut entries = Vec::with_capacity(count as usize);
        let mut at = 0usize;
        for _ in 0..count {
            if c.u32(at)? != CENTRAL {
                return Err(bad(format!("bad central directory entry at byte {at}")));
            }
            let method = c.u16(at + 10)?;
            let mut compressed = c.u32(at + 20)? as u64;
            let mut size = c.u32(at + 24)? as u64;
            let name_len = c.u16(at + 28)? as usize;
            let extra_len = c.u16(at + 30)? as usize;
            let comment_len = c.u16(at + 32)? as usize;
            let mut header = c.u32(at + 42)? as u64;
            let name = c.slice(at + 46, name_len)?;
            let name = String::from_utf8_lossy(name).into_owned();
            let extra = c.slice(at + 46 + name_len, extra_len)?;
            zip64_fields(extra, &mut size, &mut compressed, &mut header)?;
            entries.push(Entry {
                name,
                header: usize_of(header)?,
                compressed: usize_of(compressed)?,
                size: usize_of(size)?,
                method,
            });
            at += 46 + name_len + extra_len + comment_len;
        }
        Ok(ZipArchive { data, entries })
    }

    /// The names of the entries, in directory order.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.name.as_str())
    }

    /// The content of entry `name` (borrowed when stored, as torch stores everything).
    pub(crate) fn read(&self, name: &str) -> Result<Cow<'a, [u8]>> {
        let e = self
            .entries
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| bad(format!("the archive has no entry '{name}'")))?;
        let b = Bytes(self.data);
        if b.u32(e.header)? != LOCAL {
            return Err(bad(format!("bad local header for '{name}'")));
        }
        let start = e.header + 30 + b.u16(e.header + 26)? as usize + b.u16(e.header + 28)? as usize;
        let raw = b.slice(start, e.compressed)?;
        match e.method {
            0 if e.compressed == e.size => Ok(Cow::Borrowed(raw)),
            0 => Err(bad(format!(
                "stored entry '{name}' has size {} but {} stored bytes",
                e.size, e.compressed
            ))),
            8 => {
                // the declared size bounds the output, so a zip bomb cannot exhaust memory
                let mut out = Vec::with_capacity(e.size.min(raw.len().saturating_mul(1032)));
                flate2::read::DeflateDecoder::new(raw)
                    .take(e.size as u64 + 1)
                    .read_to_end(&mut out)
                    .map_err(|err| {
                        bad(format!("entry '{name}' is not valid deflate data: {err}"))
                    })?;
                if out.len() != e.size {
                    return Err(bad(format!(
                        "entry '{name}' inflates to {} bytes, not the declared {}",
                        out.len(),
                        e.size
                    )));
                }
                Ok(Cow::Owned(out))
            }
            m => Err(bad(format!("entry '{name}' uses compression method {m}"))),
        }
    }
}

/// Replaces the 32-bit fields that are 0xFFFFFFFF by their values from the zip64 extra field.
fn zip64_fields(
    extra: &[u8],
    size: &mut u64,
    compressed: &mut u64,
    header: &mut u64,
) -> Result<()> {
    let x = Bytes(extra);
    let mut at = 0;
    while at + 4 <= extra.len() {
        let (id, len) = (x.u16(at)?, x.u16(at + 2)? as usize);
        if id == 0x0001 {
            let mut p = at + 4;
            for field in [size, compressed, header] {
                if *field == u32::MAX as u64 {
                    if p + 8 > at + 4 + len {
                        return Err(bad("the zip64 extra field is too short"));
                    }
                    *field = x.u64(p)?;
                    p += 8;
                }
            }
            return Ok(());
        }
        at += 4 + len;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A stored-only archive with the given entries, as `torch.save` writes them.
    pub(crate) fn stored_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data) in entries {
            let header = out.len() as u32;
            let mut crc = flate2::Crc::new();
            crc.update(data);
            let fixed = |sig: u32, out: &mut Vec<u8>| {
                out.extend(sig.to_le_bytes());
                out.extend([20, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // version, flags, method, time, date
                out.extend(crc.sum().to_le_bytes());
                out.extend((data.len() as u32).to_le_bytes());
                out.extend((data.len() as u32).to_le_bytes());
                out.extend((name.len() as u16).to_le_bytes());
                out.extend([0, 0]); // extra length
            };
            fixed(LOCAL, &mut out);
            out.extend(name.as_bytes());
            out.extend(*data);
            central.extend(CENTRAL.to_le_bytes());
            central.extend([20, 0]); // version made by
            let mut rest = Vec::new();
            fixed(0, &mut rest);
            central.extend(&rest[4..]);
            central.extend([0; 10]); // comment length, disk, internal and external attributes
            central.extend(header.to_le_bytes());
            central.extend(name.as_bytes());
        }
        let cd_offset = out.len() as u32;
        out.extend(&central);
        out.extend(EOCD.to_le_bytes());
        out.extend([0; 4]);
        out.extend((entries.len() as u16).to_le_bytes());
        out.extend((entries.len() as u16).to_le_bytes());
        out.extend((central.len() as u32).to_le_bytes());
        out.extend(cd_offset.to_le_bytes());
        out.extend([0, 0]);
        out
    }

    #[test]
    fn reads_stored_entries_by_name() {
        let z = stored_zip(&[("a/data.pkl", b"pickle"), ("a/data/0", b"\x01\x02")]);
        let zip = ZipArchive::new(&z).unwrap();
        assert_eq!(zip.names().collect::<Vec<_>>(), ["a/data.pkl", "a/data/0"]);
        assert_eq!(&*zip.read("a/data/0").unwrap(), b"\x01\x02");
        assert_eq!(&*zip.read("a/data.pkl").unwrap(), b"pickle");
        assert!(zip.read("a/data/1").is_err());
    }

    #[test]
    fn every_truncation_of_an_archive_is_an_error() {
        let z = stored_zip(&[("a/data.pkl", b"pickle"), ("a/data/0", b"\x01\x02")]);
        for n in 0..z.len() {
            let r = ZipArchive::new(&z[..n]).and_then(|zip| zip.read("a/data/0").map(|_| ()));
            assert!(r.is_err(), "a truncation to {n} bytes was accepted");
        }
    }
}
