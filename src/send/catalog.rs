//! The templates `hooks send` knows: the built-in ones (embedded from `templates/`) and a
//! project's own (`.hooks/events/` in the current folder or the nearest parent that has a
//! `.hooks` folder), which add events or replace built-in ones of the same name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::builtin::BUILT_IN;
use super::template::{Source, Syntax, Template};
use crate::verify::Provider;
use crate::UsageError;

/// Template files larger than this are refused: an event is kilobytes.
const MAX_TEMPLATE_BYTES: u64 = 1024 * 1024;

/// Most template files read from a project.
const MAX_PROJECT_FILES: usize = 2_000;

/// How deep event names may nest under a provider folder (`orders/create` is two).
const MAX_DEPTH: usize = 4;

/// Every template, by provider folder then event.
#[derive(Debug, Default)]
pub struct Catalog {
    templates: BTreeMap<String, BTreeMap<String, Template>>,
}

impl Catalog {
    /// The built-in templates, then the project's from `events` (if any) over them.
    pub fn load(events: Option<&Path>) -> Result<Catalog, UsageError> {
        let mut catalog = Catalog::default();
        for (path, text) in BUILT_IN {
            let (provider, event, syntax) = split_path(path)
                .ok_or_else(|| UsageError(format!("built-in template {path} is misnamed")))?;
            let template = Template::parse(provider, event, text, syntax, Source::BuiltIn)
                .map_err(|e| UsageError(format!("built-in template {path}: {e}")))?;
            catalog.insert(template);
        }
        if let Some(dir) = events {
            for file in project_files(dir)? {
                catalog.insert(read_project_file(dir, &file)?);
            }
        }
        Ok(catalog)
    }

    fn insert(&mut self, template: Template) {
        self.templates
            .entry(template.provider.clone())
            .or_default()
            .insert(template.event.clone(), template);
    }

    /// Every template of `provider` (all when `None`), by provider then event.
    pub fn list(&self, provider: Option<&str>) -> Result<Vec<&Template>, UsageError> {
        match provider {
            None => Ok(self.templates.values().flat_map(|e| e.values()).collect()),
            Some(name) => Ok(self.events_of(name)?.1.values().collect()),
        }
    }

    /// The template for `provider`'s `event`; an unknown name is an error naming the closest.
    pub fn find(&self, provider: &str, event: &str) -> Result<&Template, UsageError> {
        let (folder, events) = self.events_of(provider)?;
        if let Some(template) = events.get(event).or_else(|| {
            events
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(event))
                .map(|(_, t)| t)
        }) {
            return Ok(template);
        }
        let names: Vec<&str> = events.keys().map(String::as_str).collect();
        Err(UsageError(format!(
            "no {folder} event {event:?}; {} (hooks send --list {folder})",
            suggest(event, &names, "events")
        )))
    }

    /// The folder `name` stands for and its events: its own folder, else the folder of the
    /// provider it names (`svix` has none of its own: it sends as `standard-webhooks`).
    fn events_of(&self, name: &str) -> Result<(&str, &BTreeMap<String, Template>), UsageError> {
        let lower = name.trim().to_ascii_lowercase();
        let folder = match name.parse::<Provider>() {
            _ if self.templates.contains_key(&lower) => lower,
            Ok(provider) => provider.name().to_owned(),
            Err(_) => lower,
        };
        match self.templates.get_key_value(&folder) {
            Some((folder, events)) => Ok((folder.as_str(), events)),
            None => {
                let mut names: Vec<&str> = self.templates.keys().map(String::as_str).collect();
                names.extend(Provider::ALIASES.iter().map(|(alias, _)| *alias));
                Err(UsageError(format!(
                    "unknown provider {name:?}; {} (hooks send --list)",
                    suggest(name, &names, "providers")
                )))
            }
        }
    }
}

/// `provider`, `event` and syntax of a built-in template's path, `stripe/invoice.paid.toml`.
fn split_path(path: &str) -> Option<(&str, &str, Syntax)> {
    let (provider, rest) = path.split_once('/')?;
    let (syntax, event) = Syntax::of(rest)?;
    Some((provider, event, syntax))
}

/// The `.hooks/events` folder of the project around `start`: in `start` or the nearest parent
/// that has a `.hooks` folder. `None` when there is none (or it has no `events`).
pub fn project_events(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| dir.join(".hooks").is_dir())
        .map(|dir| dir.join(".hooks").join("events"))
        .filter(|events| events.is_dir())
}

