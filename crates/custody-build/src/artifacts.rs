//! `--artifacts` globs, matched against paths relative to the build's working directory.

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

/// A glob that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("--artifacts {pattern:?} is not a valid glob: {source}")]
pub struct GlobError {
    pub pattern: String,
    #[source]
    pub source: globset::Error,
}

/// The `--artifacts` patterns. `*` does not cross `/`; `**` does.
#[derive(Debug, Clone)]
pub struct ArtifactGlobs {
    patterns: Vec<String>,
    set: GlobSet,
    each: Vec<globset::GlobMatcher>,
}

fn compile(pattern: &str) -> Result<Glob, GlobError> {
    let clean = pattern.strip_prefix("./").unwrap_or(pattern);
    GlobBuilder::new(clean)
        .literal_separator(true)
        .build()
        .map_err(|source| GlobError {
            pattern: pattern.to_string(),
            source,
        })
}

impl ArtifactGlobs {
    pub fn new(patterns: &[String]) -> Result<Self, GlobError> {
        let mut builder = GlobSetBuilder::new();
        let mut each = Vec::new();
        for p in patterns {
            let glob = compile(p)?;
            each.push(glob.compile_matcher());
            builder.add(glob);
        }
        let set = builder.build().map_err(|source| GlobError {
            pattern: patterns.join(" "),
            source,
        })?;
        Ok(Self {
            patterns: patterns.to_vec(),
            set,
            each,
        })
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// True when the relative path (with `/` separators) matches any pattern.
    pub fn is_match(&self, relative: &str) -> bool {
        self.set.is_match(relative)
    }

    /// The patterns that matched none of `paths`: each one is a build that did not produce
    /// what was promised.
    pub fn unmatched<'a>(&'a self, paths: &[String]) -> Vec<&'a str> {
        self.each
            .iter()
            .zip(&self.patterns)
            .filter(|(m, _)| !paths.iter().any(|p| m.is_match(p)))
            .map(|(_, p)| p.as_str())
            .collect()
    }

    /// The literal directory prefix of every pattern (what to walk instead of the whole tree).
    pub fn roots(&self) -> Vec<String> {
        self.patterns
            .iter()
            .map(|p| {
                let p = p.strip_prefix("./").unwrap_or(p);
                let mut root = Vec::new();
                for part in p.split('/') {
                    if part.contains(['*', '?', '[', '{']) {
                        break;
                    }
                    root.push(part);
                }
                // The whole pattern was literal: its parent directory holds it.
                if root.len() == p.split('/').count() {
                    root.pop();
                }
                root.join("/")
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn globs(p: &[&str]) -> ArtifactGlobs {
        ArtifactGlobs::new(&p.iter().map(|s| (*s).to_string()).collect::<Vec<_>>()).expect("valid")
    }

    #[test]
    fn star_stays_in_its_directory() {
        let g = globs(&["dist/*.tgz", "./target/**/app"]);
        assert!(g.is_match("dist/a.tgz"));
        assert!(!g.is_match("dist/sub/a.tgz"));
        assert!(g.is_match("target/release/app"));
        assert!(g.is_match("target/app"));
        assert_eq!(g.roots(), vec!["dist".to_string(), "target".to_string()]);
        assert_eq!(
            g.unmatched(&["dist/a.tgz".to_string()]),
            vec!["./target/**/app"]
        );
    }

    #[test]
    fn bad_glob_is_named() {
        let e = ArtifactGlobs::new(&["dist/[".to_string()]).expect_err("invalid");
        assert!(e.to_string().contains("dist/["));
    }

    #[test]
    fn literal_path_root_is_its_parent() {
        assert_eq!(globs(&["out/app.bin"]).roots(), vec!["out".to_string()]);
        assert_eq!(globs(&["app.bin"]).roots(), vec![String::new()]);
    }
}
