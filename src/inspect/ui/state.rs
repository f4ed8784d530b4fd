//! What the inspector knows and shows: the rows of the list, the filter, the selection and
//! follow mode, the detail or diff open, the prompt being typed. Plain data: `update` changes
//! it, `view` draws it, and neither touches a terminal, a store or the network.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use relay_server::protocol::Header;

use super::document::{Body, Folds, Mode, Pos};
use crate::exchange::{CaptureId, Exchange, Provider, Verdict};
use crate::inspect::history::{Flags, History};
use crate::inspect::Redactor;
use crate::query::{Query, Subject};
use crate::store::Summary;
use crate::target::Target;

/// Most rows the list holds; the oldest go first (the store keeps them all the same).
pub const MAX_ROWS: usize = 50_000;

/// Lines above the list: the status line and the column headings.
pub const LIST_TOP: u16 = 2;

/// Lines above a detail's pane: its title and its tabs.
pub const DETAIL_TOP: u16 = 2;

/// Lines at the bottom of every screen: the message or key hints.
pub const BOTTOM: u16 = 1;

/// One capture in the list.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Its capture id.
    pub id: CaptureId,
    /// When it was received (ms since the Unix epoch).
    pub received_at_ms: i64,
    /// The request method.
    pub method: String,
    /// The path and query as received.
    pub path: String,
    /// The provider recognised or checked.
    pub provider: Option<Provider>,
    /// The provider's event type.
    pub event_type: Option<String>,
    /// The provider's event id.
    pub event_id: Option<String>,
    /// The signature verdict.
    pub verdict: Option<Verdict>,
    /// The app's status; `None` when it did not answer.
    pub status: Option<u16>,
    /// From forwarding to the whole answer.
    pub duration: Duration,
    /// The request body's length.
    pub size: u64,
    /// The capture it replays.
    pub replay_of: Option<CaptureId>,
    /// Whether `hooks send` made it.
    pub sent: bool,
    /// The route (`hooks.toml`, `--route`) that took it.
    pub route: Option<String>,
    /// Duplicate, out-of-order and slow notes.
    pub flags: Flags,
}

impl Row {
    /// The row of a stored capture's summary (flags are added as it joins the list).
    pub fn from_summary(summary: Summary) -> Row {
        Row {
            id: summary.id,
            received_at_ms: summary.received_at_ms,
            method: summary.method,
            path: summary.path,
            provider: summary.provider,
            event_type: summary.event_type,
            event_id: summary.event_id,
            verdict: summary.verdict,
            status: summary.status,
            duration: summary.duration,
            size: summary.request_size,
            replay_of: summary.replay_of,
            sent: summary.sent,
            route: summary.route,
            flags: Flags::default(),
        }
    }

    /// The row of a live exchange (`hooks listen --ui`), once it is captured.
    pub fn from_exchange(exchange: &Exchange, flags: Flags) -> Option<Row> {
        let event = exchange.event.as_ref();
        Some(Row {
            id: exchange.id?,
            received_at_ms: exchange.received_at_ms,
            method: exchange.request.method.clone(),
            path: exchange.request.path.clone(),
            provider: exchange
                .signature
                .as_ref()
                .and_then(|s| s.provider)
                .or(event.map(|e| e.provider)),
            event_type: event.and_then(|e| e.event_type.clone()),
            event_id: event.and_then(|e| e.event_id.clone()),
            verdict: exchange.signature.as_ref().map(|s| s.verdict),
            status: exchange.outcome.status(),
            duration: exchange.duration,
            size: exchange.request.body.len() as u64,
            replay_of: exchange.replay_of,
            sent: exchange.sent,
            route: exchange.route.clone(),
            flags,
        })
    }
}

/// A row answers the filter's questions that need neither headers nor body.
impl Subject for Row {
    fn id(&self) -> Option<i64> {
        Some(self.id.0)
    }
    fn received_at_ms(&self) -> i64 {
        self.received_at_ms
    }
    fn method(&self) -> &str {
        &self.method
    }
    fn target(&self) -> &str {
        &self.path
    }
    fn headers(&self) -> &[Header] {
        &[]
    }
    fn request_size(&self) -> u64 {
        self.size
    }
    fn request_body(&self) -> Option<Cow<'_, [u8]>> {
        None
    }
    fn status(&self) -> Option<u16> {
        self.status
    }
    fn duration(&self) -> Option<Duration> {
        Some(self.duration)
    }
    fn provider(&self) -> Option<Provider> {
        self.provider
    }
    fn event_type(&self) -> Option<&str> {
        self.event_type.as_deref()
    }
    fn verdict(&self) -> Option<Verdict> {
        self.verdict
    }
    fn replay_of(&self) -> Option<i64> {
        self.replay_of.map(|id| id.0)
    }
    fn sent(&self) -> bool {
        self.sent
    }
    fn route(&self) -> Option<&str> {
        self.route.as_deref()
    }
}

