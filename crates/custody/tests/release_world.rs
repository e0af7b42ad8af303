//! A release world for the tests that run real processes (`releases.rs`, `release_faults.rs`,
//! each with `mod release_world;`): keys for every principal, a policy, a release config with
//! dev → staging → prod (prod needs two approvals), a `custody serve --release-config` server
//! (restartable on the same data directory), optional `custody deploy --watch` agents, and
//! helpers to build, push, approve and promote.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

#[path = "common.rs"]
pub mod common;
#[path = "logd.rs"]
pub mod logd;
#[path = "../../custody-log/tests/common/pg.rs"]
pub mod pg;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{custody, run};
use custody_core::digest::Sha256Digest;
use logd::Daemon;
use serde_json::{Value, json};

/// Every principal and its roles. Approvers are in the group `release-approvers`.
pub const PEOPLE: [(&str, &str); 7] = [
    ("ci", "builder approver"),
    ("ci2", "builder"),
    ("rm", "release-manager"),
    ("alice", "approver"),
    ("carol", "approver"),
    ("sec", "admin"),
    ("aud", "auditor"),
];

pub const ENVIRONMENTS: [&str; 3] = ["dev", "staging", "prod"];

/// The deploy agent principal of `env` (role deployer, `environments = [env]`): what an
/// agent's token is.
pub fn agent_of(env: &str) -> String {
    format!("agent-{env}")
}

pub fn token(name: &str) -> String {
    format!("token-of-{name}-0123456789")
}

pub fn keygen(dir: &Path, name: &str) {
    common::keygen(dir, name, "ecdsa-p256");
}

pub fn key_id(dir: &Path, public: &str) -> String {
    let (code, out, err) = run(custody(dir).args(["key", "inspect", public, "-o", "json"]));
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    v["keyId"].as_str().unwrap().to_owned()
}

/// A free loopback port (for a server that must come back on the same address).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How to set the world up.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A PostgreSQL URL for the log and the release store; the embedded stores when absent.
    pub database: Option<String>,
    /// Start one `custody deploy --watch` agent per environment (`srv/<env>`).
    pub agents: bool,
    /// Listen on this port (so a restarted server keeps its address); any free port when 0.
    pub port: u16,
    /// Approvers who are in no group (their approvals count for no environment).
    pub outsiders: Vec<&'static str>,
    /// Admission follows releases: the server also runs the policy gate (`--policy policy`,
    /// trusting the CI keys), and namespaces `shop-staging` and `shop-prod` map to staging
    /// and prod (see [`STAGING_NAMESPACE`], [`PROD_NAMESPACE`]).
    pub admission: bool,
}

/// With [`Options::admission`], the namespace mapped to staging.
pub const STAGING_NAMESPACE: &str = "shop-staging";
/// With [`Options::admission`], the namespace mapped to prod.
pub const PROD_NAMESPACE: &str = "shop-prod";

/// Keys, policy, config, a running server and (optionally) its agents, in a kept temporary
/// directory.
pub struct Story {
    pub dir: PathBuf,
    pub server: Daemon,
    pub agents: Vec<Child>,
    /// The server's command line, to start it again on the same data directory.
    pub server_args: Vec<String>,
}

impl Drop for Story {
    fn drop(&mut self) {
        for a in &mut self.agents {
            let _ = a.kill();
            let _ = a.wait();
        }
    }
}

impl Story {
    pub fn d(&self) -> &Path {
        &self.dir
    }

    pub fn url(&self) -> &str {
        &self.server.url
    }

    /// Runs the CLI as `who` against the server.
    pub fn cli(&self, who: &str, args: &[&str]) -> (i32, String, String) {
        self.cli_at(&self.server.url, who, args)
    }

    /// Runs the CLI as `who` against the server at `url`.
    pub fn cli_at(&self, url: &str, who: &str, args: &[&str]) -> (i32, String, String) {
        run(custody(&self.dir)
            .env("CUSTODY_SERVER", url)
            .env("CUSTODY_TOKEN", token(who))
            .args(args))
    }

    pub fn json(&self, who: &str, args: &[&str]) -> Value {
        let mut all = vec!["-o", "json"];
        all.extend_from_slice(args);
        let (code, out, err) = self.cli(who, &all);
        assert_eq!(code, 0, "custody {args:?}: {err}");
        serde_json::from_str(&out).unwrap()
    }

    pub fn current(&self, env: &str) -> Option<String> {
        let target = self.dir.join("srv").join(env).join("current");
        fs::read_link(target)
            .ok()
            .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
    }

