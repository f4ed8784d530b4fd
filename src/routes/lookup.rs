//! Finding the project's `hooks.toml`: `--project FILE`, else the nearest one in the current
//! folder or a parent, as cargo finds `Cargo.toml`.
//!
//! The search stops at the root of the git repository it starts in (the folder holding `.git`,
//! a folder or a worktree's file): the file is checked in, so one above the repository belongs
//! to no one's project here.

use std::path::{Path, PathBuf};

use anyhow::anyhow;

/// The file's name.
pub const FILE_NAME: &str = "hooks.toml";

/// The project file: `given` (which must exist), else the nearest `hooks.toml` from `start`
/// up to the repository's root, else `None`.
pub fn find(given: Option<&Path>, start: &Path) -> anyhow::Result<Option<PathBuf>> {
    if let Some(path) = given {
        return match path.try_exists() {
            Ok(true) => Ok(Some(path.to_owned())),
            Ok(false) => Err(anyhow!("no project file at {}", path.display())),
            Err(e) => Err(anyhow!("could not look at {}: {e}", path.display())),
        };
    }
    for folder in start.ancestors() {
        let candidate = folder.join(FILE_NAME);
        if candidate.is_file() {
            return Ok(Some(candidate));
        }
        if folder.join(".git").exists() {
            break;
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_file_up_to_the_repository_root_wins() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let deep = root.join("repo/app/src");
        std::fs::create_dir_all(&deep).unwrap();
        assert_eq!(find(None, &deep).unwrap(), None);
        std::fs::write(root.join(FILE_NAME), "").unwrap();
        assert_eq!(find(None, &deep).unwrap(), Some(root.join(FILE_NAME)));
        // A repository's root stops the search: the file above it is someone else's.
        std::fs::write(root.join("repo/.git"), "gitdir: elsewhere").unwrap();
        assert_eq!(find(None, &deep).unwrap(), None);
        std::fs::write(root.join("repo/hooks.toml"), "").unwrap();
        let app = root.join("repo/app/hooks.toml");
        std::fs::write(&app, "").unwrap();
        assert_eq!(find(None, &deep).unwrap(), Some(app.clone()));
        // A folder called hooks.toml is not the file.
        std::fs::remove_file(&app).unwrap();
        std::fs::create_dir(&app).unwrap();
        assert_eq!(
            find(None, &deep).unwrap(),
            Some(root.join("repo/hooks.toml"))
        );
    }

    #[test]
    fn a_given_file_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("routes.toml");
        let e = find(Some(&missing), dir.path()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("no project file at {}", missing.display())
        );
        std::fs::write(&missing, "").unwrap();
        assert_eq!(find(Some(&missing), dir.path()).unwrap(), Some(missing));
    }
}
