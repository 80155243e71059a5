//! Following a prefix: read it, watch it from the next revision, and keep
//! watching across etcd restarts and compactions.
//!
//! The loop is a small state machine over three steps: *watch* from the
//! revision after the last one applied; *re-read* the whole prefix (first
//! read, or after the watch's start revision was compacted); *reconnect*
//! after the watch was lost, with bounded backoff. Every transition that
//! matters to a user (lost, still unreachable, reconnected and resumed,
//! compacted and re-read, a key skipped) is reported as a notice.

use std::time::{Duration, Instant};

use etcd_client::{Client, EventType, GetOptions, WatchOptions, WatchStream};

use super::keyset::{KeySet, RawKey};
use super::ttl::fill_ttls;
use crate::etcd::connect::{self, Backoff, EtcdError, EtcdOptions};
use crate::resolve::{Change, Endpoint, Notice, ResolveError, UpdateSender, diff};

/// A watch that lived this long before it broke resets the reconnect backoff.
const STABLE_WATCH: Duration = Duration::from_secs(10);

/// A notice about a still-failing reconnect goes out every this many attempts.
const REPORT_EVERY_ATTEMPTS: u32 = 10;

/// What to follow, and how to reach it.
pub(super) struct Source {
    pub endpoints: Vec<String>,
    /// The prefix as a directory (ends with '/').
    pub dir: String,
    pub options: EtcdOptions,
}

/// What the resolver knows so far.
struct State {
    keys: KeySet,
    /// The last revision whose changes are applied to `keys`.
    revision: i64,
    /// The last set sent, to send only real changes.
    sent: Option<Vec<Endpoint>>,
}

/// Why following the watch stream stopped.
enum WatchEnd {
    /// The stream broke or etcd ended it: reconnect.
    Lost(String),
    /// The revision to resume from is compacted: re-read the prefix.
    Compacted { compact_revision: i64 },
    /// Nobody listens to the updates any more.
    Unheard,
}

/// Whether the watch is in place, or how long it has been failing.
#[derive(Debug, Clone, Copy)]
enum Link {
    Up,
    /// Lost (reported); `failures` attempts to come back have failed.
    Down {
        failures: u32,
    },
}

/// The loop's connection to etcd: the client, whether the watch is in
/// place, and the reconnect backoff, beside what it knows.
struct Session {
    client: Client,
    state: State,
    link: Link,
    backoff: Backoff,
}

/// The next step of the loop.
enum Step {
    Watch,
    Reread,
    /// Reconnect, then go on with the step inside.
    Reconnect(Box<Step>),
}

impl Source {
    /// Reads the prefix, sends the first set, then follows changes until nobody listens.
    ///
    /// Fails (before the first set) when etcd cannot be read at all.
    pub async fn run(self, tx: UpdateSender) -> Result<(), ResolveError> {
        tokio::select! {
            result = self.follow(&tx) => result,
            () = tx.closed() => Ok(()),
        }
    }

    async fn follow(&self, tx: &UpdateSender) -> Result<(), ResolveError> {
        let failed =
            |err: EtcdError| ResolveError::Failed(format!("cannot resolve {}: {err}", self.dir));
        let mut client = connect::connect(&self.endpoints, &self.options)
            .await
            .map_err(failed)?;
        let mut state = State {
            keys: KeySet::default(),
            revision: 0,
            sent: None,
        };
        let notices = self.read(&mut client, &mut state).await.map_err(failed)?;
        let count = state.keys.endpoints().len();
        if !self.publish(&client, &mut state, tx, notices).await {
            return Ok(());
        }
        if count == 0 {
            tx.notice(Notice::NothingReady(format!(
                "no endpoints under {} at revision {} yet; watching for registrations",
                self.dir, state.revision
            )))
            .await;
        }
        let mut session = Session {
            client,
            state,
            link: Link::Up,
            backoff: Backoff::new(self.options.reconnect_min, self.options.reconnect_max),
        };
        let mut step = Step::Watch;
        loop {
            let next = match step {
                Step::Watch => self.watch_step(&mut session, tx).await,
                Step::Reread => self.reread_step(&mut session, tx).await,
                Step::Reconnect(then) => Some(self.reconnect_step(&mut session, tx, *then).await),
            };
            match next {
                Some(next) => step = next,
                None => return Ok(()),
            }
        }
    }

