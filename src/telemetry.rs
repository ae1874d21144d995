//! Logging setup. Values never reach a log line: they live in types whose `Debug` is redacted, and no code logs
//! request or response bodies.

use tracing_subscriber::EnvFilter;

/// `json` for machines, `text` for people.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

/// Crates whose debug and trace lines quote what a store answered or what was sent to it (bollard logs each
/// answer's body at debug and each request's, values included, at trace): held at `info` whatever `RUST_LOG` says.
const QUOTING_CRATES: &[&str] = &["bollard"];

/// `directives` (`RUST_LOG`'s syntax), with [`QUOTING_CRATES`] held at `info`: a directive naming one of them or
/// a module of one is dropped (a more specific target would win over the cap).
pub fn env_filter(directives: &str) -> EnvFilter {
    let names_quoting_crate = |directive: &str| {
        QUOTING_CRATES.iter().any(|krate| {
            directive
                .trim()
                .strip_prefix(krate)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '=', '[']))
        })
    };
    let kept: Vec<&str> = directives
        .split(',')
        .filter(|d| !names_quoting_crate(d))
        .collect();
    QUOTING_CRATES
        .iter()
        .fold(EnvFilter::new(kept.join(",")), |filter, krate| {
            filter.add_directive(format!("{krate}=info").parse().expect("a valid directive"))
        })
}

/// Installs the global subscriber; `RUST_LOG` overrides the default `info` level, except for
/// [`QUOTING_CRATES`].
pub fn init(format: LogFormat) {
    let directives = std::env::var(EnvFilter::DEFAULT_ENV).unwrap_or_else(|_| "info".to_owned());
    let filter = env_filter(&directives);
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

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn crates_that_quote_answers_stay_at_info_whatever_rust_log_says() {
        for directives in [
            "trace",
            "debug,bollard=trace",
            "bollard=trace",
            "bollard::docker=trace",
            " bollard::docker[x]=trace,info",
        ] {
            let subscriber = tracing_subscriber::registry().with(env_filter(directives));
            tracing::subscriber::with_default(subscriber, || {
                assert!(
                    !tracing::enabled!(target: "bollard::docker", tracing::Level::DEBUG),
                    "{directives}"
                );
                assert!(tracing::enabled!(target: "bollard::docker", tracing::Level::INFO));
            });
        }
        let subscriber = tracing_subscriber::registry().with(env_filter("trace"));
        tracing::subscriber::with_default(subscriber, || {
            assert!(tracing::enabled!(target: "secretsync::dialects", tracing::Level::TRACE));
        });
    }
}
