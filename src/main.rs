//! The `zhishi` command-line tool: one subcommand group per concept (see `src/cli/`).
mod cli;

fn main() -> std::process::ExitCode {
    zhishi::train::allocator::keep_freed_memory();
    cli::main()
}