    /// Opens the watch from the revision after the last one applied and
    /// follows it until it ends. `None` once nobody listens.
    async fn watch_step(&self, session: &mut Session, tx: &UpdateSender) -> Option<Step> {
        let start = session.state.revision + 1;
        let stream = match self.open_watch(&mut session.client, start).await {
            Ok(stream) => stream,
            Err(err) => {
                return Some(
                    self.failed_attempt(tx, session, &err.to_string(), Step::Watch)
                        .await,
                );
            }
        };
        if let Link::Down { failures } = session.link {
            tx.notice(Notice::Reconnected(format!(
                "reconnected to etcd at {} after {} attempt(s); resumed the watch from revision {start}",
                self.endpoints.join(","),
                failures + 1,
            )))
            .await;
            session.link = Link::Up;
        }
        let opened = Instant::now();
        match self
            .watch(stream, &session.client, &mut session.state, tx)
            .await
        {
            WatchEnd::Unheard => None,
            WatchEnd::Lost(reason) => {
                // A watch that breaks as soon as it is set up does not earn
                // a quick retry.
                if opened.elapsed() >= STABLE_WATCH {
                    session.backoff.reset();
                }
                self.report_lost(tx, &reason, &session.state).await;
                session.link = Link::Down { failures: 0 };
                Some(Step::Reconnect(Box::new(Step::Watch)))
            }
            WatchEnd::Compacted { compact_revision } => {
                tx.notice(Notice::Relisted(format!(
                    "revision {} of {} is compacted (etcd keeps revisions from {compact_revision}); re-reading the prefix",
                    session.state.revision + 1,
                    self.dir
                )))
                .await;
                Some(Step::Reread)
            }
        }
    }

    /// Reads the whole prefix again and publishes what changed. `None` once
    /// nobody listens.
    async fn reread_step(&self, session: &mut Session, tx: &UpdateSender) -> Option<Step> {
        let before = session.state.sent.clone().unwrap_or_default();
        let notices = match self.read(&mut session.client, &mut session.state).await {
            Ok(notices) => notices,
            Err(err) => {
                return Some(
                    self.failed_attempt(tx, session, &err.to_string(), Step::Reread)
                        .await,
                );
            }
        };
        let after = session.state.keys.endpoints();
        let changes = diff(&before, &after);
        let added = changes
            .iter()
            .filter(|c| matches!(c, Change::Added(_)))
            .count();
        let removed = changes
            .iter()
            .filter(|c| matches!(c, Change::Removed(_)))
            .count();
        tx.notice(Notice::Relisted(format!(
            "re-read {} at revision {}: {} endpoint(s), {added} added, {removed} removed",
            self.dir,
            session.state.revision,
            after.len()
        )))
        .await;
        self.publish(&session.client, &mut session.state, tx, notices)
            .await
            .then_some(Step::Watch)
    }

    /// Waits out the backoff and connects again; then goes on with `then`.
    async fn reconnect_step(&self, session: &mut Session, tx: &UpdateSender, then: Step) -> Step {
        tokio::time::sleep(session.backoff.next_wait()).await;
        match connect::connect(&self.endpoints, &self.options).await {
            Ok(client) => {
                session.client = client;
                then
            }
            Err(err) => {
                self.failed_attempt(tx, session, &err.to_string(), then)
                    .await
            }
        }
    }

    /// Counts a failed attempt, reports the loss (the first time) or the
    /// ongoing outage (now and then), and returns the step that retries.
    async fn failed_attempt(
        &self,
        tx: &UpdateSender,
        session: &mut Session,
        err: &str,
        then: Step,
    ) -> Step {
        match &mut session.link {
            Link::Up => {
                self.report_lost(tx, err, &session.state).await;
                session.link = Link::Down { failures: 1 };
            }
            Link::Down { failures } => {
                *failures += 1;
                if failures.is_multiple_of(REPORT_EVERY_ATTEMPTS) {
                    tx.notice(Notice::SourceError(format!(
                        "etcd still unreachable after {failures} attempts ({err}); keeping the last set"
                    )))
                    .await;
                }
            }
        }
        Step::Reconnect(Box::new(then))
    }

