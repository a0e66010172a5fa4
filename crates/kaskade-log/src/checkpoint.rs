//! Kafka's offset checkpoint files (`recovery-point-offset-checkpoint`,
//! `log-start-offset-checkpoint`): a version line `0`, a count line, then
//! `topic partition offset` lines. Written to a temp file, fsynced and
//! renamed, so a crash leaves the old or the new file, never half of one.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use crate::types::TopicPartition;

pub const RECOVERY_POINT_FILE: &str = "recovery-point-offset-checkpoint";
pub const LOG_START_FILE: &str = "log-start-offset-checkpoint";

/// Reads a checkpoint file. A missing file is empty; a malformed one is
/// reported and treated as empty (recovery then scans more, never less).
pub fn read(path: &Path) -> (HashMap<TopicPartition, i64>, Option<String>) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (HashMap::new(), None),
        Err(e) => return (HashMap::new(), Some(format!("{}: {e}", path.display()))),
    };
    match parse(&text) {
        Ok(m) => (m, None),
        Err(e) => (HashMap::new(), Some(format!("{}: malformed checkpoint ({e}); ignoring it", path.display()))),
    }
}

fn parse(text: &str) -> Result<HashMap<TopicPartition, i64>, String> {
    let mut lines = text.lines();
    match lines.next() {
        Some("0") => {}
        other => return Err(format!("unsupported version line {other:?}")),
    }
    let count: usize = lines.next().ok_or("missing count")?.trim().parse().map_err(|_| "bad count")?;
    let mut out = HashMap::with_capacity(count);
    for line in lines.by_ref().take(count) {
        let mut parts = line.split(' ');
        let (Some(t), Some(p), Some(o), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(format!("bad line {line:?}"));
        };
        let p: i32 = p.parse().map_err(|_| format!("bad partition in {line:?}"))?;
        let o: i64 = o.parse().map_err(|_| format!("bad offset in {line:?}"))?;
        out.insert(TopicPartition::new(t, p), o);
    }
    if out.len() != count {
        return Err(format!("expected {count} entries, found {}", out.len()));
    }
    Ok(out)
}

pub fn write(path: &Path, entries: &[(TopicPartition, i64)]) -> std::io::Result<()> {
    let mut text = format!("0\n{}\n", entries.len());
    for (tp, off) in entries {
        text.push_str(&format!("{} {} {}\n", tp.topic, tp.partition, off));
    }
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_malformed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join(RECOVERY_POINT_FILE);
        write(&p, &[(TopicPartition::new("a-b", 3), 42), (TopicPartition::new("c", 0), 7)]).expect("write");
        let (m, err) = read(&p);
        assert!(err.is_none());
        assert_eq!(m.get(&TopicPartition::new("a-b", 3)), Some(&42));
        std::fs::write(&p, "0\n2\na 0 1\n").expect("write");
        let (m, err) = read(&p);
        assert!(m.is_empty() && err.is_some());
        std::fs::write(&p, "garbage").expect("write");
        assert!(read(&p).1.is_some());
    }
}
