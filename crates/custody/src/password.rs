//! Passwords for encrypted private keys: `CUSTODY_PASSWORD`, else a prompt on the terminal.

use std::io::IsTerminal as _;

use zeroize::Zeroizing;

/// The password to decrypt an existing key.
pub fn for_decryption(what: &str) -> anyhow::Result<Zeroizing<String>> {
    if let Ok(pw) = std::env::var("CUSTODY_PASSWORD") {
        return Ok(Zeroizing::new(pw));
    }
    prompt(&format!("Password for {what}: "))
}

/// The password to encrypt a new key, asked twice on a terminal.
pub fn for_encryption(what: &str) -> anyhow::Result<Zeroizing<String>> {
    if let Ok(pw) = std::env::var("CUSTODY_PASSWORD") {
        return Ok(Zeroizing::new(pw));
    }
    let first = prompt(&format!("Password for {what}: "))?;
    let second = prompt("Again: ")?;
    if *first != *second {
        anyhow::bail!("the two passwords differ: nothing was written");
    }
    Ok(first)
}

fn prompt(text: &str) -> anyhow::Result<Zeroizing<String>> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "a password is needed and there is no terminal to ask on: set CUSTODY_PASSWORD"
        );
    }
    Ok(Zeroizing::new(rpassword::prompt_password(text)?))
}
