//! Loading a policy directory into regorus, evaluating it, and running its tests.
//!
//! A policy is every `*.rego` file under a directory (recursively, sorted by path) plus the
//! `data.json` files there (merged into `data` at their directory's path, as `opa` does), plus
//! custody's built-in library (`data.custody.lib`). Its identity is [`Policy::digest`]: the
//! SHA-256 over every file's path and bytes and the built-in library's text, so a change to any
//! rule, datum or to custody's library changes it.
//!
//! Everything that can be wrong with a policy is found at load: syntax, a missing
//! `data.custody.gate.deny`, and evaluation errors (undefined functions, type errors in rule
//! heads) found by a dry run over every rule with a sample input. An admission never meets a
//! policy that does not compile.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use custody_core::digest::Sha256Digest;
use regorus::rvm::Program;
use regorus::rvm::vm::{RegoVM, VmError};
use regorus::{CompiledPolicy, Engine, LimitError, Value};
use serde_json::{Map, Value as Json};

use crate::PolicyError;
use crate::limit::{POLICY_TIMEOUT, TimeLimit, TimedOut};
use crate::verdict::{Finding, Location};

/// The package every gate policy defines: `deny` (required), `warn` and `allow_unpinned`
/// (optional).
pub const GATE_PACKAGE: &str = "custody.gate";
const DENY_RULE: &str = "data.custody.gate.deny";
const WARN_RULE: &str = "data.custody.gate.warn";
const UNPINNED_RULE: &str = "data.custody.gate.allow_unpinned";

/// custody's built-in Rego library, `data.custody.lib`.
pub const LIB_REGO: &str = include_str!("../rego/lib.rego");
/// The built-in library's own tests.
pub const LIB_TEST_REGO: &str = include_str!("../rego/lib_test.rego");
/// The name the built-in library's file has in errors and findings.
pub const LIB_PATH: &str = "<builtin>/custody/lib.rego";
const LIB_TEST_PATH: &str = "<builtin>/custody/lib_test.rego";

/// One policy file as loaded.
#[derive(Debug, Clone)]
pub struct PolicyFile {
    /// The path as shown to users (the directory given, joined with the file's relative path).
    pub path: String,
    pub text: String,
}

/// A loaded, compiled policy: cheap to share between threads ([`Arc`] inside). Every
/// evaluation is bounded by its [`TimeLimit`].
#[derive(Clone)]
pub struct Policy {
    inner: Arc<Inner>,
    limit: TimeLimit,
    /// Only for measuring what the limit costs ([`Policy::dangerously_without_time_limit`]).
    unlimited: bool,
}

struct Inner {
    dir: PathBuf,
    digest: Sha256Digest,
    files: Vec<PolicyFile>,
    engine: Engine,
    warn: Option<CompiledPolicy>,
    allow_unpinned: Option<CompiledPolicy>,
    /// The same entry points compiled to regorus's register VM (about 5x faster than the
    /// interpreter); `None` when a policy uses something the VM compiler does not support or
    /// the two disagreed on the load-time sample, in which case the interpreter is used.
    rvm: Option<Rvm>,
    /// Every string literal that looks like a code (`kebab-case`) → where it first appears;
    /// user files first, the built-in library last.
    code_sites: HashMap<String, Location>,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("dir", &self.inner.dir)
            .field("digest", &self.inner.digest)
            .field("time_limit", &self.limit)
            .finish()
    }
}

/// What one evaluation returned, before it is tied to an artifact.
#[derive(Debug, Default)]
pub struct Evaluation {
    pub denies: Vec<Finding>,
    pub warnings: Vec<Finding>,
    /// Set when the evaluation was stopped at the time limit: `denies` is then the one
    /// `policy-timeout` finding (fail closed) and `warnings` is empty.
    pub timed_out: Option<TimedOut>,
}

/// Why an evaluation produced no value.
#[derive(Debug)]
enum Stopped {
    /// regorus's timer stopped it at the limit.
    TimedOut(TimedOut),
    /// Any other evaluation error (one line).
    Error(String),
}

