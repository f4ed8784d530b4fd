//! What `hooks routes check` finds beyond what reading the file finds: primary routes that an
//! earlier one leaves nothing to (see `shadow`), and `secret_env` variables that are not set.

use super::{shadowed_by, Parsed, Problem, Route};

/// Every problem in `parsed`, in the order of the file: its own, and its routes'
/// [`findings`].
pub fn problems(parsed: &Parsed, is_set: impl Fn(&str) -> bool) -> Vec<Problem> {
    let mut problems = parsed.problems.clone();
    problems.extend(findings(&parsed.routes, is_set));
    problems.sort_by_key(|p| p.line);
    problems
}

/// What is wrong with routes that could be read, in order: those that can never match, and
/// secret variables that `is_set` says are not set (or empty). A `--route` flag's route has
/// line 0.
pub fn findings(routes: &[Route], is_set: impl Fn(&str) -> bool) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (later, earlier) in shadowed_by(routes) {
        let (later, earlier) = (&routes[later], &routes[earlier]);
        problems.push(Problem {
            line: later.line.unwrap_or(0),
            message: format!(
                "route {:?} can never match: route {:?} ({}) comes first and matches everything it matches",
                later.name,
                earlier.name,
                earlier.origin()
            ),
        });
    }
    for route in routes {
        if let Some(name) = route.secret_env.as_deref().filter(|name| !is_set(name)) {
            problems.push(Problem {
                line: route.line.unwrap_or(0),
                message: format!(
                    "route {:?}: secret_env {name} is not set, so its signatures cannot be checked",
                    route.name
                ),
            });
        }
    }
    problems.sort_by_key(|p| p.line);
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::parse;

    #[test]
    fn shadowed_routes_and_unset_variables_are_found() {
        let text = r#"
[[route]]
name = "stripe"
match = "path:/stripe*"
to = "3000"
secret_env = "SET"

[[route]]
name = "mirror"
match = "path:/stripe/x"
to = "5000"
mode = "copy"
secret_env = "EMPTY"

[[route]]
name = "billing"
match = "path:/stripe/billing* AND event:invoice.*"
to = "4000"
"#;
        let parsed = parse(text);
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        let found = problems(&parsed, |name| name == "SET");
        let lines: Vec<(usize, &str)> =
            found.iter().map(|p| (p.line, p.message.as_str())).collect();
        assert_eq!(
            lines,
            [
                (8, "route \"mirror\": secret_env EMPTY is not set, so its signatures cannot be checked"),
                (15, "route \"billing\" can never match: route \"stripe\" (line 2) comes first and matches everything it matches"),
            ]
        );
    }
}