/// Where the captures come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `hooks listen --ui`: this process forwards them.
    Listen,
    /// `hooks inspect`: another process's captures, from the store.
    Store,
}

/// The session to the relay, as `hooks listen --ui` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    /// Not attached yet.
    Connecting,
    /// Attached: webhooks sent to the URL are forwarded.
    Attached,
    /// Lost, reconnecting; why.
    Reconnecting(String),
    /// `hooks inspect`: reading the store.
    Store,
}

/// What fills the screen.
#[derive(Debug, Clone)]
pub enum Screen {
    /// The list of captures.
    List,
    /// One capture.
    Detail(Box<Detail>),
    /// Two captures compared.
    Diff(Box<DiffView>),
}

/// The detail view's tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    /// Status, verdict, notes, timings.
    Overview,
    /// The request line, headers and body.
    Request,
    /// The answer's status line, headers and body.
    Response,
}

impl Tab {
    /// Every tab, in order.
    pub const ALL: [Tab; 3] = [Tab::Overview, Tab::Request, Tab::Response];

    /// Its position in [`Tab::ALL`].
    pub fn index(self) -> usize {
        match self {
            Tab::Overview => 0,
            Tab::Request => 1,
            Tab::Response => 2,
        }
    }

    /// Its title.
    pub fn title(self) -> &'static str {
        match self {
            Tab::Overview => "Overview",
            Tab::Request => "Request",
            Tab::Response => "Response",
        }
    }
}

/// How a head line is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadKind {
    /// A request or status line.
    Start,
    /// `name: value` (the colon after the name).
    Header,
    /// `label  value` in the overview (the label is padded).
    Field,
    /// A note that needs attention.
    Warning,
    /// Plain text (a blank line, a note).
    Text,
}

/// One head line, sanitized and masked when the capture was loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadLine {
    /// How it is drawn.
    pub kind: HeadKind,
    /// The text (for [`HeadKind::Field`], the label is the text before the first two spaces).
    pub text: String,
}

/// A capture loaded whole, and indexed for display.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The capture.
    pub exchange: Exchange,
    /// The overview tab's lines.
    pub overview: Vec<HeadLine>,
    /// The request line and headers.
    pub request_head: Vec<HeadLine>,
    /// The request body.
    pub request: Body,
    /// The status line and headers (or why there is no answer).
    pub response_head: Vec<HeadLine>,
    /// The response body.
    pub response: Body,
}

impl Loaded {
    /// The head lines and body of `tab`.
    pub fn pane(&self, tab: Tab) -> (&[HeadLine], Option<&Body>) {
        match tab {
            Tab::Overview => (&self.overview, None),
            Tab::Request => (&self.request_head, Some(&self.request)),
            Tab::Response => (&self.response_head, Some(&self.response)),
        }
    }
}

/// Where one tab's cursor is, and how its body is shown.
#[derive(Debug, Clone)]
pub struct Pane {
    /// The line the cursor is on.
    pub cursor: Pos,
    /// The first line on screen.
    pub top: Pos,
    /// How the body is shown.
    pub mode: Mode,
    /// Folded objects and arrays (JSON tree).
    pub folds: Folds,
}

impl Default for Pane {
    fn default() -> Self {
        Pane {
            cursor: Pos::Head(0),
            top: Pos::Head(0),
            mode: Mode::Tree,
            folds: Folds::new(),
        }
    }
}

/// Whether a capture has been read yet.
#[derive(Debug, Clone)]
pub enum Content {
    /// Being read from the store.
    Loading,
    /// Could not be read; why.
    Failed(String),
    /// Read and indexed.
    Ready(Box<Loaded>),
}

/// One capture, open.
#[derive(Debug, Clone)]
pub struct Detail {
    /// Its id.
    pub id: CaptureId,
    /// The tab shown.
    pub tab: Tab,
    /// The capture, once read.
    pub content: Content,
    /// Each tab's cursor, in [`Tab::ALL`] order.
    pub panes: [Pane; 3],
}

/// Two captures compared (`m` then `=`).
#[derive(Debug, Clone)]
pub struct DiffView {
    /// The marked capture.
    pub a: CaptureId,
    /// The selected one.
    pub b: CaptureId,
    /// `hooks diff`'s text, line by line; `None` while it is being computed.
    pub lines: Option<Vec<String>>,
    /// The first line on screen.
    pub top: usize,
}

/// What a prompt asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// A `--where` filter.
    Filter,
    /// The replay target.
    Target,
    /// A file to export a capture to.
    Export(CaptureId),
}

/// A line being typed at the bottom of the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// What it is for.
    pub ask: Ask,
    /// The text so far.
    pub text: String,
    /// The cursor, in characters from the start.
    pub cursor: usize,
    /// Why the text is not valid, as typed (shown under it).
    pub error: Option<String>,
}

impl Prompt {
    /// A prompt for `ask`, starting with `text` and the cursor at its end.
    pub fn new(ask: Ask, text: String) -> Prompt {
        Prompt {
            ask,
            cursor: text.chars().count(),
            text,
            error: None,
        }
    }
}

