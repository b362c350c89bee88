//! The events log DIR/events.jsonl: one JSON object per line, each with "time" (RFC 3339 UTC
//! with microseconds), "modem" (index, absent for bank-wide events) and "event". Invariant:
//! a line is written whole and flushed before `log` returns, so a reader tailing the file
//! while the sim runs never sees half a line.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;

use serde_json::{Map, Value};

#[derive(Debug)]
pub struct EventLog {
    file: Mutex<File>,
}

impl EventLog {
    /// Opens (appends to) the log.
    pub fn open(path: &Path) -> io::Result<EventLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(EventLog {
            file: Mutex::new(file),
        })
    }

    /// Appends one event; `event` must be a JSON object (anything else is wrapped).
    pub fn log(&self, modem: Option<usize>, event: Value) {
        let mut obj = Map::new();
        obj.insert(
            "time".into(),
            Value::String(format!("{:.6}", jiff::Timestamp::now())),
        );
        if let Some(m) = modem {
            obj.insert("modem".into(), Value::from(m));
        }
        match event {
            Value::Object(fields) => obj.extend(fields),
            other => {
                obj.insert("event".into(), other);
            }
        }
        let mut line = Value::Object(obj).to_string();
        line.push('\n');
        let Ok(mut f) = self.file.lock() else { return };
        if let Err(e) = f.write_all(line.as_bytes()).and_then(|()| f.flush()) {
            tracing::warn!("sim: cannot write events log: {e}");
        }
    }
}