impl Stopped {
    /// Reads a regorus interpreter error: a `TimeLimitExceeded` anywhere in its chain is a
    /// timeout.
    fn interpreter<E>(rule: &str, limit: TimeLimit, e: &E) -> Stopped
    where
        E: AsRef<dyn std::error::Error + Send + Sync + 'static> + std::fmt::Display,
    {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e.as_ref());
        while let Some(c) = cause {
            if let Some(LimitError::TimeLimitExceeded { elapsed, .. }) =
                c.downcast_ref::<LimitError>()
            {
                return Stopped::TimedOut(TimedOut {
                    rule: rule.to_owned(),
                    limit,
                    elapsed: *elapsed,
                });
            }
            cause = c.source();
        }
        // Some interpreter paths (a `with`, a function call) pass the error on as text:
        // regorus's LimitError reads "execution exceeded time limit (…)".
        let text = one_line(&e.to_string());
        if text.contains("exceeded time limit") {
            return Stopped::TimedOut(TimedOut {
                rule: rule.to_owned(),
                limit,
                elapsed: limit.duration(),
            });
        }
        Stopped::Error(text)
    }

    fn vm(rule: &str, limit: TimeLimit, e: &VmError) -> Stopped {
        match e {
            VmError::TimeLimitExceeded { elapsed, .. } => Stopped::TimedOut(TimedOut {
                rule: rule.to_owned(),
                limit,
                elapsed: *elapsed,
            }),
            other => Stopped::Error(one_line(&other.to_string())),
        }
    }

    fn into_policy_error(self, policy: &Policy, what: &str) -> PolicyError {
        match self {
            Stopped::TimedOut(timed_out) => PolicyError::Timeout {
                dir: policy.dir().display().to_string(),
                what: what.to_owned(),
                timed_out,
            },
            Stopped::Error(error) => PolicyError::Eval { error },
        }
    }
}

/// The time left of an evaluation's budget, which started at `started`.
fn remaining(
    limit: TimeLimit,
    started: Instant,
    rule: &str,
) -> Result<std::time::Duration, Stopped> {
    let elapsed = started.elapsed();
    limit
        .duration()
        .checked_sub(elapsed)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            Stopped::TimedOut(TimedOut {
                rule: rule.to_owned(),
                limit,
                elapsed,
            })
        })
}

impl Policy {
    /// Loads every `*.rego` and `data.json` under `dir`, with the default time limit.
    pub fn load(dir: &Path) -> Result<Policy, PolicyError> {
        Self::load_limited(dir, TimeLimit::DEFAULT)
    }

    /// Loads every `*.rego` and `data.json` under `dir`; every evaluation, including the
    /// load-time dry run, is bounded by `limit`.
    pub fn load_limited(dir: &Path, limit: TimeLimit) -> Result<Policy, PolicyError> {
        let mut rego = Vec::new();
        let mut data = Vec::new();
        collect(dir, dir, &mut rego, &mut data)?;
        rego.sort();
        data.sort();
        if rego.is_empty() {
            return Err(PolicyError::Empty {
                dir: dir.display().to_string(),
            });
        }
        let mut files = Vec::new();
        for path in &rego {
            let text = std::fs::read_to_string(path).map_err(|e| PolicyError::Read {
                path: path.display().to_string(),
                error: e.to_string(),
            })?;
            files.push(PolicyFile {
                path: path.display().to_string(),
                text,
            });
        }
        let mut data_docs = Vec::new();
        for path in &data {
            let bytes = std::fs::read(path).map_err(|e| PolicyError::Read {
                path: path.display().to_string(),
                error: e.to_string(),
            })?;
            let value: Json = serde_json::from_slice(&bytes).map_err(|e| PolicyError::Data {
                path: path.display().to_string(),
                error: e.to_string(),
            })?;
            let rel = path
                .parent()
                .and_then(|p| p.strip_prefix(dir).ok())
                .map(Path::to_path_buf)
                .unwrap_or_default();
            data_docs.push((path.display().to_string(), rel, bytes, value));
        }
        Self::build(dir, files, data_docs, limit)
    }

    /// A policy from in-memory files (tests, the server's embedded default), with the default
    /// time limit.
    pub fn from_files(files: Vec<PolicyFile>, data: Json) -> Result<Policy, PolicyError> {
        Self::from_files_limited(files, data, TimeLimit::DEFAULT)
    }

    /// [`Policy::from_files`] with a time limit.
    pub fn from_files_limited(
        files: Vec<PolicyFile>,
        data: Json,
        limit: TimeLimit,
    ) -> Result<Policy, PolicyError> {
        let bytes = serde_json::to_vec(&data).unwrap_or_default();
        Self::build(
            Path::new("<memory>"),
            files,
            vec![("<memory>/data.json".into(), PathBuf::new(), bytes, data)],
            limit,
        )
    }

