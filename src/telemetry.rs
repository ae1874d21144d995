//! Logging setup. Values never reach a log line: they live in types whose `Debug` is redacted, and no code logs
//! request or response bodies.

use tracing_subscriber::EnvFilter;

/// `json` for machines, `text` for people.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

/// Installs the global subscriber; `RUST_LOG` overrides the default `info` level.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
        LogFormat::Text => builder.init(),
    }
}

/// Replaces the default panic output (which prints the panic's message, formatted from whatever the failing code
/// held) with one log record: where it happened, and the message only when it was written into the code as a
/// literal. A reconcile's panic is caught and reported on its object; this is what the log keeps of it.
pub fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&'static str>()
            .copied()
            .unwrap_or("(formatted message withheld)");
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(%location, panic = message, "panic");
    }));
}
