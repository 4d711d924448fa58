//! Reading data files, gzip-compressed or not, with errors that name the file. Readers of
//! untrusted files stream through [`open`] and stop at what the format declares, so a small
//! compressed file that inflates to gigabytes is an error before it is inflated whole.

use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::{Error, Result};

/// The first two bytes of every gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A buffered reader of the file at `path`, decompressing as it reads if the file is gzip data
/// (whatever its name).
///
/// # Errors
/// [`Error::Io`] naming the file if it cannot be opened or read.
pub(crate) fn open(path: &Path) -> Result<Box<dyn BufRead>> {
    let named =
        |e: io::Error| Error::Io(io::Error::new(e.kind(), format!("{}: {e}", path.display())));
    let mut file = BufReader::new(std::fs::File::open(path).map_err(named)?);
    let is_gzip = file.fill_buf().map_err(named)?.starts_with(&GZIP_MAGIC);
    Ok(if is_gzip {
        Box::new(BufReader::new(MultiGzDecoder::new(file)))
    } else {
        Box::new(file)
    })
}

/// Reads exactly `buf.len()` bytes, or fewer at the end of the data: how many were read.
/// `source` names the data in errors.
///
/// # Errors
/// [`Error::Format`] if the (gzip) data is corrupt, [`Error::Io`] for other read errors.
pub(crate) fn read_up_to(r: &mut dyn Read, buf: &mut [u8], source: &str) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(stream_error(e, source)),
        }
    }
    Ok(n)
}

/// A read error of a (possibly gzip) stream: corrupt compressed data is a format error.
pub(crate) fn stream_error(e: io::Error, source: &str) -> Error {
    match e.kind() {
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => {
            Error::Format(format!("{source}: corrupt gzip data: {e}"))
        }
        _ => Error::Io(io::Error::new(e.kind(), format!("{source}: {e}"))),
    }
}

/// `bytes` decompressed if they start with the gzip magic number, else unchanged. `source` names
/// the data in errors.
///
/// # Errors
/// [`Error::Format`] if the gzip data is corrupt or truncated.
pub(crate) fn gunzip_if_gzip(bytes: Vec<u8>, source: &str) -> Result<Vec<u8>> {
    if !bytes.starts_with(&GZIP_MAGIC) {
        return Ok(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len() * 4);
    MultiGzDecoder::new(&bytes[..])
        .read_to_end(&mut out)
        .map_err(|e| Error::Format(format!("{source}: corrupt gzip data: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::write::GzEncoder;
    use flate2::Compression;

    use super::*;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn gzip_data_is_decompressed_and_plain_data_kept() {
        let text = b"0,1,2\n3,4,5\n".repeat(50);
        assert_eq!(gunzip_if_gzip(gzip(&text), "x").unwrap(), text);
        assert_eq!(gunzip_if_gzip(text.clone(), "x").unwrap(), text);
    }

    #[test]
    fn truncated_gzip_is_a_format_error_naming_the_source() {
        let gz = gzip(&b"some text that compresses".repeat(100));
        let err = gunzip_if_gzip(gz[..gz.len() / 2].to_vec(), "cut.gz").unwrap_err();
        assert!(matches!(err, Error::Format(_)), "{err:?}");
        assert!(
            err.to_string().starts_with("cut.gz: corrupt gzip data"),
            "{err}"
        );
    }

    #[test]
    fn missing_file_is_an_io_error_naming_the_path() {
        let path = std::env::temp_dir().join("tapegrad-no-such-file-7f3a.idx");
        let err = open(&path).err().expect("a missing file is an error");
        assert!(matches!(&err, Error::Io(e) if e.kind() == io::ErrorKind::NotFound));
        assert!(
            err.to_string().contains("tapegrad-no-such-file-7f3a.idx"),
            "{err}"
        );
    }
}
