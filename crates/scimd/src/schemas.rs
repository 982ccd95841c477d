//! The schema registry of the server: the built-in schemas plus the configured schema
//! files (`schemas`), read at start; a file that is not valid stops the start with a
//! message naming the file, the attribute and the problem.

use crate::config::Config;
use anyhow::{Context, Result, bail};
use scimd_proto::Registry;
use std::path::{Path, PathBuf};

/// The registry the configuration describes.
pub fn registry(config: &Config) -> Result<Registry> {
    let mut files = Vec::new();
    for pattern in &config.schemas {
        let found = expand(&config.config_dir, pattern)?;
        if found.is_empty() {
            bail!("schemas: '{pattern}' names no file");
        }
        for path in found {
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            files.push((path.display().to_string(), text));
        }
    }
    let mut registry = Registry::standard();
    scimd_proto::schema_files::load(&mut registry, &files).context("invalid schema file")?;
    Ok(registry)
}

/// The files a path names: itself, or, with `*` or `?` in its last part, the files of its
/// directory that match, in name order.
fn expand(base: &Path, pattern: &str) -> Result<Vec<PathBuf>> {
    let path = base.join(pattern);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
    if !name.contains(['*', '?']) {
        return Ok(if path.exists() { vec![path] } else { vec![] });
    }
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    if dir.to_string_lossy().contains(['*', '?']) {
        bail!("schemas: '{pattern}': patterns are allowed in the file name only");
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading directory {}", dir.display()))? {
        let entry = entry?;
        let file = entry.file_name();
        if entry.file_type()?.is_file() && file.to_str().is_some_and(|f| matches(&name, f)) {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Whether `text` matches `pattern` (`*` any run of characters, `?` one character).
fn matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Greedy with one backtrack point: linear in practice, never exponential.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < t.len() {
        if i < p.len() && (p[i] == '?' || p[i] == t[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_file_names() {
        assert!(matches("*.json", "role.json"));
        assert!(matches("r?le.json", "role.json"));
        assert!(!matches("*.json", "role.json.bak"));
        assert!(matches("*", ""));
        assert!(!matches(&"*a".repeat(30), &"a".repeat(29)), "no exponential backtracking");
    }

    #[test]
    fn files_are_read_relative_to_the_configuration_and_refusals_name_them() {
        let dir = std::env::temp_dir().join(format!("scimd-schemas-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("schemas")).unwrap();
        std::fs::write(
            dir.join("schemas/a.json"),
            r#"{"id": "urn:x:a", "attributes": [{"name": "n", "type": "strin"}]}"#,
        )
        .unwrap();
        let config = Config { schemas: vec!["schemas/*.json".into()], config_dir: dir.clone(), ..Config::default() };
        let e = format!("{:#}", registry(&config).unwrap_err());
        assert!(e.contains("a.json") && e.contains("strin"), "{e}");
        let none = Config { schemas: vec!["nothing/*.json".into()], config_dir: dir.clone(), ..Config::default() };
        assert!(registry(&none).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
