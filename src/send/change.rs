//! Changes to a rendered event before it is signed: `--data` (a whole body), `--set` (one value,
//! by JSON Pointer or form field) and `--edit` (the developer's editor).

use std::io::Read as _;
use std::path::PathBuf;

use serde_json::Value;

use super::template::Rendered;
use crate::UsageError;

/// Largest `--data` body read: the relay's default body limit.
const MAX_DATA_BYTES: u64 = relay_server::protocol::DEFAULT_MAX_BODY as u64;

/// The body `--data` gives: `@FILE`, `@-` (stdin), or the text itself.
pub fn data(spec: &str) -> Result<Vec<u8>, UsageError> {
    let Some(path) = spec.strip_prefix('@') else {
        return Ok(spec.as_bytes().to_vec());
    };
    let mut bytes = Vec::new();
    let read = if path == "-" {
        std::io::stdin()
            .take(MAX_DATA_BYTES + 1)
            .read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(MAX_DATA_BYTES + 1).read_to_end(&mut bytes))
    };
    read.map_err(|e| UsageError(format!("--data: could not read {path}: {e}")))?;
    if bytes.len() as u64 > MAX_DATA_BYTES {
        return Err(UsageError(format!(
            "--data: {path} is larger than {MAX_DATA_BYTES} bytes"
        )));
    }
    Ok(bytes)
}

/// Applies each `--set POINTER=VALUE` to the body: a JSON body keeps its layout (indented or
/// compact), a form body has the field `/Name` set.
pub fn set(request: &mut Rendered, changes: &[(String, String)]) -> Result<(), UsageError> {
    if changes.is_empty() {
        return Ok(());
    }
    let is_form = request
        .header("content-type")
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    request.body = if is_form {
        set_form(&request.body, changes)?
    } else {
        set_json(&request.body, changes)?
    };
    Ok(())
}

fn set_json(body: &[u8], changes: &[(String, String)]) -> Result<Vec<u8>, UsageError> {
    let mut root: Value = serde_json::from_slice(body).map_err(|e| {
        UsageError(format!(
            "--set needs a JSON or form body, and this one is neither ({e})"
        ))
    })?;
    for (pointer, text) in changes {
        let value = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone()));
        put(&mut root, pointer, value)
            .map_err(|why| UsageError(format!("--set {pointer}: {why}")))?;
    }
    // Indented when a line inside it is (not just because it ends with a newline, as
    // SendGrid's compact bodies end with CRLF); the trailing line break stays as it was.
    let end = body
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    let indented = body[..end].windows(2).any(|w| w == b"\n ");
    let mut out = if indented {
        serde_json::to_vec_pretty(&root)
    } else {
        serde_json::to_vec(&root)
    }
    .map_err(|e| UsageError(format!("--set: could not write the body: {e}")))?;
    out.extend_from_slice(&body[end..]);
    Ok(out)
}

/// Sets the value at `pointer` (RFC 6901), making the objects on the way that are missing; `-`
/// appends to an array.
fn put(root: &mut Value, pointer: &str, value: Value) -> Result<(), String> {
    if pointer.is_empty() {
        *root = value;
        return Ok(());
    }
    let tokens: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    let (last, path) = tokens
        .split_last()
        .expect("a pointer that is not empty has a token");
    let mut at = root;
    for token in path {
        at = match at {
            Value::Object(map) => map
                .entry(token.clone())
                .or_insert_with(|| Value::Object(Default::default())),
            Value::Array(items) => {
                let index = index(token, items.len())?;
                &mut items[index]
            }
            _ => return Err(format!("{token:?} is inside a value that is not an object")),
        };
    }
    match at {
        Value::Object(map) => {
            map.insert(last.clone(), value);
        }
        Value::Array(items) if last == "-" => items.push(value),
        Value::Array(items) => {
            let index = index(last, items.len())?;
            items[index] = value;
        }
        _ => return Err(format!("{last:?} is inside a value that is not an object")),
    }
    Ok(())
}

fn index(token: &str, len: usize) -> Result<usize, String> {
    match token.parse::<usize>() {
        Ok(i) if i < len => Ok(i),
        _ => Err(format!("{token:?} is not an index of an array of {len}")),
    }
}

fn set_form(body: &[u8], changes: &[(String, String)]) -> Result<Vec<u8>, UsageError> {
    let mut fields: Vec<(String, String)> = form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    for (pointer, value) in changes {
        let name = pointer.strip_prefix('/').unwrap_or(pointer);
        match fields.iter_mut().find(|(k, _)| k == name) {
            Some(field) => field.1 = value.clone(),
            None => fields.push((name.to_owned(), value.clone())),
        }
    }
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.extend_pairs(&fields);
    Ok(form.finish().into_bytes())
}