    fn build(
        dir: &Path,
        files: Vec<PolicyFile>,
        data_docs: Vec<(String, PathBuf, Vec<u8>, Json)>,
        limit: TimeLimit,
    ) -> Result<Policy, PolicyError> {
        let mut hasher = DigestWriter::default();
        hasher.part(b"custody-policy-v1");
        hasher.part(LIB_REGO.as_bytes());
        let mut engine = Engine::new();
        engine.set_rego_v0(false);
        // Every clone (load-time probes, the dry run, tests) starts with the limit.
        engine.set_execution_timer_config(TimeLimit::timer(limit.duration()));
        engine
            .add_policy(LIB_PATH.into(), LIB_REGO.into())
            .map_err(|e| PolicyError::Compile {
                error: one_line(&e.to_string()),
            })?;
        for f in &files {
            hasher.part(f.path.as_bytes());
            hasher.part(f.text.as_bytes());
            engine
                .add_policy(f.path.clone(), f.text.clone())
                .map_err(|e| PolicyError::Compile {
                    error: one_line(&e.to_string()),
                })?;
        }
        for (path, rel, bytes, value) in data_docs {
            hasher.part(path.as_bytes());
            hasher.part(&bytes);
            let mut nested = value;
            for comp in rel.components().rev() {
                let mut m = Map::new();
                m.insert(comp.as_os_str().to_string_lossy().into_owned(), nested);
                nested = Json::Object(m);
            }
            if !nested.is_object() {
                return Err(PolicyError::Data {
                    path,
                    error: "a data document must be a JSON object".into(),
                });
            }
            engine
                .add_data(Value::from(nested))
                .map_err(|e| PolicyError::Data {
                    path,
                    error: one_line(&e.to_string()),
                })?;
        }
        resolve_config(&mut engine)?;
        let compile = |engine: &mut Engine, rule: &str| {
            engine
                .compile_with_entrypoint(&rule.into())
                .map_err(|e| one_line(&e.to_string()))
        };
        let declared = |engine: &Engine, rule: &str| {
            let name = rule.rsplit('.').next().unwrap_or(rule);
            files.iter().any(|f| {
                declares_package(&f.text, GATE_PACKAGE) && declares_rule(&f.text, name).is_some()
            }) && engine.get_packages().is_ok()
        };
        if !declared(&engine, DENY_RULE) {
            return Err(PolicyError::NoDenyRule {
                dir: dir.display().to_string(),
            });
        }
        let deny =
            compile(&mut engine, DENY_RULE).map_err(|error| PolicyError::Compile { error })?;
        let warn = if declared(&engine, WARN_RULE) {
            Some(compile(&mut engine, WARN_RULE).map_err(|error| PolicyError::Compile { error })?)
        } else {
            None
        };
        let allow_unpinned = if declared(&engine, UNPINNED_RULE) {
            Some(
                compile(&mut engine, UNPINNED_RULE)
                    .map_err(|error| PolicyError::Compile { error })?,
            )
        } else {
            None
        };
        let mut code_sites = HashMap::new();
        // Tests mention codes too; a finding points at the rule, never at a test.
        for f in files.iter().filter(|f| !f.path.ends_with("_test.rego")) {
            index_codes(&f.path, &f.text, &mut code_sites);
        }
        index_codes(LIB_PATH, LIB_REGO, &mut code_sites);
        let data = engine.get_data();
        let rvm = Rvm::new(&deny, warn.as_ref(), data);
        let mut policy = Policy {
            limit,
            unlimited: false,
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                digest: hasher.finish(),
                files,
                engine,
                warn,
                allow_unpinned,
                rvm: None,
                code_sites,
            }),
        };
        policy.dry_run()?;
        // The VM is used only if it gives the interpreter's answer on the sample inputs: a
        // full one and a sparse one (no stage, no evidence), whose missing fields exercise the
        // paths where the VM is known to differ (a complete rule whose `x := <undefined>`
        // should fall through to `else`).
        if let Some(rvm) = rvm {
            let agrees = [SAMPLE_INPUT, SPARSE_SAMPLE_INPUT].iter().all(|text| {
                let sample = Value::from(serde_json::from_str::<Json>(text).unwrap_or(Json::Null));
                let interpreted = policy.interpret(sample.clone());
                let compiled = rvm.eval_all(sample, limit);
                matches!((&interpreted, &compiled), (Ok(a), Ok(b)) if a == b)
            });
            if agrees {
                if let Some(inner) = Arc::get_mut(&mut policy.inner) {
                    inner.rvm = Some(rvm);
                }
            } else {
                tracing::warn!(policy = %dir.display(), "regorus's VM disagrees with its interpreter on a sample input; evaluating with the interpreter");
            }
        }
        Ok(policy)
    }

    /// Evaluates every rule once over a sample input: errors that regorus only finds while
    /// evaluating (an undefined function, a bad builtin call) surface at load.
    /// A rule that runs out of time on the sample is a load error ([`PolicyError::Timeout`]):
    /// it would be cut on every real input too.
    fn dry_run(&self) -> Result<(), PolicyError> {
        let sample: Json = serde_json::from_str(SAMPLE_INPUT).unwrap_or(Json::Null);
        let mut engine = self.inner.engine.clone();
        engine.set_input(Value::from(sample.clone()));
        engine.eval_modules(false).map_err(|e| {
            match Stopped::interpreter("every rule", self.limit, &e) {
                Stopped::Error(error) => PolicyError::Compile { error },
                stopped => stopped.into_policy_error(self, "the dry run over a sample input"),
            }
        })?;
        match self.eval_rules(Value::from(sample)) {
            Ok(_) => Ok(()),
            Err(Stopped::Error(error)) => Err(PolicyError::Compile { error }),
            Err(stopped) => Err(stopped.into_policy_error(self, "the dry run over a sample input")),
        }
    }

    /// The limit every evaluation of this policy runs under.
    pub fn time_limit(&self) -> TimeLimit {
        self.limit
    }

    /// The same policy with no time limit on `deny`/`warn` on the VM: for measuring what the
    /// limit costs (`cargo bench -p custody-policy --bench eval`), never for deciding.
    #[doc(hidden)]
    pub fn dangerously_without_time_limit(&self) -> Policy {
        Policy {
            unlimited: true,
            ..self.clone()
        }
    }

    /// The policy's identity: `sha256:` over every file and the built-in library.
    pub fn digest(&self) -> Sha256Digest {
        self.inner.digest
    }

    /// The directory the policy was loaded from.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The policy's files (not the built-in library).
    pub fn files(&self) -> &[PolicyFile] {
        &self.inner.files
    }

    /// Evaluates `deny` and `warn` over an input document.
    pub fn evaluate(&self, input: &Json) -> Result<Evaluation, PolicyError> {
        self.evaluate_value(Value::from(input.clone()))
    }

    /// [`Policy::evaluate`] over an input already converted to a regorus value. An evaluation
    /// stopped at the time limit is a deny (`policy-timeout`), with `timed_out` set.
    pub fn evaluate_value(&self, input: Value) -> Result<Evaluation, PolicyError> {
        match self.eval_rules(input) {
            Ok((denies, warnings)) => Ok(Evaluation {
                denies: self.findings(&denies),
                warnings: self.findings(&warnings),
                timed_out: None,
            }),
            Err(Stopped::TimedOut(t)) => {
                tracing::warn!(policy = %self.dir().display(), rule = %t.rule, limit = %t.limit, "policy evaluation stopped at the time limit");
                Ok(Evaluation {
                    denies: vec![self.timeout_finding(&t)],
                    warnings: Vec::new(),
                    timed_out: Some(t),
                })
            }
            Err(Stopped::Error(error)) => Err(PolicyError::Eval { error }),
        }
    }

    /// The `policy-timeout` deny for this policy.
    pub fn timeout_finding(&self, timed_out: &TimedOut) -> Finding {
        timed_out.finding(
            &self.dir().display().to_string(),
            &self.digest().to_string(),
        )
    }

    /// `deny` and `warn` on the VM (else the interpreter), within one time budget.
    fn eval_rules(&self, input: Value) -> Result<(Value, Value), Stopped> {
        match &self.inner.rvm {
            Some(rvm) if self.unlimited => rvm.eval_unlimited(input),
            Some(rvm) => rvm.eval_all(input, self.limit),
            None => self.interpret(input),
        }
    }

    /// Whether evaluations run on regorus's compiled VM (else its interpreter).
    pub fn uses_vm(&self) -> bool {
        self.inner.rvm.is_some()
    }

    /// `deny` and `warn` by the tree-walking interpreter (the reference the VM is checked
    /// against), within the time limit; a timeout is an error here.
    pub fn eval_interpreter(&self, input: Value) -> Result<(Value, Value), String> {
        self.interpret(input).map_err(|stopped| match stopped {
            Stopped::Error(e) => e,
            Stopped::TimedOut(t) => {
                format!("{} stopped at the policy time limit of {}", t.rule, t.limit)
            }
        })
    }

    fn interpret(&self, input: Value) -> Result<(Value, Value), Stopped> {
        let started = Instant::now();
        let denies = self.interpret_rule(DENY_RULE, input.clone(), started)?;
        let warnings = match &self.inner.warn {
            Some(_) => self.interpret_rule(WARN_RULE, input, started)?,
            None => Value::Undefined,
        };
        Ok((denies, warnings))
    }

    /// One rule on a clone of the loaded engine, with the budget left since `started`.
    /// (regorus's `CompiledPolicy::eval_with_input` takes only the process-wide timer.)
    fn interpret_rule(&self, rule: &str, input: Value, started: Instant) -> Result<Value, Stopped> {
        let budget = remaining(self.limit, started, rule)?;
        let mut engine = self.inner.engine.clone();
        engine.set_execution_timer_config(TimeLimit::timer(budget));
        engine.set_input(input);
        engine
            .eval_rule(rule.to_owned())
            .map_err(|e| Stopped::interpreter(rule, self.limit, &e))
    }

    /// Whether the policy lets an image that is not pinned by digest through
    /// (`data.custody.gate.allow_unpinned` true for this input). False when undefined;
    /// [`PolicyError::Timeout`] when stopped at the time limit.
    pub fn allows_unpinned(&self, input: &Json) -> Result<bool, PolicyError> {
        if self.inner.allow_unpinned.is_none() {
            return Ok(false);
        }
        let v = self
            .interpret_rule(UNPINNED_RULE, Value::from(input.clone()), Instant::now())
            .map_err(|stopped| stopped.into_policy_error(self, "an evaluation"))?;
        Ok(v == Value::Bool(true))
    }

    fn findings(&self, value: &Value) -> Vec<Finding> {
        let items: Vec<Json> = match serde_json::to_value(value) {
            Ok(Json::Array(items)) => items,
            Ok(Json::String(s)) if s == "<undefined>" => Vec::new(),
            Ok(Json::Null) => Vec::new(),
            Ok(other) => vec![other],
            Err(_) => Vec::new(),
        };
        let mut findings: Vec<Finding> = items
            .into_iter()
            .map(|item| {
                let mut f = Finding::from_rego(item);
                f.location = self.inner.code_sites.get(&f.code).cloned();
                f
            })
            .collect();
        findings.sort_by(|a, b| a.code.cmp(&b.code).then(a.message.cmp(&b.message)));
        findings
    }

    /// Runs every `test_*` rule in the policy's files (`opa test`): a test passes when it
    /// evaluates to `true`. `filter` keeps tests whose full name contains it.
    pub fn run_tests(&self, filter: Option<&str>) -> Vec<TestResult> {
        run_tests_in(&self.inner.engine, &self.inner.files, filter, self.limit)
    }

    /// Runs the built-in library's own tests.
    pub fn run_library_tests() -> Result<Vec<TestResult>, PolicyError> {
        let mut engine = Engine::new();
        engine.set_rego_v0(false);
        engine.set_execution_timer_config(TimeLimit::timer(TimeLimit::DEFAULT.duration()));
        for (path, text) in [(LIB_PATH, LIB_REGO), (LIB_TEST_PATH, LIB_TEST_REGO)] {
            engine
                .add_policy(path.into(), text.into())
                .map_err(|e| PolicyError::Compile {
                    error: one_line(&e.to_string()),
                })?;
        }
        let files = vec![PolicyFile {
            path: LIB_TEST_PATH.into(),
            text: LIB_TEST_REGO.into(),
        }];
        Ok(run_tests_in(&engine, &files, None, TimeLimit::DEFAULT))
    }
}

