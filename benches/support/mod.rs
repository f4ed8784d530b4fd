//! Pieces the end-to-end benches share (`mod support;` in each).

use std::process::Command;

/// The relay as deployed (systemd unit, Dockerfile): the `hooks-relay` binary next to `hooks`
/// when it has been built (`benches/run.sh` builds it), else `hooks relay`, the same relay in
/// the bigger CLI binary (more code mapped, so a higher RSS). Returns the command and its name.
pub fn relay_command() -> (Command, &'static str) {
    let hooks = std::path::Path::new(env!("CARGO_BIN_EXE_hooks"));
    let standalone = hooks.with_file_name("hooks-relay");
    if standalone.is_file() {
        (Command::new(standalone), "hooks-relay")
    } else {
        let mut command = Command::new(hooks);
        command.arg("relay");
        (command, "hooks relay")
    }
}
