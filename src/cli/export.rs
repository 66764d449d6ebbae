//! `herder export kubernetes [DIR]`: the Kubernetes objects that run a manifest directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::exit::Exit;
use super::validate::write_human;
use super::{color_enabled, print_error};
use crate::convert::kubernetes::{
    self, DEFAULT_KUBECTL_IMAGE, DEFAULT_NAMESPACE, DEFAULT_WAIT_IMAGE, ExportError, KEY_ORDER,
    Options,
};
use crate::convert::names::to_label_value;
use crate::convert::yaml;
use crate::manifest::{Report, load_paths};

/// Arguments of `herder export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// What to export to.
    #[command(subcommand)]
    pub target: ExportTarget,
}

/// The formats `herder export` writes.
#[derive(Debug, Subcommand)]
pub enum ExportTarget {
    /// Kubernetes objects (Deployments, Jobs, Services, RBAC) as multi-document YAML.
    Kubernetes(KubernetesArgs),
}

/// Arguments of `herder export kubernetes`.
#[derive(Debug, Args)]
pub struct KubernetesArgs {
    /// The manifest directory.
    #[arg(default_value = "herder.d")]
    pub dir: PathBuf,
    /// Container image of children without `export.kubernetes.image`.
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// Namespace of every object.
    #[arg(long, value_name = "NS", default_value = DEFAULT_NAMESPACE)]
    pub namespace: String,
    /// `-` for stdout, or a directory to write one `<child>.yaml` per manifest into.
    #[arg(long, short, value_name = "PATH|-", default_value = "-")]
    pub output: PathBuf,
    /// The `app.kubernetes.io/instance` label (default: the directory's name, or its parent's for `herder.d`).
    #[arg(long, value_name = "NAME")]
    pub instance: Option<String>,
    /// Image of the init containers that wait for a Service port (needs `sh` and `nc`).
    #[arg(long, value_name = "IMAGE", default_value = DEFAULT_WAIT_IMAGE)]
    pub wait_image: String,
    /// Image of the init containers that wait with `kubectl wait` (for Jobs and pods).
    #[arg(long, value_name = "IMAGE", default_value = DEFAULT_KUBECTL_IMAGE)]
    pub kubectl_image: String,
}

/// Runs `herder export`.
pub fn run(args: &ExportArgs) -> u8 {
    match &args.target {
        ExportTarget::Kubernetes(args) => run_kubernetes(args),
    }
}

fn run_kubernetes(args: &KubernetesArgs) -> u8 {
    let loaded = match load_paths(std::slice::from_ref(&args.dir)) {
        Ok(loaded) => loaded,
        Err(err) => {
            print_error(&err);
            return Exit::USAGE;
        }
    };
    if loaded.has_errors() {
        let report = Report::new(
            loaded.files.len(),
            loaded.docs().count(),
            loaded.diagnostics.clone(),
        );
        let _ = write_human(&report, color_enabled(&std::io::stderr()));
        eprintln!("herder: error: the directory is not valid: nothing exported");
        return Exit::INVALID;
    }
    let instance = match &args.instance {
        Some(instance) => instance.clone(),
        None => default_instance(&args.dir),
    };
    if !crate::convert::names::is_label_value(&instance) || instance.is_empty() {
        eprintln!("herder: error: --instance {instance:?} is not a valid Kubernetes label value");
        return Exit::USAGE;
    }
    if !crate::convert::names::is_dns1123_label(&args.namespace) {
        eprintln!(
            "herder: error: --namespace {:?} is not a DNS-1123 label",
            args.namespace
        );
        return Exit::USAGE;
    }
    let options = Options {
        image: args.image.clone(),
        namespace: args.namespace.clone(),
        instance,
        wait_image: args.wait_image.clone(),
        kubectl_image: args.kubectl_image.clone(),
    };
    let docs: Vec<_> = loaded.docs().collect();
    let export = match kubernetes::export(&docs, &options) {
        Ok(export) => export,
        Err(err) => {
            if let ExportError::NoImage(notes) = &err {
                for note in notes {
                    eprintln!("{}", note.summary("error"));
                }
            }
            print_error(&err);
            return Exit::INVALID;
        }
    };
    for warning in &export.warnings {
        eprintln!("{}", warning.summary("warning"));
    }
    if !export.secret_commands.is_empty() {
        eprintln!(
            "# Create the Secrets the objects reference (values come from these files and variables; none is in the export):"
        );
        for command in &export.secret_commands {
            eprintln!("{command}");
        }
    }
    let written = if args.output.as_os_str() == "-" {
        let objects: Vec<_> = export.objects().cloned().collect();
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(yaml::documents(&objects, KEY_ORDER).as_bytes())
            .and_then(|()| stdout.flush())
    } else {
        write_dir(&args.output, &export)
    };
    if let Err(err) = written {
        print_error(&err);
        return Exit::USAGE;
    }
    eprintln!(
        "herder: exported {} manifest{} ({} object{}), {} warning{}",
        export.children.len(),
        plural(export.children.len()),
        export.objects().count(),
        plural(export.objects().count()),
        export.warnings.len(),
        plural(export.warnings.len()),
    );
    Exit::OK
}

/// One `<child>.yaml` per manifest in `dir`, each replaced whole (written beside, then
/// renamed), so a reader never sees half a file.
fn write_dir(dir: &Path, export: &kubernetes::Export) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for child in &export.children {
        let path = dir.join(format!("{}.yaml", child.name));
        let temporary = dir.join(format!(".{}.yaml.tmp", child.name));
        std::fs::write(&temporary, yaml::documents(&child.objects, KEY_ORDER))?;
        std::fs::rename(&temporary, &path)?;
    }
    Ok(())
}

/// The directory's name as a label value; for a directory named `herder.d`, its parent's.
fn default_instance(dir: &Path) -> String {
    let real = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let name = |path: &Path| {
        path.file_name()
            .map(|n| to_label_value(&n.to_string_lossy()))
            .unwrap_or_default()
    };
    let own = name(&real);
    let chosen = if own == "herder.d" {
        real.parent().map(name).unwrap_or_default()
    } else {
        own
    };
    if chosen.is_empty() {
        "herder".to_owned()
    } else {
        chosen
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
