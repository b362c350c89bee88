//! The `smsgate` binary: parse the command line, run it, turn an error into one line on stderr
//! and an exit code. Everything else lives in the library.

fn main() -> std::process::ExitCode {
    smsgate::cli::main()
}
