//! A log file rotated by size: `name.log`, then `name.log.1` … `name.log.<keep>` (oldest last).
//!
//! The file is opened lazily on the first write, so a child that never prints holds no descriptor.
//! [`RotatingFile::write_lines`] rotates between lines, so no file grows past `max_size` by more than
//! one line (a line is at most 16 KiB plus its stamp). A write that fails (`ENOSPC`, `EIO`) is undone
//! by truncating the file back to its last whole line, and the file is reopened at the next write;
//! a file whose directory entry vanished (the log directory was removed) is noticed within
//! [`CHECK_EVERY`] and created again.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often an open log file is checked to still be the file at its path.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Rotation parameters (`logs` of a manifest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Rotate before a write would make the file larger than this many bytes.
    pub max_size: u64,
    /// Rotated files kept besides the current one (0: the file is truncated instead).
    pub keep: u32,
}

impl Default for Rotation {
    fn default() -> Self {
        Self {
            max_size: 10 << 20,
            keep: 3,
        }
    }
}

/// The current log file of one child.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    rotation: Rotation,
    /// The (device, inode) opened, and when it was last checked against the path.
    identity: (u64, u64),
    checked: Option<Instant>,
}

impl RotatingFile {
    /// A file at `path`, not opened yet.
    pub fn new(path: PathBuf, rotation: Rotation) -> Self {
        Self {
            path,
            file: None,
            size: 0,
            rotation,
            identity: (0, 0),
            checked: None,
        }
    }

    /// The path of the current file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Changes the rotation parameters; they apply from the next write.
    pub fn set_rotation(&mut self, rotation: Rotation) {
        self.rotation = rotation;
    }

    /// Appends `bytes`, a run of whole `\n`-terminated lines, rotating between two lines
    /// whenever the next one would make the file larger than `max_size`. Returns how many
    /// lines could not be written (all from the first failure on) with the error.
    pub fn write_lines(&mut self, bytes: &[u8]) -> Result<(), (u64, io::Error)> {
        let lost = |rest: &[u8]| rest.iter().filter(|&&b| b == b'\n').count().max(1) as u64;
        if let Err(e) = self.prepare() {
            return Err((lost(bytes), e));
        }
        let mut rest = bytes;
        while !rest.is_empty() {
            let room = self.rotation.max_size.saturating_sub(self.size);
            let take = fitting(rest, room);
            if take == 0 {
                if self.size > 0 {
                    if let Err(e) = self.rotate() {
                        return Err((lost(rest), e));
                    }
                    continue;
                }
                // One line longer than `max_size`: it gets a file of its own.
                let line = rest
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(rest.len(), |i| i + 1);
                if let Err(e) = self.append(&rest[..line]) {
                    return Err((lost(rest), e));
                }
                rest = &rest[line..];
                continue;
            }
            if let Err(e) = self.append(&rest[..take]) {
                return Err((lost(rest), e));
            }
            rest = &rest[take..];
        }
        Ok(())
    }

    /// Opens the file if it is not open, or again if its path no longer leads to it.
    fn prepare(&mut self) -> io::Result<()> {
        let due = self.checked.is_none_or(|at| at.elapsed() >= CHECK_EVERY);
        if self.file.is_some() && due {
            self.checked = Some(Instant::now());
            let same = fs::metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.identity);
            if !same {
                self.file = None;
            }
        }
        if self.file.is_none() {
            self.open()?;
        }
        Ok(())
    }

    /// Writes `bytes` at the end; on failure truncates the file back to where it was, so
    /// that no partial line stays behind, and closes it (the next write reopens it).
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let Some(file) = self.file.as_mut() else {
            return Err(io::Error::other("log file not open"));
        };
        match file.write_all(bytes) {
            Ok(()) => {
                self.size += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Best effort: a disk that refused the data may refuse the truncate too.
                let _ = file.set_len(self.size);
                self.file = None;
                Err(e)
            }
        }
    }

    fn open(&mut self) -> io::Result<()> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let meta = file.metadata()?;
        self.size = meta.len();
        self.identity = (meta.dev(), meta.ino());
        self.checked = Some(Instant::now());
        self.file = Some(file);
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        let keep = self.rotation.keep;
        if keep == 0 {
            fs::remove_file(&self.path).or_else(ignore_missing)?;
        } else {
            fs::remove_file(numbered(&self.path, keep)).or_else(ignore_missing)?;
            for i in (1..keep).rev() {
                fs::rename(numbered(&self.path, i), numbered(&self.path, i + 1))
                    .or_else(ignore_missing)?;
            }
            fs::rename(&self.path, numbered(&self.path, 1)).or_else(ignore_missing)?;
        }
        self.open()
    }
}

/// How many bytes of `lines` (whole lines) fit into `room` bytes.
fn fitting(lines: &[u8], room: u64) -> usize {
    let room = usize::try_from(room).unwrap_or(usize::MAX);
    if lines.len() <= room {
        return lines.len();
    }
    lines[..room]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1)
}

fn numbered(path: &Path, i: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

fn ignore_missing(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_and_keeps_n() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("logs/a.log");
        let mut f = RotatingFile::new(
            path.clone(),
            Rotation {
                max_size: 10,
                keep: 2,
            },
        );
        for line in ["aaaaaa\n", "bbbbbb\n", "cccccc\n", "dddddd\n"] {
            f.write_lines(line.as_bytes()).expect("write");
        }
        assert_eq!(fs::read_to_string(&path).expect("current"), "dddddd\n");
        assert_eq!(
            fs::read_to_string(numbered(&path, 1)).expect(".1"),
            "cccccc\n"
        );
        assert_eq!(
            fs::read_to_string(numbered(&path, 2)).expect(".2"),
            "bbbbbb\n"
        );
        assert!(!numbered(&path, 3).exists());
    }

    #[test]
    fn batches_rotate_between_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.log");
        let mut f = RotatingFile::new(
            path.clone(),
            Rotation {
                max_size: 10,
                keep: 3,
            },
        );
        f.write_lines(b"aaaa\nbbbb\ncccc\ndddddddddddddd\ne\n")
            .expect("write");
        assert_eq!(fs::read_to_string(&path).expect("current"), "e\n");
        assert_eq!(
            fs::read_to_string(numbered(&path, 1)).expect(".1"),
            "dddddddddddddd\n",
            "a line longer than max_size gets a file of its own"
        );
        assert_eq!(
            fs::read_to_string(numbered(&path, 2)).expect(".2"),
            "cccc\n"
        );
        assert_eq!(
            fs::read_to_string(numbered(&path, 3)).expect(".3"),
            "aaaa\nbbbb\n"
        );
    }

    #[test]
    fn a_vanished_directory_is_created_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("logs/d.log");
        let mut f = RotatingFile::new(path.clone(), Rotation::default());
        f.write_lines(b"one\n").expect("write");
        fs::remove_dir_all(dir.path().join("logs")).expect("remove");
        f.checked = None;
        f.write_lines(b"two\n")
            .expect("write after the directory vanished");
        assert_eq!(fs::read_to_string(&path).expect("recreated"), "two\n");
    }

    #[test]
    fn keep_zero_truncates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("b.log");
        let mut f = RotatingFile::new(
            path.clone(),
            Rotation {
                max_size: 8,
                keep: 0,
            },
        );
        f.write_lines(b"1234567\n").expect("write");
        f.write_lines(b"abc\n").expect("write");
        assert_eq!(fs::read_to_string(&path).expect("current"), "abc\n");
        assert!(!numbered(&path, 1).exists());
    }
}