    /// Waits until `env`'s agent has activated `digest`; returns how long it took.
    pub fn wait_deployed(&self, env: &str, digest: &Sha256Digest, within: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if self.current(env).as_deref() == Some(digest.hex().as_str()) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < within,
                "{env} did not activate {digest} within {within:?} (current: {:?})",
                self.current(env)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts a server with this world's command line (the first one, or a restart).
    fn start_server(args: &[String]) -> Daemon {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        Daemon::start_with_env(&refs, &[("CUSTODY_PASSWORD", common::PASSWORD)])
    }

    /// Kills the server with SIGKILL (no shutdown of any kind) and waits for it to be gone.
    pub fn kill_server(&mut self) {
        let _ = self.server.child.kill();
        let _ = self.server.child.wait();
    }

    /// Kills the server with SIGKILL and starts it again on the same data directory (and, with
    /// [`Options::port`], the same address).
    pub fn restart_server(&mut self) {
        self.kill_server();
        self.server = Self::start_server(&self.server_args);
    }

    /// A second server on the same PostgreSQL database, with the same log key (copied from
    /// the first one's data directory), release config and release key, and its own data
    /// directory `name` (so its own artifact and evidence stores).
    pub fn replica(&self, name: &str) -> Daemon {
        assert!(
            self.server_args.iter().any(|a| a == "--database"),
            "a replica needs a shared PostgreSQL database"
        );
        let data_dir = self.dir.join(name);
        fs::create_dir_all(&data_dir).unwrap();
        for file in ["log.skey", "log.json", "log.vkey"] {
            fs::copy(self.dir.join("server").join(file), data_dir.join(file)).unwrap();
        }
        let mut args = self.server_args.clone();
        let at = args.iter().position(|a| a == "--data-dir").unwrap();
        args[at + 1] = data_dir.to_string_lossy().into_owned();
        let at = args.iter().position(|a| a == "--listen").unwrap();
        args[at + 1] = "127.0.0.1:0".into();
        Self::start_server(&args)
    }

    /// Starts a `custody deploy --watch` agent for `env` (target `srv/<env>`, state
    /// `state/<env>`, log `agent-<env>.log`).
    pub fn start_agent(&mut self, env: &str) {
        let target = format!("dir:{}", self.d().join("srv").join(env).display());
        let child = Command::new(assert_cmd::cargo::cargo_bin("custody"))
            .current_dir(self.d())
            .env("CUSTODY_PASSWORD", common::PASSWORD)
            .env("CUSTODY_TOKEN", token(&agent_of(env)))
            .env("RUST_LOG", "info")
            .args([
                "deploy",
                env,
                "--server",
                &self.server.url,
                "--target",
                &target,
                "--release-key",
                "keys/release.pub",
                "--watch",
                "--interval",
                "1s",
                "--agent-name",
                &format!("agent-{env}"),
                "--state",
                &self.d().join("state").join(env).to_string_lossy(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                fs::File::create(self.d().join(format!("agent-{env}.log"))).unwrap(),
            ))
            .spawn()
            .unwrap();
        self.agents.push(child);
    }

    /// An HTTP GET of a release API path as `who`: (status, JSON body).
    pub fn get(&self, who: &str, path: &str) -> (u16, Value) {
        http(&self.server.url, "GET", path, who, None)
    }

    /// An HTTP POST of a JSON body to a release API path as `who`: (status, JSON body).
    pub fn post(&self, who: &str, path: &str, body: &[u8]) -> (u16, Value) {
        http(&self.server.url, "POST", path, who, Some(body))
    }

    /// `env`'s release history, oldest first.
    pub fn history(&self, env: &str) -> Value {
        let (status, v) = self.get("aud", &format!("/api/v1/environments/{env}/releases"));
        assert_eq!(status, 200, "{v}");
        v
    }
}

/// One HTTP call to `base`: (status, body as JSON, or as a JSON string when it is not JSON).
pub fn http(base: &str, method: &str, path: &str, who: &str, body: Option<&[u8]>) -> (u16, Value) {
    let (status, text) = try_http(base, method, path, who, body)
        .unwrap_or_else(|e| panic!("{method} {base}{path}: {e}"));
    (status, text)
}

/// [`http`] that returns transport errors (connection refused or reset) instead of panicking.
pub fn try_http(
    base: &str,
    method: &str,
    path: &str,
    who: &str,
    body: Option<&[u8]>,
) -> Result<(u16, Value), ureq::Error> {
    try_http_bearer(base, method, path, &token(who), body)
}

/// [`try_http`] with `bearer` as the token itself (e.g. the log's write token).
pub fn try_http_bearer(
    base: &str,
    method: &str,
    path: &str,
    bearer: &str,
    body: Option<&[u8]>,
) -> Result<(u16, Value), ureq::Error> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let url = format!("{base}{path}");
    let auth = format!("Bearer {bearer}");
    let mut response = match (method, body) {
        ("GET", _) => agent.get(&url).header("Authorization", &auth).call()?,
        (_, body) => agent
            .post(&url)
            .header("Authorization", &auth)
            .header("Content-Type", "application/json")
            .send(body.unwrap_or_default())?,
    };
    let status = response.status().as_u16();
    let bytes = response
        .body_mut()
        .with_config()
        .limit(1 << 26)
        .read_to_vec()?;
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Ok((status, value))
}

/// The release key and every principal's key pair (a key takes a while to encrypt), made once
/// by each build of the custody binary and kept in the target's scratch directory; each world
/// copies them.
fn key_template() -> &'static Path {
    static KEYS: OnceLock<PathBuf> = OnceLock::new();
    KEYS.get_or_init(|| {
        let bin = fs::metadata(assert_cmd::cargo::cargo_bin("custody")).unwrap();
        let built = bin
            .modified()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let scratch = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let dir = scratch.join(format!(
            "release-world-keys-{}-{}",
            built.as_nanos(),
            bin.len()
        ));
        if dir.is_dir() {
            return dir;
        }
        let fresh = tempfile::Builder::new()
            .prefix(".release-world-keys-")
            .tempdir_in(scratch)
            .unwrap();
        keygen(fresh.path(), "release");
        for (name, _) in PEOPLE {
            keygen(fresh.path(), name);
        }
        // Another test process may have made them meanwhile: either set will do.
        if fs::rename(fresh.path(), &dir).is_ok() {
            let _ = fresh.keep();
        }
        dir
    })
}

