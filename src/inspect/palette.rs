//! Terminal facts decided once (color, width) and the styles render code uses. With colors off
//! every style is empty, so rendering has no `if color` branches.

use std::io::IsTerminal;

/// `--color`: when to use colors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorChoice {
    /// Colors when stdout is a terminal, `NO_COLOR` is unset or empty and `TERM` is not `dumb`.
    #[default]
    Auto,
    /// Always color, even into a pipe.
    Always,
    /// Never color.
    Never,
}

impl std::str::FromStr for ColorChoice {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "auto" => Ok(ColorChoice::Auto),
            "always" => Ok(ColorChoice::Always),
            "never" => Ok(ColorChoice::Never),
            _ => Err("expected auto, always or never".into()),
        }
    }
}

impl ColorChoice {
    /// Whether to color stdout, by the rules of `--color auto` when `Auto`.
    pub fn enabled(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => auto_color(
                std::io::stdout().is_terminal(),
                std::env::var_os("NO_COLOR").as_deref(),
                std::env::var_os("TERM").as_deref(),
            ),
        }
    }
}

/// The `--color auto` rule: a terminal, `NO_COLOR` unset or empty, and `TERM` not `dumb`.
pub fn auto_color(
    is_terminal: bool,
    no_color: Option<&std::ffi::OsStr>,
    term: Option<&std::ffi::OsStr>,
) -> bool {
    let no_color = no_color.is_some_and(|v| !v.is_empty());
    let dumb = term.is_some_and(|t| t == "dumb");
    is_terminal && !no_color && !dumb
}

/// The terminal's width in columns, else 80.
pub fn terminal_width() -> usize {
    match crossterm::terminal::size() {
        Ok((columns, _)) if columns >= 20 => usize::from(columns),
        _ => 80,
    }
}

/// One ANSI style: what to write before and after the styled text.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style(&'static str);

impl Style {
    /// `text` wrapped in this style.
    pub fn paint(self, text: &str) -> String {
        if self.0.is_empty() || text.is_empty() {
            text.to_owned()
        } else {
            format!("{}{text}\x1b[0m", self.0)
        }
    }
}

/// Every style the renderers use.
#[derive(Debug, Clone, Copy, Default)]
pub struct Palette {
    /// Times, ids and other secondary text.
    pub dim: Style,
    /// The request method.
    pub method: Style,
    /// The request path.
    pub path: Style,
    /// The provider event.
    pub event: Style,
    /// 2xx statuses and valid signatures.
    pub ok: Style,
    /// 3xx statuses.
    pub redirect: Style,
    /// 4xx statuses.
    pub client_error: Style,
    /// 5xx statuses and failed signatures.
    pub server_error: Style,
    /// Notes that need attention (duplicates, slow answers).
    pub warning: Style,
    /// Header names.
    pub header_name: Style,
    /// JSON object keys.
    pub json_key: Style,
    /// JSON strings.
    pub json_string: Style,
    /// JSON numbers.
    pub json_number: Style,
    /// JSON `true`, `false` and `null`.
    pub json_literal: Style,
}

impl Palette {
    /// Colors on, or every style empty.
    pub fn new(color: bool) -> Self {
        if !color {
            return Palette::default();
        }
        Palette {
            dim: Style("\x1b[2m"),
            method: Style("\x1b[1m"),
            path: Style("\x1b[36m"),
            event: Style("\x1b[35m"),
            ok: Style("\x1b[32m"),
            redirect: Style("\x1b[36m"),
            client_error: Style("\x1b[33m"),
            server_error: Style("\x1b[31m"),
            warning: Style("\x1b[33m"),
            header_name: Style("\x1b[34m"),
            json_key: Style("\x1b[34m"),
            json_string: Style("\x1b[32m"),
            json_number: Style("\x1b[36m"),
            json_literal: Style("\x1b[35m"),
        }
    }

    /// The style of a status code, by class.
    pub fn status(&self, status: u16) -> Style {
        match status {
            200..=299 => self.ok,
            300..=399 => self.redirect,
            400..=499 => self.client_error,
            _ => self.server_error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn auto_color_follows_tty_no_color_and_term() {
        assert!(auto_color(true, None, Some(OsStr::new("xterm"))));
        assert!(auto_color(true, Some(OsStr::new("")), None));
        assert!(!auto_color(true, Some(OsStr::new("1")), None));
        assert!(!auto_color(true, None, Some(OsStr::new("dumb"))));
        assert!(!auto_color(false, None, None));
    }

    #[test]
    fn styles_are_empty_without_color() {
        assert_eq!(Palette::new(false).status(500).paint("500"), "500");
        assert_eq!(
            Palette::new(true).status(500).paint("500"),
            "\x1b[31m500\x1b[0m"
        );
    }
}
