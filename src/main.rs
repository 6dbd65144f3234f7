//! The `zhishi` command-line tool: one subcommand group per concept (see `src/cli/`).
mod cli;

/// Large tensor buffers are backed by transparent huge pages (see `zhishi::model::allocator`).
#[global_allocator]
static ALLOC: zhishi::model::allocator::HugePageAlloc = zhishi::model::allocator::HugePageAlloc;

fn main() -> std::process::ExitCode {
    zhishi::model::allocator::keep_freed_memory();
    zhishi::model::threads::sleep_idle_workers();
    cli::main()
}
