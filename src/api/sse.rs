//! A small, incremental Server-Sent Events parser for the client side.
//!
//! It follows the HTML event-stream rules the server relies on: lines end in LF or CRLF,
//! `field: value` (one optional space after the colon), `data` lines joined with `\n`,
//! comment lines (`:` first: keep-alives) ignored, a blank line dispatches, and an event
//! without data is dropped. Bytes arrive in arbitrary chunks; a line is only read once it
//! is complete.

/// One dispatched event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseMessage {
    /// The `id:` field (the sequence number, for herder's streams).
    pub id: Option<String>,
    /// The `event:` field; `None` means the default `message`.
    pub event: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
}

/// The longest line accepted, in bytes; a longer one is an error (not unbounded memory).
pub const MAX_LINE_BYTES: usize = 8 << 20;

/// A line longer than [`MAX_LINE_BYTES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("an event-stream line is longer than {MAX_LINE_BYTES} bytes")]
pub struct LineTooLong;

/// Parses a byte stream into [`SseMessage`]s.
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: Vec<u8>,
    pending: SseMessage,
    has_data: bool,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next chunk; returns the events it completed, in order.
    ///
    /// Linear in the bytes fed: only the new chunk is searched for line ends (the part of
    /// the buffer carried over holds none), so a long line arriving in many small chunks
    /// is not rescanned from its start each time.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseMessage>, LineTooLong> {
        let carried = self.buffer.len();
        self.buffer.extend_from_slice(chunk);
        let mut out = Vec::new();
        let mut start = 0;
        let mut from = carried;
        while let Some(end) = self.buffer[from..].iter().position(|b| *b == b'\n') {
            let end = from + end;
            let mut line = &self.buffer[start..end];
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            let line = String::from_utf8_lossy(line).into_owned();
            start = end + 1;
            from = start;
            if let Some(message) = self.line(&line) {
                out.push(message);
            }
        }
        self.buffer.drain(..start);
        if self.buffer.len() > MAX_LINE_BYTES {
            return Err(LineTooLong);
        }
        Ok(out)
    }

    fn line(&mut self, line: &str) -> Option<SseMessage> {
        if line.is_empty() {
            let message = std::mem::take(&mut self.pending);
            return std::mem::take(&mut self.has_data).then_some(message);
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.pending.data.push('\n');
                }
                self.pending.data.push_str(value);
                self.has_data = true;
            }
            "id" => self.pending.id = Some(value.to_owned()),
            "event" => self.pending.event = Some(value.to_owned()),
            // `retry` and unknown fields are ignored.
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chunked_events_comments_and_multiline_data() {
        let text = ": keep-alive\n\nid: 1\ndata: {\"a\":1}\n\r\nevent: resync\nid:9\ndata: x\ndata:y\n\nid: 3\n\n";
        let mut parser = SseParser::new();
        let mut events = Vec::new();
        // One byte at a time: a line is only read once complete.
        for byte in text.as_bytes() {
            events.extend(parser.push(std::slice::from_ref(byte)).unwrap());
        }
        assert_eq!(
            events,
            [
                SseMessage {
                    id: Some("1".into()),
                    event: None,
                    data: "{\"a\":1}".into()
                },
                SseMessage {
                    id: Some("9".into()),
                    event: Some("resync".into()),
                    data: "x\ny".into()
                },
            ]
        );
    }

    #[test]
    fn a_long_line_in_small_chunks_is_read_once_whole() {
        let mut parser = SseParser::new();
        let text = "x".repeat(1 << 20);
        let mut events = Vec::new();
        for chunk in format!("data: {text}\n\n").as_bytes().chunks(7) {
            events.extend(parser.push(chunk).unwrap());
        }
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, text);
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut parser = SseParser::new();
        let chunk = vec![b'x'; MAX_LINE_BYTES + 1];
        assert_eq!(parser.push(&chunk), Err(LineTooLong));
    }
}
