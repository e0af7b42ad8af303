//! `custody key`: generate, import and inspect keys.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use custody_core::keys::{KeyAlgorithm, PublicKey, SigningKey};
use serde_json::json;

use super::Context;
use crate::cli::{KeyGenerateArgs, KeyImportArgs, KeyInspectArgs};
use crate::files;
use crate::outcome::Outcome;
use crate::password;

fn with_suffix(name: &Path, suffix: &str) -> PathBuf {
    let mut s = name.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Writes NAME.key and NAME.pub, checking both can be written before writing either.
fn write_pair(
    ctx: &Context,
    key: &SigningKey,
    name: &Path,
    force: bool,
    unencrypted: bool,
) -> anyhow::Result<Outcome> {
    let (key_path, pub_path) = (with_suffix(name, ".key"), with_suffix(name, ".pub"));
    files::ensure_absent(&key_path, force)?;
    files::ensure_absent(&pub_path, force)?;
    let private_pem = if unencrypted {
        tracing::warn!(
            "writing {} UNENCRYPTED: anyone who can read it can sign as you",
            key_path.display()
        );
        key.to_unencrypted_pem()?
    } else {
        let pw = password::for_encryption(&key_path.display().to_string())?;
        // Encrypted: safe to hold as a plain String, but keep one type for both arms.
        zeroize::Zeroizing::new(key.to_encrypted_pem(pw.as_bytes())?)
    };
    let public = key.public_key();
    files::write_atomic(&key_path, private_pem.as_bytes(), true)?;
    files::write_atomic(&pub_path, public.to_pem().as_bytes(), false)?;
    let id = public.key_id().to_string();
    ctx.emit(
        &json!({ "ok": true, "privateKey": key_path, "publicKey": pub_path, "keyId": id, "algorithm": key.algorithm().to_string(), "encrypted": !unencrypted }),
        || format!(
            "Wrote {} ({}) and {}\nkey id {}\n",
            key_path.display(),
            if unencrypted { "UNENCRYPTED" } else { "encrypted" },
            pub_path.display(),
            id
        ),
    );
    Ok(Outcome::Done)
}

pub fn generate(ctx: &Context, args: KeyGenerateArgs) -> anyhow::Result<Outcome> {
    let algorithm: KeyAlgorithm = args.algorithm.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let key = SigningKey::generate(algorithm)?;
    write_pair(ctx, &key, &args.name, args.force, args.insecure_unencrypted)
}

pub fn import(ctx: &Context, args: KeyImportArgs) -> anyhow::Result<Outcome> {
    let key = load_signing_key(&args.file)?;
    let name = args.name.unwrap_or_else(|| args.file.with_extension(""));
    write_pair(ctx, &key, &name, args.force, false)
}

/// Loads a private key, asking for the password only when the file is encrypted.
pub fn load_signing_key(path: &Path) -> anyhow::Result<SigningKey> {
    let bytes = files::read(path, "private key")?;
    let password = if SigningKey::is_encrypted_pem(&bytes) {
        Some(password::for_decryption(&path.display().to_string())?)
    } else {
        None
    };
    SigningKey::from_pem(&bytes, password.as_ref().map(|p| p.as_bytes()))
        .with_context(|| format!("private key {}", path.display()))
}

/// Loads a public key PEM.
pub fn load_public_key(path: &Path) -> anyhow::Result<PublicKey> {
    let bytes = files::read(path, "public key")?;
    PublicKey::from_pem(&bytes).with_context(|| format!("public key {}", path.display()))
}

pub fn inspect(ctx: &Context, args: KeyInspectArgs) -> anyhow::Result<Outcome> {
    let bytes = files::read(&args.file, "key")?;
    let public = match PublicKey::from_pem(&bytes) {
        Ok(public) => public,
        Err(_) => load_signing_key(&args.file)?.public_key(),
    };
    let pem = public.to_pem();
    ctx.emit(
        &json!({ "ok": true, "keyId": public.key_id().to_string(), "algorithm": public.algorithm().to_string(), "publicKey": pem }),
        || format!("{} key, id {}\n{}", public.algorithm(), public.key_id(), pem),
    );
    Ok(Outcome::Done)
}
