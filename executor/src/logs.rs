//! Logs of an environment's services, from any target: each replica's lines (with the time its target
//! stamped them) become one stream, merged in time order with bounded memory (one waiting line per
//! replica), then, when following, the lines as they arrive, from the replicas there are now and those
//! that appear later (a concurrent apply replacing them).

use futures_util::stream::{Stream, StreamExt as _};
use std::pin::Pin;

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Keep streaming new lines.
    pub follow: bool,
    /// Only lines from this time on (seconds since the epoch).
    pub since: Option<i64>,
    /// Only the last N lines of each replica (before following).
    pub tail: Option<u64>,
}

/// One line of one replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub service: String,
    /// The container or pod (`shop-staging-api-2`, `api-7c9f…`).
    pub replica: String,
    /// Which replica it is (from 1), and of how many the service has: a prefix names it when there are
    /// several.
    pub number: u32,
    pub of: u32,
    /// RFC 3339 with nanoseconds, as the target stamped it (sorts as text).
    pub time: String,
    pub text: String,
}

/// A replica's logs could not be read.
#[derive(Debug, Clone, thiserror::Error, miette::Diagnostic)]
#[error("the logs of {replica}: {message}")]
#[diagnostic(code(pipeline::logs::read))]
pub struct LogError {
    pub replica: String,
    pub message: String,
}

/// Lines, in the order to print them.
pub type LogStream = Pin<Box<dyn Stream<Item = Result<LogLine, LogError>> + Send>>;

/// Now, in seconds since the epoch.
pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// An RFC 3339 time as seconds since the epoch.
pub fn parse_time(s: &str) -> Option<i64> {
    s.parse::<k8s_openapi::jiff::Timestamp>().ok().map(|t| t.as_second())
}

/// Split a line the target stamped (`2026-12-02T06:00:00.123456789Z text`) into time and text, the time
/// with nine fraction digits (kubelets drop trailing zeros), so times compare as text.
pub fn stamped(line: &str) -> (String, String) {
    match line.split_once(' ') {
        Some((t, rest)) if t.len() >= 20 && t.as_bytes().get(4) == Some(&b'-') => (normal_time(t), rest.to_string()),
        _ => (String::new(), line.to_string()),
    }
}

/// `2026-12-02T06:00:00.5Z` as `2026-12-02T06:00:00.500000000Z`.
fn normal_time(t: &str) -> String {
    let Some(body) = t.strip_suffix('Z') else { return t.to_string() };
    let (whole, fraction) = body.split_once('.').unwrap_or((body, ""));
    format!("{whole}.{fraction:0<9}Z")
}

/// Seconds since the epoch as a time of [`stamped`]'s form.
pub fn time_of(seconds: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(seconds)
        .map(|t| format!("{}.000000000Z", t.strftime("%Y-%m-%dT%H:%M:%S")))
        .unwrap_or_default()
}

/// Merge streams that are each in time order into one in time order, holding one line per stream.
pub fn merge_by_time(sources: Vec<LogStream>) -> LogStream {
    struct State {
        sources: Vec<Option<LogStream>>,
        heads: Vec<Option<LogLine>>,
    }
    let n = sources.len();
    let state = State { sources: sources.into_iter().map(Some).collect(), heads: vec![None; n] };
    Box::pin(futures_util::stream::unfold(state, |mut st| async move {
        for i in 0..st.sources.len() {
            if st.heads[i].is_some() {
                continue;
            }
            let Some(source) = st.sources[i].as_mut() else { continue };
            match source.next().await {
                Some(Ok(line)) => st.heads[i] = Some(line),
                Some(Err(e)) => {
                    st.sources[i] = None;
                    return Some((Err(e), st));
                }
                None => st.sources[i] = None,
            }
        }
        let next = st
            .heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|h| (i, h.time.clone())))
            .min_by(|a, b| a.1.cmp(&b.1))
            .map(|(i, _)| i)?;
        let line = st.heads[next].take()?;
        Some((Ok(line), st))
    }))
}

/// The last line shown per replica (its time), shared by the history and the follow.
pub(crate) type Seen = std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, String>>>;

/// The history merged in time order, each line's time recorded in `seen` as it is shown.
pub(crate) fn history(sources: Vec<LogStream>, seen: &Seen) -> LogStream {
    let recorded = std::sync::Arc::clone(seen);
    Box::pin(merge_by_time(sources).inspect(move |l| {
        if let (Ok(l), Ok(mut seen)) = (l, recorded.lock()) {
            seen.insert(l.replica.clone(), l.time.clone());
        }
    }))
}

/// Where a followed replica's lines start.
pub(crate) enum Resume {
    /// After its last line shown (this time).
    After(String),
    /// It was in the history but showed no line: from when the history was read (these Unix seconds).
    HistoryStart(i64),
    /// A replica that appeared since: from its start (or `--since`).
    Start,
}

