//! A log file rotated by size: `name.log`, then `name.log.1` … `name.log.<keep>` (oldest last).
//!
//! The file is opened lazily on the first write, so a child that never prints holds no descriptor.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

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
}

impl RotatingFile {
    /// A file at `path`, not opened yet.
    pub fn new(path: PathBuf, rotation: Rotation) -> Self {
        Self {
            path,
            file: None,
            size: 0,
            rotation,
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

    /// Appends `bytes` (whole lines), rotating first if they would not fit.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            self.open()?;
        }
        if self.size > 0 && self.size + bytes.len() as u64 > self.rotation.max_size {
            self.rotate()?;
        }
        match self.file.as_mut() {
            Some(f) => {
                f.write_all(bytes)?;
                self.size += bytes.len() as u64;
                Ok(())
            }
            None => Err(io::Error::other("log file not open")),
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
        self.size = file.metadata()?.len();
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
            f.write(line.as_bytes()).expect("write");
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
        f.write(b"1234567\n").expect("write");
        f.write(b"abc\n").expect("write");
        assert_eq!(fs::read_to_string(&path).expect("current"), "abc\n");
        assert!(!numbered(&path, 1).exists());
    }
}
