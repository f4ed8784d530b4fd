//! `e`: a capture's request as raw HTTP in a private temporary file, opened in `$VISUAL` or
//! `$EDITOR` (else `vi`) with the terminal given back meanwhile, and read back as the request
//! to send. Saving nothing (or emptying the file) sends nothing.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;

use super::terminal::Guard;
use crate::exchange::{display_path, Exchange, Header, Request};
use crate::raw_request;

/// What editing ended with.
#[derive(Debug)]
pub enum Edited {
    /// The request as saved.
    Request(Request),
    /// The file was left as it was, or emptied: nothing to send.
    Unchanged,
}

/// Opens `capture`'s request in the editor on the terminal `guard` holds.
pub fn edit(guard: &mut Guard, capture: &Exchange) -> Result<Edited, String> {
    let original = editable(&capture.request);
    let path = temp_file(capture.number(), &original).map_err(|e| format!("{e}"))?;
    let status = {
        guard.suspend().map_err(|e| e.to_string())?;
        let status = run_editor(&path);
        guard.resume().map_err(|e| e.to_string())?;
        status
    };
    let saved = std::fs::read(&path);
    let _ = std::fs::remove_file(&path);
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => return Err(format!("the editor exited with {status}; nothing sent")),
        Err(e) => return Err(format!("could not start the editor: {e}")),
    }
    let saved = saved.map_err(|e| format!("could not read the edited request: {e}"))?;
    if saved == original || saved.iter().all(u8::is_ascii_whitespace) {
        return Ok(Edited::Unchanged);
    }
    parse(&saved, &capture.request).map(Edited::Request)
}

/// The request as a person edits it: request line, headers as captured (but the length and
/// transfer coding, which would have to be kept in step with the body by hand), blank line,
/// body.
pub fn editable(request: &Request) -> Vec<u8> {
    let mut out = format!(
        "{} {} HTTP/1.1\r\n",
        request.method,
        display_path(&request.path)
    )
    .into_bytes();
    for h in &request.headers {
        if h.name == "content-length" || h.name == "transfer-encoding" {
            continue;
        }
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(&h.value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&request.body);
    out
}

/// The edited request. The body is everything after the blank line, less the line break
/// editors add at the end of a file when the original body had none.
pub fn parse(saved: &[u8], original: &Request) -> Result<Request, String> {
    let raw = raw_request::parse(saved).map_err(|e| format!("the edited request: {e}"))?;
    let mut body = raw.body;
    if !original.body.ends_with(b"\n") && body.ends_with(b"\n") {
        body.pop();
        if !original.body.ends_with(b"\r") && body.ends_with(b"\r") {
            body.pop();
        }
    }
    Ok(Request {
        method: raw.method,
        path: raw.target,
        headers: raw
            .headers
            .into_iter()
            .map(|(name, value)| Header {
                name: name.to_ascii_lowercase(),
                value: Bytes::from(value),
            })
            .collect(),
        body: Bytes::from(body),
    })
}

/// A new file only this user can read, holding `bytes`.
fn temp_file(id: u64, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let path = std::env::temp_dir().join(format!("hooks-edit-{}-{id}.http", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = match options.open(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // Left by an editor that crashed: this process made it.
            std::fs::remove_file(&path)?;
            options.open(&path)?
        }
        other => other?,
    };
    file.write_all(bytes)?;
    Ok(path)
}

/// Runs `$VISUAL`, else `$EDITOR`, else `vi` on `path` through `sh`, so an editor given with
/// arguments (`code --wait`) works.
fn run_editor(path: &Path) -> std::io::Result<std::process::ExitStatus> {
    let editor = ["VISUAL", "EDITOR"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "vi".to_owned());
    Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("hooks-edit")
        .arg(path)
        .status()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: &'static [u8]) -> Request {
        Request {
            method: "POST".into(),
            path: "hook?a=1".into(),
            headers: vec![
                Header {
                    name: "content-type".into(),
                    value: Bytes::from_static(b"application/json"),
                },
                Header {
                    name: "content-length".into(),
                    value: Bytes::from_static(b"7"),
                },
            ],
            body: Bytes::from_static(body),
        }
    }

    #[test]
    fn a_request_survives_the_editor_and_loses_the_added_line_break() {
        let original = request(b"{\"a\":1}");
        let text = editable(&original);
        assert_eq!(
            text,
            b"POST /hook?a=1 HTTP/1.1\r\ncontent-type: application/json\r\n\r\n{\"a\":1}"
        );
        let mut saved = String::from_utf8(text).unwrap().replace("1}", "22}");
        saved.push('\n');
        let saved = saved.into_bytes();
        let edited = parse(&saved, &original).unwrap();
        assert_eq!(&edited.body[..], b"{\"a\":22}");
        assert_eq!(edited.path, "/hook?a=1");
        assert_eq!(edited.headers.len(), 1);
    }
}