/// The template files under `dir`, relative to it, in a stable order.
fn project_files(dir: &Path) -> Result<Vec<PathBuf>, UsageError> {
    let mut found = Vec::new();
    let mut pending = vec![(PathBuf::new(), 0)];
    while let Some((relative, depth)) = pending.pop() {
        let entries = std::fs::read_dir(dir.join(&relative)).map_err(|e| {
            UsageError(format!(
                "could not read {}: {e}",
                dir.join(&relative).display()
            ))
        })?;
        for entry in entries.flatten() {
            let path = relative.join(entry.file_name());
            let kind = entry.file_type().ok();
            if kind.is_some_and(|k| k.is_dir()) && depth < MAX_DEPTH {
                pending.push((path, depth + 1));
            } else if kind.is_some_and(|k| k.is_file())
                && depth > 0
                && Syntax::of(&entry.file_name().to_string_lossy()).is_some()
            {
                found.push(path);
            }
        }
        if found.len() > MAX_PROJECT_FILES {
            return Err(UsageError(format!(
                "{} holds more than {MAX_PROJECT_FILES} template files",
                dir.display()
            )));
        }
    }
    found.sort();
    Ok(found)
}

/// Reads the template at `relative` under `dir`: `<provider>/<event>.toml|json`, the event
/// being the rest of the path (`shopify/orders/create.json` is `orders/create`).
fn read_project_file(dir: &Path, relative: &Path) -> Result<Template, UsageError> {
    let path = dir.join(relative);
    let fail = |why: String| UsageError(format!("template {}: {why}", path.display()));
    let parts: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    let (provider, rest) = parts
        .split_first()
        .ok_or_else(|| fail("not under a provider folder".into()))?;
    let joined = rest.join("/");
    let (syntax, event) = Syntax::of(&joined).ok_or_else(|| fail("not .toml or .json".into()))?;
    let size = std::fs::metadata(&path)
        .map_err(|e| fail(e.to_string()))?
        .len();
    if size > MAX_TEMPLATE_BYTES {
        return Err(fail(format!("larger than {MAX_TEMPLATE_BYTES} bytes")));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| fail(e.to_string()))?;
    let provider = provider.to_ascii_lowercase();
    Template::parse(
        &provider,
        event,
        &text,
        syntax,
        Source::Project(path.clone()),
    )
    .map_err(fail)
}

/// "did you mean X?" for the names closest to `wanted` (all at the same distance), else the
/// names there are.
fn suggest(wanted: &str, names: &[&str], what: &str) -> String {
    let wanted_lower = wanted.to_ascii_lowercase();
    let mut scored: Vec<(usize, &str)> = names
        .iter()
        .map(|name| (distance(&wanted_lower, &name.to_ascii_lowercase()), *name))
        .collect();
    scored.sort();
    // Close enough to be a typo, and no further than the closest.
    let limit = (wanted.chars().count() / 3).max(2);
    let best = scored.first().map_or(usize::MAX, |(d, _)| *d);
    let close: Vec<&str> = scored
        .iter()
        .filter(|(d, _)| *d <= limit && *d == best)
        .take(3)
        .map(|(_, n)| *n)
        .collect();
    if close.is_empty() {
        let mut all: Vec<&str> = names.to_vec();
        all.sort_unstable();
        all.dedup();
        return format!("known {what}: {}", all.join(", "));
    }
    format!("did you mean {}?", close.join(" or "))
}

/// Levenshtein distance between `a` and `b`, by characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(above + 1)
                .min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("stripe", "stripe"), 0);
        assert_eq!(distance("strpe", "stripe"), 1);
        assert_eq!(distance("invoice.payed", "invoice.paid"), 2);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn every_built_in_template_loads_and_renders() {
        let catalog = Catalog::load(None).unwrap();
        let all = catalog.list(None).unwrap();
        assert_eq!(all.len(), BUILT_IN.len());
        for template in all {
            let rendered = template
                .render(
                    &mut super::super::render::Values::fresh(),
                    std::time::SystemTime::now(),
                )
                .unwrap();
            if rendered
                .header("content-type")
                .is_some_and(|t| t.contains("json"))
            {
                let parsed = serde_json::from_slice::<serde_json::Value>(&rendered.body);
                assert!(
                    parsed.is_ok(),
                    "{}/{}: {parsed:?}",
                    template.provider,
                    template.event
                );
            }
            assert!(!template.description.is_empty());
            assert!(template.scheme.is_some(), "{}", template.provider);
        }
        for provider in Provider::ALL {
            assert!(
                !catalog.list(Some(provider.name())).unwrap().is_empty(),
                "{provider} has a template"
            );
        }
    }

    #[test]
    fn unknown_names_get_the_closest() {
        let catalog = Catalog::load(None).unwrap();
        let err = catalog.find("strpe", "invoice.paid").unwrap_err().0;
        assert_eq!(
            err,
            "unknown provider \"strpe\"; did you mean stripe? (hooks send --list)"
        );
        let err = catalog.find("stripe", "invoice.payed").unwrap_err().0;
        assert!(
            err.starts_with("no stripe event \"invoice.payed\"; did you mean invoice.paid?"),
            "{err}"
        );
        let err = catalog.find("zzzzzzzz", "x").unwrap_err().0;
        assert!(err.contains("known providers: calendly, clerk,"), "{err}");
        assert_eq!(
            catalog.find("svix", "user.created").unwrap().provider,
            "standard-webhooks"
        );
        assert_eq!(catalog.find("GitHub", "PUSH").unwrap().event, "push");
    }
}
