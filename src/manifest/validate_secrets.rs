//! Checks of `secrets:`: one source per secret, no name twice, and (over the set) files
//! that can be opened and variables that are set. Values are never read into a message.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::path::Path;

use foldhash::HashMap;

use super::diagnostic::{Code, Diagnostic};
use super::load::{ManifestDoc, describe_io};
use super::validate::base_dir;

pub(super) fn check_secrets(doc: &ManifestDoc, out: &mut Vec<Diagnostic>) {
    let mut seen = BTreeSet::new();
    for (index, secret) in doc.manifest.secrets.iter().enumerate() {
        let pointer = || format!("/secrets/{index}");
        if !seen.insert(secret.name.as_str()) {
            out.push(doc.error_at(
                Code::Invalid,
                &format!("{}/name", pointer()),
                format!("secret \"{}\" is declared twice", secret.name),
            ));
        }
        match (&secret.file, &secret.env) {
            (Some(_), Some(_)) => out.push(
                doc.error_at_key(
                    Code::Invalid,
                    &format!("{}/env", pointer()),
                    format!("secret \"{}\" has both `file` and `env`", secret.name),
                )
                .with_hint("a secret is read from exactly one source"),
            ),
            (None, None) => out.push(
                doc.error_at(
                    Code::Invalid,
                    &pointer(),
                    format!("secret \"{}\" has neither `file` nor `env`", secret.name),
                )
                .with_hint("add `file: <path>` or `env: <VARIABLE>`"),
            ),
            _ => {}
        }
    }
}

/// Whether each secret file can be opened, by (manifest folder, path as written): the
/// folder is made absolute and joined only the first time a pair is seen. The keys are
/// the paths' bytes, which hash faster than components; two spellings of one path only
/// cost a second open.
pub(super) type Readable<'a> = HashMap<(&'a OsStr, &'a OsStr), Result<(), String>>;

pub(super) fn check_secret_sources<'a>(
    doc: &'a ManifestDoc,
    readable: &mut Readable<'a>,
    out: &mut Vec<Diagnostic>,
) {
    let folder = doc.file.parent().unwrap_or(Path::new(""));
    for (index, secret) in doc.manifest.secrets.iter().enumerate() {
        if let Some(file) = &secret.file {
            // Opening proves the secret readable without reading its value.
            let key = (folder.as_os_str(), file.as_os_str());
            let opened = readable.entry(key).or_insert_with(|| {
                open_secret(&base_dir(&doc.file).join(file)).map_err(|err| describe_io(&err))
            });
            if let Err(err) = opened
                && secret.required
            {
                out.push(
                    doc.error_at(
                        Code::Secret,
                        &format!("/secrets/{index}/file"),
                        format!("secret \"{}\": cannot read {}: {err}", secret.name, file.display()),
                    )
                    .with_hint("create the file, fix the path (relative to this manifest's folder) or set `required: false`"),
                );
            }
        }
        if let Some(var) = &secret.env
            && secret.required
            && std::env::var_os(var).is_none()
        {
            out.push(
                doc.error_at(
                    Code::Secret,
                    &format!("/secrets/{index}/env"),
                    format!(
                        "secret \"{}\": variable {var} is not set in herder's environment",
                        secret.name
                    ),
                )
                .with_hint("it must be set when herder starts the child")
                .warning(),
            );
        }
    }
}

/// Opens a secret file for reading (proving it readable) without reading its value.
fn open_secret(path: &Path) -> std::io::Result<()> {
    let file = fs::File::open(path)?;
    if file.metadata()?.is_dir() {
        return Err(std::io::Error::from(std::io::ErrorKind::IsADirectory));
    }
    Ok(())
}
