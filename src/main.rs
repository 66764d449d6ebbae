//! The `herder` binary: everything lives in the library.

fn main() -> std::process::ExitCode {
    herder::cli::run()
}