/// The policy's entry points compiled for regorus's register VM, each with its own pool of
/// loaded VMs (a VM is single-threaded; an evaluation takes one, sets the input, runs, and
/// gives it back: the program and data are loaded once per VM, not per evaluation).
struct Rvm {
    deny: VmPool,
    warn: Option<VmPool>,
}

struct VmPool {
    compiled: CompiledPolicy,
    program: Arc<Program>,
    rule: &'static str,
    data: Value,
    idle: std::sync::Mutex<Vec<RegoVM>>,
}

impl VmPool {
    fn new(compiled: &CompiledPolicy, rule: &'static str, data: &Value) -> Option<VmPool> {
        use regorus::languages::rego::compiler::Compiler;
        Some(VmPool {
            program: Compiler::compile_from_policy(compiled, &[rule]).ok()?,
            compiled: compiled.clone(),
            rule,
            data: data.clone(),
            idle: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Runs the entry point with `budget` on regorus's timer (`limit` is what a timeout
    /// reports).
    fn eval(
        &self,
        input: Value,
        budget: Option<Duration>,
        limit: TimeLimit,
    ) -> Result<Value, Stopped> {
        let pooled = self.idle.lock().ok().and_then(|mut p| p.pop());
        let mut vm = match pooled {
            Some(vm) => vm,
            None => {
                let mut vm = RegoVM::new_with_policy(self.compiled.clone());
                vm.load_program(self.program.clone());
                vm.set_data(self.data.clone())
                    .map_err(|e| Stopped::Error(one_line(&e.to_string())))?;
                // The time budget is the one bound: regorus's default cap of 25,000
                // instructions stops a long evaluation with a generic error (a 500 at
                // evaluate) whatever its duration, instead of the policy-timeout deny.
                vm.set_max_instructions(usize::MAX);
                vm
            }
        };
        let timer = budget.map(TimeLimit::timer);
        if vm.execution_timer_config() != timer {
            vm.set_execution_timer_config(timer);
        }
        vm.set_input(input);
        let result = vm
            .execute_entry_point_by_name(self.rule)
            .map_err(|e| Stopped::vm(self.rule, limit, &e));
        if result.is_ok() {
            if let Ok(mut p) = self.idle.lock() {
                if p.len() < 64 {
                    p.push(vm);
                }
            }
        }
        result
    }
}

impl Rvm {
    fn new(deny: &CompiledPolicy, warn: Option<&CompiledPolicy>, data: Value) -> Option<Rvm> {
        Some(Rvm {
            deny: VmPool::new(deny, DENY_RULE, &data)?,
            warn: match warn {
                Some(w) => Some(VmPool::new(w, WARN_RULE, &data)?),
                None => None,
            },
        })
    }

    /// `deny`, then `warn` with what is left of the one budget.
    fn eval_all(&self, input: Value, limit: TimeLimit) -> Result<(Value, Value), Stopped> {
        let started = Instant::now();
        let denies = self
            .deny
            .eval(input.clone(), Some(limit.duration()), limit)?;
        let warnings = match &self.warn {
            Some(w) => w.eval(input, Some(remaining(limit, started, WARN_RULE)?), limit)?,
            None => Value::Undefined,
        };
        Ok((denies, warnings))
    }

    /// [`Rvm::eval_all`] with no timer (measurement only).
    fn eval_unlimited(&self, input: Value) -> Result<(Value, Value), Stopped> {
        let denies = self.deny.eval(input.clone(), None, TimeLimit::DEFAULT)?;
        let warnings = match &self.warn {
            Some(w) => w.eval(input, None, TimeLimit::DEFAULT)?,
            None => Value::Undefined,
        };
        Ok((denies, warnings))
    }
}

/// How one `test_` rule went.
#[derive(Debug, Clone)]
pub struct TestResult {
    /// `data.<package>.<rule>`
    pub name: String,
    pub location: Location,
    pub outcome: TestOutcome,
    pub duration: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestOutcome {
    Pass,
    /// Evaluated to false or undefined.
    Fail,
    /// Evaluation raised an error.
    Error(String),
}

fn run_tests_in(
    engine: &Engine,
    files: &[PolicyFile],
    filter: Option<&str>,
    limit: TimeLimit,
) -> Vec<TestResult> {
    let mut results = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for f in files {
        let Some(package) = package_of(&f.text) else {
            continue;
        };
        for (line, rule) in test_rules(&f.text) {
            let name = format!("data.{package}.{rule}");
            if filter.is_some_and(|flt| !name.contains(flt)) || !seen.insert(name.clone()) {
                continue;
            }
            let mut e = engine.clone();
            let started = Instant::now();
            let outcome = match e.eval_rule(name.clone()) {
                Ok(Value::Bool(true)) => TestOutcome::Pass,
                Ok(_) => TestOutcome::Fail,
                Err(err) => match Stopped::interpreter(&name, limit, &err) {
                    Stopped::Error(e) => TestOutcome::Error(e),
                    Stopped::TimedOut(t) => TestOutcome::Error(format!(
                        "{POLICY_TIMEOUT}: stopped at the policy time limit of {} (simplify the test or the rules it calls, or raise --policy-timeout)",
                        t.limit
                    )),
                },
            };
            results.push(TestResult {
                name,
                location: Location {
                    file: f.path.clone(),
                    line,
                },
                outcome,
                duration: started.elapsed(),
            });
        }
    }
    results
}

fn compile_error(e: impl std::fmt::Display) -> PolicyError {
    PolicyError::Compile {
        error: one_line(&e.to_string()),
    }
}

/// Precomputes `data.custody.lib.compiled_merged_config` (the merged configuration plus its
/// lookup sets) for the base and for every stage named in `data.custody.config.stages` into
/// `data.custody.resolved`, so an evaluation reads it instead of deep-merging three objects
/// and building sets every time. The values stay regorus values (sets survive; JSON has none).
fn resolve_config(engine: &mut Engine) -> Result<(), PolicyError> {
    let mut probe = engine.clone();
    let user = probe
        .eval_rule("data.custody.lib.user_config".into())
        .map_err(compile_error)?;
    let user_json = serde_json::to_value(&user).unwrap_or(Json::Null);
    let mut stages: Vec<String> = user_json
        .get("stages")
        .and_then(Json::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    stages.sort();
    let compiled = |stage: &str| -> Result<Value, PolicyError> {
        let mut e = engine.clone();
        e.set_input(Value::from(
            serde_json::json!({"environment": {"stage": stage}}),
        ));
        e.eval_rule("data.custody.lib.compiled_merged_config".into())
            .map_err(compile_error)
    };
    let mut per_stage = Value::new_object();
    for stage in &stages {
        per_stage
            .as_object_mut()
            .map_err(compile_error)?
            .insert(Value::from(stage.as_str()), compiled(stage)?);
    }
    let mut resolved = Value::new_object();
    {
        let r = resolved.as_object_mut().map_err(compile_error)?;
        r.insert(Value::from("source"), user);
        r.insert(Value::from("base"), compiled("")?);
        r.insert(Value::from("stages"), per_stage);
    }
    let mut custody = Value::new_object();
    {
        let c = custody.as_object_mut().map_err(compile_error)?;
        c.insert(Value::from("resolved"), resolved);
        // data.custody.config always exists (an empty object merges into a present one as a
        // no-op), so the library compares it with `resolved.source` directly.
        c.insert(Value::from("config"), Value::new_object());
    }
    let mut root = Value::new_object();
    root.as_object_mut()
        .map_err(compile_error)?
        .insert(Value::from("custody"), custody);
    engine.add_data(root).map_err(compile_error)
}

/// A sparse input: no stage, no evidence, nothing optional (see `Policy::build`).
const SPARSE_SAMPLE_INPUT: &str = r#"{
  "artifact": {"digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000", "name": "sample"},
  "environment": {"name": "sample"},
  "time": "2026-01-01T00:00:00Z",
  "evidence": [],
  "rejected": []
}"#;

/// A representative input for the load-time dry run (see `docs/policy-input.md`).
const SAMPLE_INPUT: &str = r#"{
  "artifact": {"digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000", "name": "sample", "image": null,
    "revoked": {"id": 2, "target": "digest:sha256:0000000000000000000000000000000000000000000000000000000000000000", "reason": "sample"}},
  "environment": {"name": "sample", "stage": "production",
    "approvals": {"required": 2, "group": "sample", "members": ["sample", "approver"], "max_age_seconds": 86400}},
  "promotion": {"requested_by": "promoter", "from": null},
  "release": {"environment": "sample", "current": {"seq": 3, "digest": "sha256:0000000000000000000000000000000000000000000000000000000000000001"},
    "allow_previous": 1,
    "candidate": {"digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000", "is_current": false,
      "release_seq": 1, "releases_behind": 2,
      "quarantine": {"revocation_id": 2, "target": "key:02", "reason": "sample", "at": "2026-01-01T00:00:00Z"},
      "approvals": {"required": 2, "group": "sample", "approved_by": ["approver"]}}},
  "time": "2026-01-01T00:00:00Z",
  "evidence": [{
    "source": "sample.sigstore.json",
    "bundle_digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000",
    "kind": "attestation",
    "predicate_type": "https://slsa.dev/provenance/v1",
    "statement": {"_type": "https://in-toto.io/Statement/v1", "subject": [], "predicateType": "https://slsa.dev/provenance/v1",
      "predicate": {"buildDefinition": {"buildType": "x", "externalParameters": {}, "resolvedDependencies": []},
                    "runDetails": {"builder": {"id": "x"}, "metadata": {"finishedOn": "2026-01-01T00:00:00Z"}}}},
    "signer": {"kind": "key", "label": "00", "key_id": "00", "algorithm": "ecdsa-p256", "key_bits": 256, "identity": null, "issuer": null, "claims": {}, "principal": "sample"},
    "tlog": [{"log_id": "00", "log_index": 0, "integrated_time": null}],
    "logged": true,
    "times": []
  }, {
    "source": "approval.sigstore.json",
    "bundle_digest": "sha256:0000000000000000000000000000000000000000000000000000000000000001",
    "kind": "attestation",
    "predicate_type": "https://custody.dev/approval/v1",
    "statement": {"_type": "https://in-toto.io/Statement/v1", "subject": [], "predicateType": "https://custody.dev/approval/v1",
      "predicate": {"environment": "sample", "approver": "approver", "approvedAt": "2025-12-31T00:00:00Z", "comment": null}},
    "signer": {"kind": "key", "label": "01", "key_id": "01", "algorithm": "ecdsa-p256", "key_bits": 256, "identity": null, "issuer": null, "claims": {}, "principal": "approver"},
    "tlog": [{"log_id": "00", "log_index": 1, "integrated_time": "2025-12-30T00:00:00Z"}],
    "logged": true,
    "times": []
  }],
  "rejected": [{"source": "bad.sigstore.json", "code": "signature-invalid", "reason": "sample"},
    {"source": "revoked.sigstore.json", "code": "revoked", "reason": "sample", "signer": "02",
     "revocation": {"id": 1, "target": "key:02", "reason": "sample"}},
    {"source": "retired.sigstore.json", "code": "key.retired", "reason": "sample", "signer": "03",
     "retirement": {"key_id": "03", "cut": 7, "successor": "04", "reason": "sample"}}]
}"#;

#[derive(Default)]
struct DigestWriter {
    bytes: Vec<u8>,
}

impl DigestWriter {
    fn part(&mut self, data: &[u8]) {
        self.bytes
            .extend_from_slice(&(data.len() as u64).to_be_bytes());
        self.bytes.extend_from_slice(data);
    }
    fn finish(self) -> Sha256Digest {
        Sha256Digest::of(&self.bytes)
    }
}

fn collect(
    root: &Path,
    dir: &Path,
    rego: &mut Vec<PathBuf>,
    data: &mut Vec<PathBuf>,
) -> Result<(), PolicyError> {
    let entries = std::fs::read_dir(dir).map_err(|e| PolicyError::Read {
        path: dir.display().to_string(),
        error: e.to_string(),
    })?;
    for entry in entries {
        let entry = entry.map_err(|e| PolicyError::Read {
            path: dir.display().to_string(),
            error: e.to_string(),
        })?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let meta = std::fs::metadata(&path).map_err(|e| PolicyError::Read {
            path: path.display().to_string(),
            error: e.to_string(),
        })?;
        if meta.is_dir() {
            collect(root, &path, rego, data)?;
        } else if name.ends_with(".rego") {
            rego.push(path);
        } else if name == "data.json" {
            data.push(path);
        }
    }
    let _ = root;
    Ok(())
}

/// regorus errors span several lines (`--> file:line:col`, the source line, the message):
/// fold them into one.
pub(crate) fn one_line(text: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(loc) = line.strip_prefix("--> ") {
            parts.push(loc.to_string());
        } else if is_source_echo(line) {
            continue;
        } else {
            parts.push(line.to_string());
        }
    }
    parts.join(": ")
}

/// The source line and caret marker regorus echoes under an error location.
fn is_source_echo(line: &str) -> bool {
    let numbered = line.contains(" | ")
        && line
            .split(" | ")
            .next()
            .is_some_and(|n| n.trim().chars().all(|c| c.is_ascii_digit()));
    numbered || line.chars().all(|c| c == '^' || c == ' ' || c == '|')
}

fn package_of(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let l = l.trim();
        l.strip_prefix("package ")
            .map(|p| p.split_whitespace().next().unwrap_or("").to_string())
    })
}

