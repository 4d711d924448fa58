//! Reading event files back, with both CRCs of every record checked.

use std::path::Path;

use prost::Message;

use super::proto::Event;
use super::record::split_records;
use crate::error::{Error, Result};

/// Reads every event of an event file, checking the framing and both CRCs of every record.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Format`] naming the byte offset of the
/// first record that is truncated, fails a CRC check, or is not a valid `Event`.
pub fn read_events(path: impl AsRef<Path>) -> Result<Vec<Event>> {
    let bytes = std::fs::read(path.as_ref())?;
    parse_events(&bytes).map_err(|e| match e {
        Error::Format(m) => Error::Format(format!("{}: {m}", path.as_ref().display())),
        e => e,
    })
}

/// Parses the bytes of an event file (see [`read_events`]).
///
/// # Errors
/// [`Error::Format`] naming the byte offset of the first bad record.
pub fn parse_events(bytes: &[u8]) -> Result<Vec<Event>> {
    split_records(bytes)?
        .into_iter()
        .map(|(offset, data)| {
            Event::decode(data).map_err(|e| {
                Error::Format(format!(
                    "event file: the record at offset {offset} is not an Event: {e}"
                ))
            })
        })
        .collect()
}