/// The world of `releases.rs`: embedded stores or `database`, with agents.
pub fn setup(database: Option<&str>) -> Story {
    setup_with(&Options {
        database: database.map(str::to_owned),
        agents: true,
        ..Options::default()
    })
}

pub fn setup_with(options: &Options) -> Story {
    let tmp = tempfile::tempdir().unwrap().keep();
    let d = tmp.as_path();
    fs::create_dir_all(d.join("keys")).unwrap();
    for entry in fs::read_dir(key_template()).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_file() {
            continue;
        }
        fs::copy(&path, d.join("keys").join(path.file_name().unwrap())).unwrap();
    }
    let people: Vec<(&str, &str)> = PEOPLE
        .iter()
        .copied()
        .chain(options.outsiders.iter().map(|n| (*n, "approver")))
        .collect();
    for name in &options.outsiders {
        keygen(&d.join("keys"), name);
    }
    let ci = key_id(d, "keys/ci.pub");
    let ci2 = key_id(d, "keys/ci2.pub");
    let (code, _, err) = run(custody(d).args(["policy", "init", "policy", "--trust-key-id", &ci]));
    assert_eq!(code, 0, "{err}");
    let mut data: Value =
        serde_json::from_slice(&fs::read(d.join("policy/data.json")).unwrap()).unwrap();
    data["custody"]["config"]["signers"]["keys"] = json!([ci, ci2]);
    data["custody"]["config"]["provenance"]["clean"] = json!(false);
    data["custody"]["config"]["deny_rejected"] = json!(false);
    fs::write(d.join("policy/data.json"), data.to_string()).unwrap();

    let mut config = String::from(
        r#"
[[environment]]
name = "dev"
policy = "policy"
stage = "development"
target = "dir:srv/dev"

[[environment]]
name = "staging"
from = "dev"
policy = "policy"
stage = "release-candidate"
target = "dir:srv/staging"

[[environment]]
name = "prod"
from = "staging"
policy = "policy"
stage = "production"
target = "dir:srv/prod"
approvals = { required = 2, group = "release-approvers", max_age = "1d" }
"#,
    );
    if options.admission {
        config = config
            .replace(
                "stage = \"release-candidate\"\n",
                &format!("stage = \"release-candidate\"\nnamespaces = [{STAGING_NAMESPACE:?}]\n"),
            )
            .replace(
                "stage = \"production\"\n",
                &format!("stage = \"production\"\nnamespaces = [{PROD_NAMESPACE:?}]\n"),
            );
    }
    for (name, roles) in &people {
        let roles: Vec<String> = roles.split(' ').map(|r| format!("{r:?}")).collect();
        let groups =
            if roles.iter().any(|r| r == "\"approver\"") && !options.outsiders.contains(name) {
                r#"["release-approvers"]"#
            } else {
                "[]"
            };
        config.push_str(&format!(
            "\n[[principal]]\nname = {name:?}\ntoken_sha256 = {:?}\nroles = [{}]\ngroups = {groups}\nkeys = [\"keys/{name}.pub\"]\n",
            Sha256Digest::of(token(name).as_bytes()).hex(),
            roles.join(", "),
        ));
    }
    // One deploy agent principal per environment: it reports for that environment only.
    for env in ENVIRONMENTS {
        config.push_str(&format!(
            "\n[[principal]]\nname = {:?}\ntoken_sha256 = {:?}\nroles = [\"deployer\"]\nenvironments = [{env:?}]\n",
            agent_of(env),
            Sha256Digest::of(token(&agent_of(env)).as_bytes()).hex(),
        ));
    }
    fs::write(d.join("release.toml"), config).unwrap();
    fs::write(d.join("write.token"), logd::TOKEN).unwrap();
    let data_dir = d.join("server");
    let mut args = vec![
        "serve".to_owned(),
        "--listen".into(),
        format!("127.0.0.1:{}", options.port),
        "--data-dir".into(),
        data_dir.to_string_lossy().into_owned(),
        "--write-token-file".into(),
        d.join("write.token").to_string_lossy().into_owned(),
        "--release-config".into(),
        d.join("release.toml").to_string_lossy().into_owned(),
        "--release-key".into(),
        d.join("keys/release.key").to_string_lossy().into_owned(),
    ];
    if let Some(url) = &options.database {
        args.push("--database".into());
        args.push(url.clone());
    }
    if options.admission {
        for arg in [
            "--policy",
            "policy",
            "--gate-key",
            "keys/ci.pub",
            "--gate-key",
            "keys/ci2.pub",
        ] {
            let arg = match arg {
                "policy" | "keys/ci.pub" | "keys/ci2.pub" => {
                    d.join(arg).to_string_lossy().into_owned()
                }
                flag => flag.to_owned(),
            };
            args.push(arg);
        }
    }
    let server = Story::start_server(&args);
    let mut story = Story {
        dir: tmp,
        server,
        agents: Vec::new(),
        server_args: args,
    };
    if options.agents {
        for env in ENVIRONMENTS {
            story.start_agent(env);
        }
    }
    story
}