/// A one-line message at the bottom of the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// What happened.
    pub text: String,
    /// Whether it went wrong.
    pub error: bool,
}

/// Everything the inspector shows.
#[derive(Debug)]
pub struct State {
    /// Where captures come from.
    pub source: Source,
    /// The public URL, once attached.
    pub url: Option<String>,
    /// The session's state.
    pub connection: Connection,
    /// The captures matching the filter, oldest first, by id.
    pub rows: Vec<Row>,
    /// The newest capture id the store has been read through.
    pub seen: Option<CaptureId>,
    /// The selected row.
    pub selected: usize,
    /// The first row on screen.
    pub offset: usize,
    /// Whether the newest row stays selected as rows arrive.
    pub follow: bool,
    /// The filter in force.
    pub filter: Option<Query>,
    /// Its text, as typed.
    pub filter_text: String,
    /// Which list load the rows come from (a new filter starts another).
    pub generation: u64,
    /// Whether the list is being read from the store.
    pub loading: bool,
    /// Whether a catch-up from the store is under way.
    pub catching_up: bool,
    /// Whether another catch-up is due once this one is done.
    pub catch_up_again: bool,
    /// Captures the live feed skipped (the UI fell behind), until the store catch-up.
    pub not_shown: u64,
    /// The line being typed, if any.
    pub prompt: Option<Prompt>,
    /// The capture marked for a diff.
    pub mark: Option<CaptureId>,
    /// What fills the screen.
    pub screen: Screen,
    /// Whether the keys are shown over it.
    pub help: bool,
    /// The last message.
    pub message: Option<Message>,
    /// Where `r`, `R` and `e` send (default: where each capture was forwarded).
    pub target: Option<Target>,
    /// Whether `R` has a secret to sign with.
    pub can_resign: bool,
    /// The terminal's size (columns, rows).
    pub size: (u16, u16),
    /// The time zone times are shown in.
    pub tz: jiff::tz::TimeZone,
    /// Events seen live, for duplicate and out-of-order notes.
    pub history: History,
    /// The first capture of each provider event id, for duplicate notes on stored rows.
    pub first_of_event: HashMap<String, CaptureId>,
    /// What bodies and headers never show: the `--secret` values.
    pub masking: Masking,
}

/// The [`Redactor`] the inspector masks secrets with; its `Debug` shows none of them.
#[derive(Clone, Default)]
pub struct Masking(pub Redactor);

impl std::fmt::Debug for Masking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Masking(redacted)")
    }
}

impl State {
    /// An empty inspector over `source`, on a terminal of `size`, showing times in `tz`.
    pub fn new(source: Source, size: (u16, u16), tz: jiff::tz::TimeZone) -> State {
        let connection = match source {
            Source::Listen => Connection::Connecting,
            Source::Store => Connection::Store,
        };
        State {
            source,
            url: None,
            connection,
            rows: Vec::new(),
            seen: None,
            selected: 0,
            offset: 0,
            follow: true,
            filter: None,
            filter_text: String::new(),
            generation: 0,
            loading: true,
            catching_up: false,
            catch_up_again: false,
            not_shown: 0,
            prompt: None,
            mark: None,
            screen: Screen::List,
            help: false,
            message: None,
            target: None,
            can_resign: false,
            size,
            tz,
            history: History::default(),
            first_of_event: HashMap::new(),
            masking: Masking::default(),
        }
    }

    /// How many rows the list shows at once.
    pub fn list_height(&self) -> usize {
        usize::from(
            self.size
                .1
                .saturating_sub(LIST_TOP + BOTTOM + self.prompt_lines()),
        )
        .max(1)
    }

    /// How many lines a detail's pane shows at once.
    pub fn pane_height(&self) -> usize {
        usize::from(
            self.size
                .1
                .saturating_sub(DETAIL_TOP + BOTTOM + self.prompt_lines()),
        )
        .max(1)
    }

    /// Lines the prompt's error takes above the bottom line.
    pub fn prompt_lines(&self) -> u16 {
        match self.prompt.as_ref().and_then(|p| p.error.as_ref()) {
            Some(error) => error.lines().count().min(3) as u16,
            None => 0,
        }
    }

    /// The selected row, if any.
    pub fn selected_row(&self) -> Option<&Row> {
        self.rows.get(self.selected)
    }

    /// The capture the keys act on: the open one, else the selected one.
    pub fn current(&self) -> Option<CaptureId> {
        match &self.screen {
            Screen::Detail(detail) => Some(detail.id),
            Screen::Diff(diff) => Some(diff.b),
            Screen::List => self.selected_row().map(|row| row.id),
        }
    }

    /// The row of capture `id`, if listed.
    pub fn row(&self, id: CaptureId) -> Option<&Row> {
        self.rows
            .binary_search_by_key(&id, |row| row.id)
            .ok()
            .map(|at| &self.rows[at])
    }
}
