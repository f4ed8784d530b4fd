//! The terminal, taken and always given back: raw mode and the alternate screen are entered by
//! [`Guard::enter`] and left by its `Drop` (quit, an error, SIGTERM and SIGHUP end the loop
//! normally), and by a panic hook before the panic's message is printed, so a panic leaves a
//! usable shell with a readable message.

use std::io::{self, Stdout, Write};
use std::sync::Once;

use crossterm::cursor::Show;
use crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::ExecutableCommand;
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use tokio_util::sync::CancellationToken;

/// The terminal while the inspector has it.
pub struct Guard {
    /// What ratatui draws on.
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Guard {
    /// Raw mode, the alternate screen, the cursor hidden; undone when the guard is dropped.
    pub fn enter() -> io::Result<Guard> {
        install_panic_hook();
        terminal::enable_raw_mode()?;
        let guard = Guard {
            terminal: Terminal::new(CrosstermBackend::new(io::stdout()))?,
        };
        io::stdout().execute(EnterAlternateScreen)?;
        let mut guard = guard;
        guard.terminal.hide_cursor()?;
        guard.terminal.clear()?;
        Ok(guard)
    }

    /// Gives the terminal back for a while (to an editor).
    pub fn suspend(&mut self) -> io::Result<()> {
        restore();
        Ok(())
    }

    /// Takes it again after [`Guard::suspend`], and draws everything anew.
    pub fn resume(&mut self) -> io::Result<()> {
        terminal::enable_raw_mode()?;
        io::stdout().execute(EnterAlternateScreen)?;
        self.terminal.hide_cursor()?;
        self.terminal.clear()
    }

    /// Writes `bytes` to the terminal as they are (an OSC 52 sequence), between two frames.
    pub fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut out = io::stdout().lock();
        out.write_all(bytes)?;
        out.flush()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}

/// Leaves raw mode and the alternate screen and shows the cursor; harmless when done already.
/// Raw mode goes first, so that once the shell's screen shows again, what is typed is echoed
/// and read as lines (typed in raw mode, Enter stays a carriage return that ends no line).
fn restore() {
    let _ = terminal::disable_raw_mode();
    let mut out = io::stdout();
    let _ = out.execute(LeaveAlternateScreen);
    let _ = out.execute(Show);
    let _ = out.flush();
}

/// Restores the terminal before the default hook prints a panic (once per process).
fn install_panic_hook() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

/// Cancels `stop` on SIGHUP (the terminal went away, `tmux kill-pane`), so the loop ends and
/// the guard restores the terminal instead of the process dying in raw mode. Needs the runtime.
pub fn stop_on_hangup(stop: CancellationToken) -> io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangup = signal(SignalKind::hangup())?;
        tokio::spawn(async move {
            tokio::select! {
                _ = hangup.recv() => stop.cancel(),
                () = stop.cancelled() => {}
            }
        });
    }
    #[cfg(not(unix))]
    let _ = stop;
    Ok(())
}

/// Whether both stdin and stdout are terminals: the inspector needs to read keys and draw.
pub fn is_terminal() -> bool {
    use std::io::IsTerminal;
    io::stdin().is_terminal() && io::stdout().is_terminal()
}
