//! The interactive inspector (`hooks listen --ui`, `hooks inspect`): a live list of captures, a
//! detail view with tabs, a `--where` filter bar, replay (as captured, re-signed, edited), a
//! diff of two captures, copy as curl (OSC 52) and export.
//!
//! Elm-shaped: a [`State`], a pure [`update`] from a message (a key, a capture, rows from the
//! store) to a new state and an [`Effect`], and a [`view`] that draws the state. The loop
//! (`run`) performs the effects: the store worker (`feed`) reads, the runtime replays, the
//! terminal (`terminal`) is always given back.

mod document;
mod editor;
mod effects;
mod feed;
mod json_index;
mod loaded;
mod navigate;
mod prompt;
mod run;
mod state;
mod terminal;
mod update;
mod view;

pub use document::{Body, Mode, Pos};
pub use effects::Reply;
pub use loaded::load;
pub use run::{inspect, run, Options};
pub use state::{
    Ask, Connection, Content, Detail, DiffView, Loaded, Masking, Message, Prompt, Row, Screen,
    Source, State, Tab, MAX_ROWS,
};
pub use terminal::is_terminal;
pub use update::{start, update, Effect, Msg, Rows};
pub use view::view;