    async fn report_lost(&self, tx: &UpdateSender, reason: &str, state: &State) {
        tx.notice(Notice::SourceError(format!(
            "lost the watch on {} at {}: {reason}; reconnecting (last revision seen: {})",
            self.dir,
            self.endpoints.join(","),
            state.revision
        )))
        .await;
    }

    /// Reads every key under the prefix into `state`. Returns notices for skipped keys.
    async fn read(&self, client: &mut Client, state: &mut State) -> Result<Vec<Notice>, EtcdError> {
        let response = connect::call(
            &self.endpoints,
            "reading the prefix",
            client.get(self.dir.as_str(), Some(GetOptions::new().with_prefix())),
        )
        .await?;
        let revision = response
            .header()
            .map(|h| h.revision())
            .unwrap_or(state.revision);
        let keys = response.kvs().iter().map(RawKey::from_kv).collect();
        let notices = state.keys.replace(keys);
        state.revision = revision;
        Ok(notices)
    }

    /// Opens a watch on the prefix from `start_revision`.
    async fn open_watch(
        &self,
        client: &mut Client,
        start_revision: i64,
    ) -> Result<WatchStream, EtcdError> {
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(start_revision)
            .with_progress_notify();
        connect::call(
            &self.endpoints,
            "opening the watch",
            client.watch(self.dir.as_str(), Some(options)),
        )
        .await
    }

    /// Applies watch responses until the stream ends.
    async fn watch(
        &self,
        mut stream: WatchStream,
        client: &Client,
        state: &mut State,
        tx: &UpdateSender,
    ) -> WatchEnd {
        loop {
            let response = match stream.message().await {
                Ok(Some(response)) => response,
                Ok(None) => return WatchEnd::Lost("etcd closed the watch stream".to_string()),
                Err(err) => {
                    return WatchEnd::Lost(
                        EtcdError::from_client(&self.endpoints, err).to_string(),
                    );
                }
            };
            if response.canceled() {
                if response.compact_revision() > 0 {
                    return WatchEnd::Compacted {
                        compact_revision: response.compact_revision(),
                    };
                }
                let reason = match response.cancel_reason() {
                    "" => "no reason given",
                    reason => reason,
                };
                return WatchEnd::Lost(format!("etcd canceled the watch ({reason})"));
            }
            if response.events().is_empty() {
                // `created` (the watch is set up) or a progress notification:
                // every change up to the header's revision has been sent.
                if !response.created()
                    && let Some(header) = response.header()
                {
                    state.revision = state.revision.max(header.revision());
                }
                continue;
            }
            let mut notices = Vec::new();
            for event in response.events() {
                let Some(kv) = event.kv() else { continue };
                state.revision = state.revision.max(kv.mod_revision());
                match event.event_type() {
                    EventType::Put => notices.extend(state.keys.put(RawKey::from_kv(kv))),
                    EventType::Delete => {
                        state.keys.delete(&String::from_utf8_lossy(kv.key()));
                    }
                }
            }
            if !self.publish(client, state, tx, notices).await {
                return WatchEnd::Unheard;
            }
        }
    }

    /// Sends the notices, then the set if it changed (notices first, so that
    /// the first read's skipped keys arrive with the first set). Returns
    /// false once nobody listens.
    async fn publish(
        &self,
        client: &Client,
        state: &mut State,
        tx: &UpdateSender,
        notices: Vec<Notice>,
    ) -> bool {
        for notice in notices {
            if !tx.notice(notice).await {
                return false;
            }
        }
        let mut endpoints = state.keys.endpoints();
        let changed = match &state.sent {
            None => true,
            Some(sent) => !diff(sent, &endpoints).is_empty(),
        };
        if changed {
            fill_ttls(client, &mut endpoints).await;
            if !tx.reset(endpoints.clone()).await {
                return false;
            }
            state.sent = Some(endpoints);
        }
        true
    }
}
