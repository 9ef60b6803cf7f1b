//! The session's event stream as JSON lines, one event per line, for a production line's
//! MES or a log: the same events the console and the panel read.

use meterbench_runner::{Event, Observer};
use std::io::Write;
use std::path::Path;

/// Writes every event as one line of JSON. A write that fails (a full disk, a closed
/// pipe) is reported once and the stream is dropped: an output never stops a run.
pub struct JsonLines {
    out: Option<Box<dyn Write + Send>>,
    /// The first write error, if any.
    pub error: Option<std::io::Error>,
}

impl JsonLines {
    pub fn create(path: &Path) -> std::io::Result<JsonLines> {
        let f = std::fs::File::create(path)?;
        Ok(JsonLines::to(Box::new(std::io::BufWriter::new(f))))
    }

    pub fn to(out: Box<dyn Write + Send>) -> JsonLines {
        JsonLines {
            out: Some(out),
            error: None,
        }
    }
}

impl Observer for JsonLines {
    fn event(&mut self, event: &Event) {
        let Some(out) = self.out.as_mut() else {
            return;
        };
        let written = serde_json::to_writer(&mut *out, event)
            .map_err(std::io::Error::other)
            .and_then(|()| out.write_all(b"\n"))
            // A line per event reaches the reader as it happens.
            .and_then(|()| out.flush());
        if let Err(e) = written {
            self.error = Some(e);
            self.out = None;
        }
    }
}