fn declares_package(text: &str, package: &str) -> bool {
    package_of(text).as_deref() == Some(package)
}

/// The line (1-based) where a top-level rule `name` is declared.
fn declares_rule(text: &str, name: &str) -> Option<u32> {
    text.lines().enumerate().find_map(|(i, l)| {
        let rest = l.strip_prefix(name)?;
        let next = rest.chars().next()?;
        (next == ' ' || next == '[' || next == '(' || next == '{' || next == ':' || next == '=')
            .then_some(i as u32 + 1)
    })
}

/// Top-level `test_*` rules and their lines.
fn test_rules(text: &str) -> Vec<(u32, String)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            if !l.starts_with("test_") {
                return None;
            }
            let name: String = l
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            Some((i as u32 + 1, name))
        })
        .collect()
}

fn index_codes(path: &str, text: &str, sites: &mut HashMap<String, Location>) {
    for (i, line) in text.lines().enumerate() {
        let code_part = line.split('#').next().unwrap_or("");
        let mut rest = code_part;
        while let Some(start) = rest.find('"') {
            let after = &rest[start + 1..];
            let Some(end) = after.find('"') else { break };
            let lit = &after[..end];
            let looks_like_code = lit.len() >= 3
                && lit.contains('-')
                && lit
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && lit.starts_with(|c: char| c.is_ascii_lowercase());
            if looks_like_code {
                sites.entry(lit.to_string()).or_insert(Location {
                    file: path.to_string(),
                    line: i as u32 + 1,
                });
            }
            rest = &after[end + 1..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_folds_regorus_errors() {
        let e = "\n--> bad.rego:5:1\n5 | }\n  | ^\nerror: expecting expression";
        assert_eq!(one_line(e), "bad.rego:5:1: error: expecting expression");
    }

    #[test]
    fn finds_tests_and_rules() {
        let text = "package a.b\n\ntest_one if true\n  test_indented if true\ntest_two if {\n}\n";
        assert_eq!(package_of(text).as_deref(), Some("a.b"));
        let t = test_rules(text);
        assert_eq!(t, vec![(3, "test_one".into()), (5, "test_two".into())]);
        assert_eq!(declares_rule(text, "test_two"), Some(5));
        assert_eq!(declares_rule(text, "test_tw"), None);
    }

    #[test]
    fn codes_are_indexed_at_their_first_line() {
        let mut sites = HashMap::new();
        index_codes(
            "p.rego",
            "x := 1\ny := {\"code\": \"not-signed\"} # \"ignored-code\"\n",
            &mut sites,
        );
        assert_eq!(sites.get("not-signed").map(|l| l.line), Some(2));
        assert!(!sites.contains_key("ignored-code"));
        assert!(!sites.contains_key("code"));
    }
}

#[cfg(test)]
mod vm_tests {
    use super::*;

    #[test]
    fn policies_are_shared_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Policy>();
    }
}