/// Follow the replicas `list` finds (looking again every `every`, so replicas that appear later are
/// followed too): each one's lines from where `Resume` says, each line once. A replica whose stream ends
/// or fails (stopped, restarted, not readable yet) is followed again at the next look, from its last line.
/// `name` names a replica as its lines do; `open` gives its line stream, given every replica found at
/// this look.
pub(crate) fn follow<R, F, Fut>(
    seen: Seen,
    history: std::collections::BTreeSet<String>,
    every: std::time::Duration,
    list: F,
    name: impl Fn(&R) -> Option<String> + Send + Sync + 'static,
    open: impl Fn(&R, &[R], Resume) -> LogStream + Send + Sync + 'static,
) -> LogStream
where
    R: Send + Sync + 'static,
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Option<Vec<R>>> + Send,
{
    use std::sync::{Arc, Mutex};
    let history_start = now_secs();
    channel_stream(move |tx| {
        Box::pin(async move {
            let followed: Arc<Mutex<std::collections::BTreeSet<String>>> = Arc::default();
            let mut tasks = tokio::task::JoinSet::new();
            while !tx.is_closed() {
                let Some(now) = list().await else {
                    tokio::time::sleep(every).await;
                    continue;
                };
                for r in &now {
                    let Some(name) = name(r) else { continue };
                    if !followed.lock().is_ok_and(|mut f| f.insert(name.clone())) {
                        continue;
                    }
                    let last = seen.lock().ok().and_then(|s| s.get(&name).cloned());
                    let resume = match &last {
                        Some(t) => Resume::After(t.clone()),
                        None if history.contains(&name) => Resume::HistoryStart(history_start),
                        None => Resume::Start,
                    };
                    let mut lines = open(r, &now, resume);
                    let (tx, followed, seen) = (tx.clone(), Arc::clone(&followed), Arc::clone(&seen));
                    tasks.spawn(async move {
                        while let Some(l) = lines.next().await {
                            let Ok(l) = l else { break };
                            if last.as_ref().is_some_and(|t| l.time <= *t) {
                                continue;
                            }
                            if let Ok(mut seen) = seen.lock() {
                                seen.insert(l.replica.clone(), l.time.clone());
                            }
                            if tx.send(Ok(l)).await.is_err() {
                                return;
                            }
                        }
                        if let Ok(mut f) = followed.lock() {
                            f.remove(&name);
                        }
                    });
                }
                tokio::time::sleep(every).await;
            }
            tasks.abort_all();
        })
    })
}

/// A stream fed by a task through a bounded channel (the task waits while the reader is behind).
pub(crate) fn channel_stream(
    f: impl FnOnce(
        tokio::sync::mpsc::Sender<Result<LogLine, LogError>>,
    ) -> Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
) -> LogStream {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let task = tokio::spawn(f(tx));
    struct AbortOnDrop(tokio::task::JoinHandle<()>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    Box::pin(futures_util::stream::unfold((rx, AbortOnDrop(task)), |(mut rx, task)| async move {
        rx.recv().await.map(|item| (item, (rx, task)))
    }))
}

/// Cut a byte stream into lines, keeping a partial line until it ends.
#[derive(Default)]
pub(crate) struct Lines {
    pending: Vec<u8>,
}

impl Lines {
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(pos) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=pos).collect();
            out.push(String::from_utf8_lossy(&line[..line.len() - 1]).trim_end_matches('\r').to_string());
        }
        out
    }

    pub(crate) fn finish(&mut self) -> Option<String> {
        (!self.pending.is_empty()).then(|| String::from_utf8_lossy(&std::mem::take(&mut self.pending)).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(replica: &str, time: &str) -> Result<LogLine, LogError> {
        Ok(LogLine {
            service: "s".into(),
            replica: replica.into(),
            number: 1,
            of: 1,
            time: time.into(),
            text: format!("{replica} {time}"),
        })
    }

    #[tokio::test]
    async fn merges_in_time_order() {
        let a: LogStream = Box::pin(futures_util::stream::iter(vec![line("a", "1"), line("a", "4"), line("a", "5")]));
        let b: LogStream = Box::pin(futures_util::stream::iter(vec![line("b", "2"), line("b", "3"), line("b", "6")]));
        let merged: Vec<String> = merge_by_time(vec![a, b]).map(|l| l.unwrap().time).collect().await;
        assert_eq!(merged, ["1", "2", "3", "4", "5", "6"]);
    }

    #[test]
    fn lines_and_stamps() {
        let mut l = Lines::default();
        assert_eq!(l.push(b"2026-12-02T06:00:00.1Z one\n2026-12-02T06:00"), ["2026-12-02T06:00:00.1Z one"]);
        assert_eq!(l.push(b":01.2Z two\r\n"), ["2026-12-02T06:00:01.2Z two"]);
        assert_eq!(l.finish(), None);
        assert_eq!(
            stamped("2026-12-02T06:00:01.2Z two words"),
            ("2026-12-02T06:00:01.200000000Z".into(), "two words".into())
        );
        assert_eq!(stamped("no stamp"), (String::new(), "no stamp".into()));
        assert_eq!(stamped("2026-12-02T06:00:01.5Z x").0, "2026-12-02T06:00:01.500000000Z");
        assert_eq!(stamped("2026-12-02T06:00:01Z x").0, "2026-12-02T06:00:01.000000000Z");
        assert_eq!(time_of(0), "1970-01-01T00:00:00.000000000Z");
    }
}
