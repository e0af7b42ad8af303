//! CI platforms: who the builder is and what source it checked out, read from the environment
//! variables each platform documents. A value from here is what the platform *says*; custody
//! running inside a tenant's job cannot make it more than that (SLSA Build L1, SPECS §3.2).

use std::collections::BTreeMap;

/// A CI platform custody recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    GithubActions,
    GitlabCi,
    Jenkins,
    Buildkite,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GithubActions => "github-actions",
            Self::GitlabCi => "gitlab-ci",
            Self::Jenkins => "jenkins",
            Self::Buildkite => "buildkite",
        }
    }
}

/// What a CI environment tells about the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiContext {
    pub platform: Platform,
    /// `runDetails.builder.id`.
    pub builder_id: String,
    /// A link to this run (job) on the platform.
    pub run_url: Option<String>,
    pub repository: Option<String>,
    pub commit: Option<String>,
    pub git_ref: Option<String>,
    /// Platform facts worth recording (workflow, job, runner), all non-secret by construction.
    pub details: BTreeMap<String, String>,
}

fn var<'a>(env: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    env.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

fn owned(env: &BTreeMap<String, String>, name: &str) -> Option<String> {
    var(env, name).map(str::to_string)
}

fn details(env: &BTreeMap<String, String>, names: &[&str]) -> BTreeMap<String, String> {
    names
        .iter()
        .filter_map(|n| var(env, n).map(|v| ((*n).to_string(), v.to_string())))
        .collect()
}

/// Recognises GitHub Actions, GitLab CI, Jenkins and Buildkite, in that order.
pub fn detect(env: &BTreeMap<String, String>) -> Option<CiContext> {
    github(env)
        .or_else(|| gitlab(env))
        .or_else(|| jenkins(env))
        .or_else(|| buildkite(env))
}

// docs.github.com "Store information in variables": default environment variables.
fn github(env: &BTreeMap<String, String>) -> Option<CiContext> {
    if var(env, "GITHUB_ACTIONS") != Some("true") {
        return None;
    }
    let server = var(env, "GITHUB_SERVER_URL").unwrap_or("https://github.com");
    let repo = var(env, "GITHUB_REPOSITORY");
    let runner = var(env, "RUNNER_ENVIRONMENT").unwrap_or("github-hosted");
    let run_url = match (repo, var(env, "GITHUB_RUN_ID")) {
        (Some(repo), Some(id)) => {
            let attempt = var(env, "GITHUB_RUN_ATTEMPT").unwrap_or("1");
            Some(format!(
                "{server}/{repo}/actions/runs/{id}/attempts/{attempt}"
            ))
        }
        _ => None,
    };
    Some(CiContext {
        platform: Platform::GithubActions,
        builder_id: format!("https://github.com/actions/runner/{runner}"),
        run_url,
        repository: repo.map(|r| format!("{server}/{r}")),
        commit: owned(env, "GITHUB_SHA"),
        git_ref: owned(env, "GITHUB_REF"),
        details: details(
            env,
            &[
                "GITHUB_WORKFLOW_REF",
                "GITHUB_WORKFLOW_SHA",
                "GITHUB_EVENT_NAME",
                "GITHUB_JOB",
                "GITHUB_ACTOR",
                "RUNNER_OS",
                "RUNNER_ARCH",
            ],
        ),
    })
}

// docs.gitlab.com "Predefined CI/CD variables".
fn gitlab(env: &BTreeMap<String, String>) -> Option<CiContext> {
    if var(env, "GITLAB_CI") != Some("true") {
        return None;
    }
    let server = var(env, "CI_SERVER_URL").unwrap_or("https://gitlab.com");
    let builder_id = match var(env, "CI_RUNNER_ID") {
        Some(id) => format!("{server}/-/runners/{id}"),
        None => format!("{server}/-/runners"),
    };
    Some(CiContext {
        platform: Platform::GitlabCi,
        builder_id,
        run_url: owned(env, "CI_JOB_URL"),
        repository: owned(env, "CI_PROJECT_URL"),
        commit: owned(env, "CI_COMMIT_SHA"),
        git_ref: var(env, "CI_COMMIT_REF_NAME").map(|r| {
            if var(env, "CI_COMMIT_TAG").is_some() {
                format!("refs/tags/{r}")
            } else {
                format!("refs/heads/{r}")
            }
        }),
        details: details(
            env,
            &[
                "CI_PIPELINE_ID",
                "CI_JOB_ID",
                "CI_JOB_NAME",
                "CI_PIPELINE_SOURCE",
                "CI_RUNNER_DESCRIPTION",
            ],
        ),
    })
}

