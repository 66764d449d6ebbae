//! `herder schema`: print the manifest JSON Schema.

use std::io::Write;

use clap::Args;

use super::exit::Exit;
use crate::manifest::schema_text;

/// Arguments of `herder schema`.
#[derive(Debug, Args)]
pub struct SchemaArgs {}

/// Prints the draft-07 schema that `schemas/herder.schema.json` holds.
pub fn run(_args: &SchemaArgs) -> u8 {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(schema_text().as_bytes()) {
        Ok(()) => Exit::OK,
        Err(err) => {
            eprintln!("herder: error: cannot write the schema: {err}");
            Exit::USAGE
        }
    }
}