/// Opens the body in `$VISUAL` (else `$EDITOR`, else `vi`) and takes what was saved.
pub fn edit(request: &mut Rendered) -> anyhow::Result<()> {
    let editor = ["VISUAL", "EDITOR"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "vi".to_owned());
    let file = Scratch::create(&request.body, extension(request))?;
    // Through the shell, so `EDITOR="code --wait"` works as it does for git.
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&file.0)
        .status()
        .map_err(|e| anyhow::anyhow!("could not start the editor {editor:?}: {e}"))?;
    if !status.success() {
        return Err(UsageError(format!(
            "the editor {editor:?} failed ({status}); nothing was sent"
        ))
        .into());
    }
    request.body = std::fs::read(&file.0)
        .map_err(|e| anyhow::anyhow!("could not read {} back: {e}", file.0.display()))?;
    Ok(())
}

fn extension(request: &Rendered) -> &'static str {
    match request.header("content-type") {
        Some(t) if t.contains("json") => "json",
        _ => "txt",
    }
}

/// A file for the editor, readable by its owner only, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn create(body: &[u8], extension: &str) -> anyhow::Result<Scratch> {
        use std::io::Write as _;
        let mut random = [0u8; 8];
        let _ = getrandom::fill(&mut random);
        let path =
            std::env::temp_dir().join(format!("hooks-send-{}.{extension}", hex::encode(random)));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&path)
            .map_err(|e| anyhow::anyhow!("could not create {}: {e}", path.display()))?;
        file.write_all(body)?;
        Ok(Scratch(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(content_type: &str, body: &str) -> Rendered {
        Rendered {
            method: "POST".into(),
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.as_bytes().to_vec(),
        }
    }

    fn set_all(r: &mut Rendered, changes: &[(&str, &str)]) -> Result<(), UsageError> {
        let changes: Vec<(String, String)> = changes
            .iter()
            .map(|(p, v)| (p.to_string(), v.to_string()))
            .collect();
        set(r, &changes)
    }

    #[test]
    fn json_values_are_json_or_strings_and_layout_is_kept() {
        let mut r = request("application/json", r#"{"a":{"n":1},"l":[1,2]}"#);
        set_all(
            &mut r,
            &[
                ("/a/n", "5000"),
                ("/a/currency", "eur"),
                ("/new/deep", "{\"x\":true}"),
                ("/l/0", "null"),
                ("/l/-", "3"),
                ("/a~1b", "\"s\""),
            ],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(r.body).unwrap(),
            r#"{"a":{"n":5000,"currency":"eur"},"l":[null,2,3],"new":{"deep":{"x":true}},"a/b":"s"}"#
        );
        let mut pretty = request("application/json", "{\n  \"a\": 1\n}\n");
        set_all(&mut pretty, &[("/a", "2")]).unwrap();
        assert_eq!(pretty.body, b"{\n  \"a\": 2\n}\n");
        let mut compact = request("application/json", "[{\"a\":1}]\r\n");
        set_all(&mut compact, &[("/0/a", "2")]).unwrap();
        assert_eq!(compact.body, b"[{\"a\":2}]\r\n");
    }

    #[test]
    fn form_fields_are_set_or_added() {
        let mut r = request("application/x-www-form-urlencoded", "Body=hi+there&To=%2B1");
        set_all(&mut r, &[("/Body", "bye & more"), ("/New", "x")]).unwrap();
        assert_eq!(r.body, b"Body=bye+%26+more&To=%2B1&New=x");
    }

    #[test]
    fn bad_changes_are_named() {
        let mut r = request("text/plain", "not json");
        assert!(set_all(&mut r, &[("/a", "1")])
            .unwrap_err()
            .0
            .starts_with("--set needs a JSON or form body"));
        let mut r = request("application/json", r#"{"l":[1],"s":"x"}"#);
        let err = set_all(&mut r, &[("/l/7", "1")]).unwrap_err().0;
        assert_eq!(err, "--set /l/7: \"7\" is not an index of an array of 1");
        let err = set_all(&mut r, &[("/s/x", "1")]).unwrap_err().0;
        assert!(err.contains("not an object"), "{err}");
    }

    #[test]
    fn data_is_text_or_a_file() {
        assert_eq!(data("{\"a\":1}").unwrap(), b"{\"a\":1}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("body.json");
        std::fs::write(&path, b"\xff\x00bytes").unwrap();
        assert_eq!(
            data(&format!("@{}", path.display())).unwrap(),
            b"\xff\x00bytes"
        );
        let missing = data("@/nonexistent/file").unwrap_err().0;
        assert!(missing.starts_with("--data: could not read /nonexistent/file"));
    }
}