// Jenkins "Building a software project": env vars set by Jenkins and the git plugin.
fn jenkins(env: &BTreeMap<String, String>) -> Option<CiContext> {
    let url = var(env, "JENKINS_URL")?;
    Some(CiContext {
        platform: Platform::Jenkins,
        builder_id: url.to_string(),
        run_url: owned(env, "BUILD_URL"),
        repository: owned(env, "GIT_URL"),
        commit: owned(env, "GIT_COMMIT"),
        git_ref: owned(env, "GIT_BRANCH"),
        details: details(env, &["JOB_NAME", "BUILD_NUMBER", "NODE_NAME"]),
    })
}

// buildkite.com/docs/pipelines/environment-variables.
fn buildkite(env: &BTreeMap<String, String>) -> Option<CiContext> {
    if var(env, "BUILDKITE") != Some("true") {
        return None;
    }
    let org = var(env, "BUILDKITE_ORGANIZATION_SLUG").unwrap_or("unknown");
    Some(CiContext {
        platform: Platform::Buildkite,
        builder_id: format!("https://buildkite.com/{org}/agents"),
        run_url: owned(env, "BUILDKITE_BUILD_URL"),
        repository: owned(env, "BUILDKITE_REPO"),
        commit: owned(env, "BUILDKITE_COMMIT"),
        git_ref: var(env, "BUILDKITE_BRANCH").map(|b| format!("refs/heads/{b}")),
        details: details(
            env,
            &[
                "BUILDKITE_PIPELINE_SLUG",
                "BUILDKITE_BUILD_NUMBER",
                "BUILDKITE_JOB_ID",
                "BUILDKITE_AGENT_NAME",
            ],
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn github_actions() {
        let ctx = detect(&env(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "acme/app"),
            ("GITHUB_RUN_ID", "42"),
            ("GITHUB_RUN_ATTEMPT", "2"),
            ("GITHUB_SHA", "0123"),
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_TOKEN", "ghs_secret"),
            ("RUNNER_ENVIRONMENT", "self-hosted"),
        ]))
        .expect("detected");
        assert_eq!(ctx.platform, Platform::GithubActions);
        assert_eq!(
            ctx.builder_id,
            "https://github.com/actions/runner/self-hosted"
        );
        assert_eq!(
            ctx.run_url.as_deref(),
            Some("https://github.com/acme/app/actions/runs/42/attempts/2")
        );
        assert_eq!(
            ctx.repository.as_deref(),
            Some("https://github.com/acme/app")
        );
        assert!(!format!("{ctx:?}").contains("ghs_secret"));
    }

    #[test]
    fn gitlab_jenkins_buildkite() {
        let g = detect(&env(&[
            ("GITLAB_CI", "true"),
            ("CI_SERVER_URL", "https://gitlab.example"),
            ("CI_RUNNER_ID", "7"),
            ("CI_COMMIT_REF_NAME", "v1.0"),
            ("CI_COMMIT_TAG", "v1.0"),
        ]))
        .expect("gitlab");
        assert_eq!(g.builder_id, "https://gitlab.example/-/runners/7");
        assert_eq!(g.git_ref.as_deref(), Some("refs/tags/v1.0"));

        let j = detect(&env(&[
            ("JENKINS_URL", "https://ci.example/"),
            ("GIT_COMMIT", "abc"),
        ]))
        .expect("jenkins");
        assert_eq!(j.platform, Platform::Jenkins);
        assert_eq!(j.builder_id, "https://ci.example/");

        let b = detect(&env(&[
            ("BUILDKITE", "true"),
            ("BUILDKITE_ORGANIZATION_SLUG", "acme"),
            ("BUILDKITE_BRANCH", "main"),
        ]))
        .expect("buildkite");
        assert_eq!(b.builder_id, "https://buildkite.com/acme/agents");
        assert_eq!(b.git_ref.as_deref(), Some("refs/heads/main"));
    }

    #[test]
    fn nothing_outside_ci() {
        assert_eq!(
            detect(&env(&[("HOME", "/root"), ("GITHUB_ACTIONS", "false")])),
            None
        );
    }
}
