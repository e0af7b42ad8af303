//! Performing an in-toto step here: record materials, run the command, record products
//! (python in-toto `runlib.in_toto_run`). Used by `custody intoto run` and for inspections.

use std::path::Path;
use std::process::Command;

use custody_core::intoto_legacy::Link;
use custody_core::intoto_legacy::record::{DEFAULT_EXCLUDES, record_artifacts};
use serde_json::json;

/// Records `materials`, runs `command` in `workdir` (if any), records `products`.
///
/// The command's stdout and stderr are captured into the link's byproducts and echoed to our
/// stderr unless `quiet` (our stdout is for custody's own result).
pub fn perform(
    name: &str,
    materials: &[String],
    products: &[String],
    command: &[String],
    workdir: &Path,
    quiet: bool,
) -> anyhow::Result<Link> {
    let mut link = Link::new(name);
    link.materials = record_artifacts(materials, workdir, &DEFAULT_EXCLUDES)
        .map_err(|e| anyhow::anyhow!("recording materials: {e}"))?;
    if let Some((program, args)) = command.split_first() {
        let output = Command::new(program)
            .args(args)
            .current_dir(workdir)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    anyhow::anyhow!("command {program:?} not found (check the name and PATH)")
                }
                _ => anyhow::anyhow!("command {program:?} could not be started: {e}"),
            })?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if !quiet {
            eprint!("{stdout}{stderr}");
        }
        link.command = command.to_vec();
        link.byproducts.insert("stdout".into(), json!(stdout));
        link.byproducts.insert("stderr".into(), json!(stderr));
        link.byproducts
            .insert("return-value".into(), json!(return_value(&output.status)));
    }
    link.products = record_artifacts(products, workdir, &DEFAULT_EXCLUDES)
        .map_err(|e| anyhow::anyhow!("recording products: {e}"))?;
    Ok(link)
}

/// The exit code; a signal is reported as its negated number, as Python's `Popen` does.
fn return_value(status: &std::process::ExitStatus) -> i64 {
    if let Some(code) = status.code() {
        return i64::from(code);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(signal) = status.signal() {
            return -i64::from(signal);
        }
    }
    -1
}
