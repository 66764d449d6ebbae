//! `.env` and `env_file` files, parsed by `dotenvy` (quotes, escapes, `export`, comments,
//! `${VAR}` from earlier lines). Errors give the line, never its text: it may hold a secret.

use std::path::Path;

use super::ImportError;
use crate::convert::note::Note;
use crate::manifest::Location;

/// Most variables one file may define.
pub const MAX_VARIABLES: usize = 10_000;

/// The variables of `file` in order, or `None` when it does not exist.
pub fn read(file: &Path) -> Result<Option<Vec<(String, String)>>, ImportError> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => {
            return Err(error(
                file,
                Location::START,
                format!("cannot read: {}", crate::manifest::load::describe_io(&err)),
            ));
        }
    };
    parse(file, &text).map(Some)
}

/// The variables of `text` (the contents of `file`), in order.
pub fn parse(file: &Path, text: &str) -> Result<Vec<(String, String)>, ImportError> {
    let mut vars = Vec::new();
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok(pair) => {
                if vars.len() == MAX_VARIABLES {
                    return Err(error(
                        file,
                        Location::START,
                        format!("more than {MAX_VARIABLES} variables"),
                    ));
                }
                vars.push(pair);
            }
            Err(dotenvy::Error::LineParse(line, column)) => {
                let number = text
                    .lines()
                    .position(|l| l.trim_end() == line.trim_end() || l.contains(line.as_str()))
                    .map_or(1, |i| i + 1);
                let location = Location {
                    line: u32::try_from(number).unwrap_or(u32::MAX),
                    column: u32::try_from(column + 1).unwrap_or(u32::MAX),
                    length: 1,
                };
                return Err(error(
                    file,
                    location,
                    "malformed line (expected KEY=value)".into(),
                ));
            }
            Err(err) => return Err(error(file, Location::START, format!("cannot read: {err}"))),
        }
    }
    Ok(vars)
}

fn error(file: &Path, location: Location, message: String) -> ImportError {
    ImportError {
        file: file.to_path_buf(),
        notes: vec![Note::new(file, location, "", message)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quotes_comments_and_references() {
        let text = "# c\nA=1\nexport B='two words'\nC=\"${A}x\"\n\nD=\n";
        let vars = parse(Path::new(".env"), text).unwrap_or_default();
        assert_eq!(
            vars,
            [("A", "1"), ("B", "two words"), ("C", "1x"), ("D", "")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn a_bad_line_is_located_without_its_text() {
        let err = parse(Path::new(".env"), "A=1\nB='secret-ish\n").err();
        let note = err.map(|e| e.notes[0].clone());
        assert_eq!(note.as_ref().map(|n| n.location.line), Some(2));
        assert!(note.is_some_and(|n| !n.message.contains("secret")));
    }
}
