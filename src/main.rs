//! `secretsync`: the controller (`run`) and the CRD printer (`crd`).
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube_lease_manager::LeaseManagerBuilder;

use secretsync::controller::{self, digest_key};
use secretsync::dialects::{Registry, Shared};
use secretsync::metrics::Metrics;
use secretsync::telemetry::{self, LogFormat};

#[derive(Parser)]
#[command(
    name = "secretsync",
    version,
    about = "Keeps Kubernetes Secrets in step with external secret stores"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller.
    Run(RunArgs),
    /// Print the SecretSync CustomResourceDefinition as YAML.
    Crd,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Kubeconfig file; without it the in-cluster configuration (or $KUBECONFIG) is used.
    #[arg(long, env = "SECRETSYNC_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Namespace to watch (repeatable); none means every namespace.
    #[arg(
        long = "namespace",
        env = "SECRETSYNC_NAMESPACES",
        value_delimiter = ','
    )]
    namespaces: Vec<String>,
    /// Reconciles running at once.
    #[arg(long, env = "SECRETSYNC_CONCURRENCY", default_value_t = 8)]
    concurrency: u16,
    /// Requests per second to each store endpoint (token bucket).
    #[arg(long, env = "SECRETSYNC_BACKEND_RATE", default_value_t = 20)]
    backend_rate: u32,
    /// Burst size of each endpoint's token bucket.
    #[arg(long, env = "SECRETSYNC_BACKEND_BURST", default_value_t = 40)]
    backend_burst: u32,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "SECRETSYNC_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Log format.
    #[arg(
        long,
        env = "SECRETSYNC_LOG_FORMAT",
        value_enum,
        default_value = "json"
    )]
    log_format: LogFormat,
    /// Elect a leader through a Lease so several replicas can run and only one reconciles.
    #[arg(long, env = "SECRETSYNC_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    leader_election: bool,
    /// Name of the leader-election Lease.
    #[arg(long, env = "SECRETSYNC_LEASE_NAME", default_value = "secretsync")]
    lease_name: String,
    /// Namespace of the leader-election Lease.
    #[arg(
        long,
        env = "SECRETSYNC_LEASE_NAMESPACE",
        default_value = "secretsync-system"
    )]
    lease_namespace: String,
    /// Lease duration in seconds: how long a stopped leader blocks the others.
    #[arg(long, env = "SECRETSYNC_LEASE_SECONDS", default_value_t = 15)]
    lease_seconds: u64,
    /// Secret (namespace/name) holding the HMAC key for value digests; created if missing.
    #[arg(
        long,
        env = "SECRETSYNC_DIGEST_KEY_SECRET",
        default_value = "secretsync-system/secretsync-digest-key"
    )]
    digest_key_secret: String,
    /// This replica's identity in the Lease and on Events (the pod name in a cluster).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => {
            print!("{}", serde_yaml::to_string(&secretsync::api::crd())?);
            Ok(())
        }
        Command::Run(args) => run(args).await,
    }
}

async fn client(path: Option<&PathBuf>) -> anyhow::Result<Client> {
    let config = match path {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?
        }
        None => kube::Config::infer().await?,
    };
    Ok(Client::try_from(config)?)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    telemetry::init(args.log_format);
    rustls::crypto::ring::default_provider()
        .install_default()
        .ok();
    let client = client(args.kubeconfig.as_ref()).await?;
    let identity = args
        .identity
        .clone()
        .unwrap_or_else(|| format!("secretsync-{:08x}", rand::random::<u32>()));
    let metrics = Metrics::new();
    let ready = Arc::new(AtomicBool::new(false));
    let digest_key = digest_key::load_or_create(client.clone(), &args.digest_key_secret).await?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |rx: tokio::sync::watch::Receiver<bool>| async move {
        let mut rx = rx;
        let _ = rx.wait_for(|s| *s).await;
    };
    let (addr, http) = http_server(
        &args,
        metrics.clone(),
        ready.clone(),
        stopped(stop_rx.clone()),
    )
    .await?;
    tracing::info!(%addr, %identity, "serving /metrics, /healthz, /readyz");

    let signal = tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });

    let shared = Shared::new(args.backend_rate, args.backend_burst, metrics.clone());
    let registry = Registry::standard(&shared);
    let config = controller::Config {
        namespaces: args.namespaces.clone(),
        concurrency: args.concurrency,
        digest_key,
        metrics,
        ready: ready.clone(),
        instance: identity.clone(),
    };

    if args.leader_election {
        let manager = LeaseManagerBuilder::new(client.clone(), &args.lease_name)
            .with_namespace(&args.lease_namespace)
            .with_identity(&identity)
            .with_duration(args.lease_seconds)
            .with_grace(args.lease_seconds.div_ceil(3).max(1))
            // The lease manager's default field manager embeds the identity: server-side apply must see two
            // replicas as two managers, or both would "win" an orphaned lease.
            .build()
            .await?;
        let (mut leader, lease_task) = manager.watch().await;
        tracing::info!(lease = %args.lease_name, "waiting to become the leader");
        // A standby replica is ready: it is doing its job. Were only the leader ready, a rolling update's new pod
        // could never become ready while the old one holds the lease, and the rollout would stall.
        ready.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut stop = stop_rx.clone();
        let elected = tokio::select! {
            r = leader.wait_for(|l| *l) => { r.context("leader election stopped")?; true }
            _ = stop.wait_for(|s| *s) => false,
        };
        if !elected {
            drop(leader);
            let _ = lease_task.await;
            return Ok(());
        }
        tracing::info!("became the leader; reconciling");
        // Ready again once this replica's watches have synced.
        ready.store(false, std::sync::atomic::Ordering::SeqCst);
        let mut lost = leader.clone();
        let lost_leadership = async move {
            let _ = lost.wait_for(|l| !*l).await;
        };
        let mut stop = stop_rx.clone();
        let until = async move {
            tokio::select! {
                _ = lost_leadership => tracing::warn!("lost the lease; stopping"),
                _ = stop.wait_for(|s| *s) => {}
            }
        };
        controller::run(client, config, registry, until).await;
        // Leaving the lease free lets the other replica take over at once instead of after the lease time.
        drop(leader);
        let _ = lease_task.await;
    } else {
        controller::run(client, config, registry, stopped(stop_rx.clone())).await;
    }
    signal.abort();
    let _ = http.await;
    Ok(())
}

async fn http_server(
    args: &RunArgs,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    stopped: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    secretsync::http::serve(args.metrics_addr, metrics, ready, stopped)
        .await
        .with_context(|| format!("binding {}", args.metrics_addr))
}