/// Builds release `n` with `key` (provenance signed by it) in `r<n>/app.bin`.
pub fn build(s: &Story, n: u32, key: &str) -> PathBuf {
    let proj = s.d().join(format!("r{n}"));
    fs::create_dir_all(&proj).unwrap();
    let key_path = s.d().join("keys").join(format!("{key}.key"));
    let (code, _, err) = run(custody(&proj).args([
        "build",
        "--key",
        key_path.to_str().unwrap(),
        "--artifacts",
        "app.bin",
        "--",
        "sh",
        "-c",
        &format!("echo release {n} > app.bin"),
    ]));
    assert_eq!(code, 0, "{err}");
    proj.join("app.bin")
}

/// Pushes a built artifact and its evidence as `who` to the server at `url`.
pub fn push_to(s: &Story, url: &str, artifact: &Path, who: &str) -> Sha256Digest {
    let (code, out, err) = s.cli_at(
        url,
        who,
        &["-o", "json", "push", artifact.to_str().unwrap()],
    );
    assert_eq!(code, 0, "custody push: {err}");
    let pushed: Value = serde_json::from_str(&out).unwrap();
    let digest: Sha256Digest = pushed["digest"].as_str().unwrap().parse().unwrap();
    assert_eq!(digest, Sha256Digest::of(&fs::read(artifact).unwrap()));
    assert_eq!(pushed["evidence"].as_array().unwrap().len(), 1, "{pushed}");
    digest
}

/// Builds release `n` with `key` (provenance signed by it) and pushes it with its evidence.
pub fn build_and_push(s: &Story, n: u32, key: &str, who: &str) -> Sha256Digest {
    let artifact = build(s, n, key);
    push_to(s, &s.server.url, &artifact, who)
}

/// `custody approve DIGEST --env prod` as `who`, with `who`'s key.
pub fn approve(s: &Story, who: &str, digest: &Sha256Digest) -> (i32, String, String) {
    let key = s.d().join("keys").join(format!("{who}.key"));
    s.cli(
        who,
        &[
            "approve",
            &digest.to_string(),
            "--env",
            "prod",
            "--key",
            key.to_str().unwrap(),
        ],
    )
}

/// Builds, pushes and promotes release `n` through dev and staging, approves it twice and
/// promotes it to prod.
pub fn release(s: &Story, n: u32, key: &str) -> Sha256Digest {
    let digest = build_and_push(s, n, key, key);
    let d = digest.to_string();
    for env in ["dev", "staging"] {
        let r = s.json("rm", &["promote", &d, "--to", env]);
        assert_eq!(r["kind"], "promotion");
    }
    let (code, _, err) = approve(s, "alice", &digest);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = approve(s, "carol", &digest);
    assert_eq!(code, 0, "{err}");
    let r = s.json("rm", &["promote", &d, "--to", "prod"]);
    assert_eq!(r["environment"], "prod");
    digest
}
