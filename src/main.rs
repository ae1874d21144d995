//! `secretsync`: the controller (`run`), the CRD printer (`crd`) and the book's reference writer (`docs`).
#![forbid(unsafe_code)]

mod docs;
#[cfg(feature = "heap-profile")]
mod heap_profile;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use k8s_openapi::api::coordination::v1::Lease;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use kube_lease_manager::LeaseManagerBuilder;

use secretsync::controller::identity::{cluster_id, digest_key};
use secretsync::controller::{self, leadership as leader};
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

// Parsed once at start; boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the controller.
    Run(RunArgs),
    /// Print the CustomResourceDefinitions (SecretSync, Store, ClusterStore) as YAML documents, or write one file
    /// each into a directory.
    Crd {
        /// Write `<group>_<plural>.yaml` files here instead of printing.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// Convert External Secrets Operator manifests (PushSecret, SecretStore, ClusterSecretStore) into SecretSync,
    /// Store and ClusterStore manifests. Exit status 2 when anything could not be carried over (each such thing is
    /// a comment in the output and a line on stderr). Also runs as `kubectl secretsync convert`.
    Convert(ConvertArgs),
    /// Write the book's reference pages (CRD fields, flags, metrics, condition reasons) into a directory.
    Docs {
        #[arg(long, default_value = "docs/src/reference")]
        out_dir: PathBuf,
    },
}

#[derive(clap::Args)]
struct ConvertArgs {
    /// Files or directories (read recursively: *.yaml, *.yml, *.json) of ESO manifests, multi-document YAML or
    /// `kubectl get -o yaml` lists; `-` or none reads stdin.
    paths: Vec<PathBuf>,
    /// Mode of the SecretSyncs written: `Observe` reports what they would do next to ESO, `Sync` writes.
    #[arg(long, value_enum, default_value = "Observe")]
    mode: ConvertMode,
    /// Write the manifests to this file instead of stdout.
    #[arg(short = 'o', long)]
    output: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ConvertMode {
    #[value(name = "Observe")]
    Observe,
    #[value(name = "Sync")]
    Sync,
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
    /// Label selector: only SecretSyncs matching it are handled, so that several controllers can split a cluster
    /// (for example `shard=a`). Without it every SecretSync in the watched namespaces is handled.
    #[arg(long, env = "SECRETSYNC_SELECTOR")]
    selector: Option<String>,
    /// Reconciles running at once.
    #[arg(long, env = "SECRETSYNC_CONCURRENCY", default_value_t = 8)]
    concurrency: u16,
    /// Requests per second to each store endpoint (token bucket).
    #[arg(long, env = "SECRETSYNC_BACKEND_RATE", default_value_t = 20)]
    backend_rate: u32,
    /// Burst size of each endpoint's token bucket.
    #[arg(long, env = "SECRETSYNC_BACKEND_BURST", default_value_t = 40)]
    backend_burst: u32,
    /// Address of /metrics: HTTPS, for clients with a bearer token that the API server accepts (TokenReview) and
    /// allows to `get` the non-resource URL /metrics (SubjectAccessReview; the ClusterRole
    /// secretsync-metrics-reader).
    #[arg(long, env = "SECRETSYNC_METRICS_ADDR", default_value = "0.0.0.0:8443")]
    metrics_addr: SocketAddr,
    /// Address of /healthz and /readyz: plain HTTP, open to anyone (the kubelet's probes).
    #[arg(long, env = "SECRETSYNC_HEALTH_ADDR", default_value = "0.0.0.0:8080")]
    health_addr: SocketAddr,
    /// PEM certificate chain of the /metrics server (with --metrics-tls-key), read again when it changes. Without
    /// it a self-signed certificate is made at every start.
    #[arg(
        long,
        env = "SECRETSYNC_METRICS_TLS_CERT",
        requires = "metrics_tls_key"
    )]
    metrics_tls_cert: Option<PathBuf>,
    /// PEM private key of --metrics-tls-cert.
    #[arg(
        long,
        env = "SECRETSYNC_METRICS_TLS_KEY",
        requires = "metrics_tls_cert"
    )]
    metrics_tls_key: Option<PathBuf>,
    /// Serve /metrics in plain HTTP to anyone, with no token: for local development only (the exposition names
    /// every tenant's stores).
    #[arg(long, env = "SECRETSYNC_METRICS_INSECURE", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    metrics_insecure: bool,
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
    /// Seconds the leader goes on without a successful renewal of the Lease before it steps down (and exits);
    /// shorter than the lease. Default: two thirds of the lease.
    #[arg(long, env = "SECRETSYNC_RENEW_DEADLINE_SECONDS")]
    renew_deadline_seconds: Option<u64>,
    /// Secret (namespace/name) holding the HMAC key for value digests; created if missing.
    #[arg(
        long,
        env = "SECRETSYNC_DIGEST_KEY_SECRET",
        default_value = "secretsync-system/secretsync-digest-key"
    )]
    digest_key_secret: String,
    /// This cluster's identity in the ownership markers SecretSync writes on remote secrets (1-63 letters, digits,
    /// '.', '_', '-'). Default: the uid of namespace kube-system. Set it when the cluster is rebuilt and must keep
    /// owning what the old one wrote.
    #[arg(long, env = "SECRETSYNC_CLUSTER_ID")]
    cluster_id: Option<String>,
    /// This replica's identity in the Lease and on Events (the pod name in a cluster).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// In a namespace being deleted, seconds a SecretSync with `deletionPolicy: Delete` keeps trying to delete its
    /// remote secret (credentials gone, store unreachable) before its finalizer is released and a Warning Event
    /// (RemoteSecretLeft) names the remote secret left in place.
    #[arg(
        long,
        env = "SECRETSYNC_CLEANUP_TIMEOUT_SECONDS",
        default_value_t = 600
    )]
    cleanup_timeout_seconds: u64,
    /// Let SecretSyncs name their own dialect, endpoint and credentials (`spec.target.dialect`) instead of a Store
    /// or ClusterStore. For single-tenant clusters only: whoever may write a SecretSync then decides where values
    /// and credentials are sent. Off by default; inline SecretSyncs are then `Failed/InlineTargetNotAllowed`.
    #[arg(long, env = "SECRETSYNC_ALLOW_INLINE_TARGETS", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    allow_inline_targets: bool,
    /// Host patterns a namespaced Store (written by a namespace admin) may connect to, besides its dialect's public
    /// cloud hosts (Key Vault and Entra ID, Tencent Cloud API): `host`, `*.domain` or `*` for any host. Self-hosted
    /// stores (Barbican, Service Fabric, Docker Swarm over TCP) need their hosts listed here; a namespaced Store
    /// never reaches a unix socket. ClusterStores are not limited.
    #[arg(
        long,
        env = "SECRETSYNC_NAMESPACED_STORE_HOSTS",
        value_delimiter = ',',
        num_args = 0..
    )]
    namespaced_store_hosts: Vec<String>,
    /// The audiences a store's serviceAccountRef may ask a ServiceAccount token for; any other is refused
    /// (StoreNotAllowed) before a TokenRequest is made.
    #[arg(
        long,
        env = "SECRETSYNC_TOKEN_AUDIENCES",
        value_delimiter = ',',
        default_value = "api://AzureADTokenExchange"
    )]
    token_audiences: Vec<String>,
    /// PEM file of CAs trusted, next to the public roots, for the identity providers that namespaced Stores sign in
    /// at (Key Vault's Entra ID authority host): a private cloud's, or a test bed's. A namespaced Store's own
    /// caBundle vouches for its vault only, never for where it sends a client secret or a token.
    #[arg(long, env = "SECRETSYNC_IDENTITY_PROVIDER_CA_FILE")]
    identity_provider_ca_file: Option<PathBuf>,
    /// Test hook: the reconcile of this one SecretSync (namespace/name), and the check of the Store of that
    /// namespace and name, panic. Proves that a panic ends only its own reconcile or check; never set it in
    /// production.
    #[arg(long, env = "SECRETSYNC_TEST_PANIC_ON", hide = true)]
    test_panic_on: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd { out_dir } => {
            for (file, text) in secretsync::api::crd_files()? {
                match &out_dir {
                    Some(dir) => std::fs::write(dir.join(file), text)
                        .with_context(|| format!("cannot write {file}"))?,
                    None => print!("{text}"),
                }
            }
            Ok(())
        }
        Command::Docs { out_dir } => {
            for (file, text) in docs::pages(&<Cli as clap::CommandFactory>::command())? {
                std::fs::write(out_dir.join(file), text)
                    .with_context(|| format!("cannot write {file}"))?;
            }
            Ok(())
        }
        Command::Convert(args) => convert(args),
        Command::Run(args) => run(args).await,
    }
}

/// Exits with status 2 after writing the output when anything was not carried over.
fn convert(args: ConvertArgs) -> anyhow::Result<()> {
    use secretsync::convert;
    let sources = convert::read_paths(&args.paths)?;
    let mode = match args.mode {
        ConvertMode::Observe => convert::Mode::Observe,
        ConvertMode::Sync => convert::Mode::Sync,
    };
    let conversion = convert::convert(&sources, mode);
    let yaml = conversion.yaml()?;
    match &args.output {
        Some(path) => std::fs::write(path, yaml)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            out.write_all(yaml.as_bytes())?;
            out.flush()?;
        }
    }
    for line in conversion.stderr_lines() {
        eprintln!("{line}");
    }
    if conversion.dropped() {
        std::process::exit(2);
    }
    Ok(())
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
    #[cfg(feature = "heap-profile")]
    heap_profile::start();
    telemetry::init(args.log_format);
    telemetry::log_panics();
    rustls::crypto::ring::default_provider()
        .install_default()
        .ok();
    // A pattern that can never match would refuse every namespaced Store with no hint why: refused at start.
    for pattern in &args.namespaced_store_hosts {
        secretsync::dialects::kit::endpoint::check_pattern(pattern)
            .map_err(|e| anyhow::anyhow!("--namespaced-store-hosts: {e}"))?;
    }
    let timing = args
        .leader_election
        .then(|| leader::Timing::new(args.lease_seconds, args.renew_deadline_seconds))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let client = client(args.kubeconfig.as_ref()).await?;
    let identity = args
        .identity
        .clone()
        .unwrap_or_else(|| format!("secretsync-{:08x}", rand::random::<u32>()));
    let metrics = Metrics::new();
    let ready = Arc::new(AtomicBool::new(false));
    let digest_key = digest_key::load_or_create(client.clone(), &args.digest_key_secret).await?;
    let cluster_id = cluster_id::resolve(client.clone(), args.cluster_id.as_deref()).await?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |rx: tokio::sync::watch::Receiver<bool>| async move {
        let mut rx = rx;
        let _ = rx.wait_for(|s| *s).await;
    };
    let http = http_servers(&args, &client, metrics.clone(), ready.clone(), || {
        stopped(stop_rx.clone())
    })
    .await?;
    tracing::info!(%identity, "serving");

    let signal = tokio::spawn(async move {
        shutdown_signal().await;
        #[cfg(feature = "heap-profile")]
        heap_profile::finish();
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });

    let mut shared = Shared::new(args.backend_rate, args.backend_burst, metrics.clone());
    if let Some(path) = &args.identity_provider_ca_file {
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("--identity-provider-ca-file {}", path.display()))?;
        shared = shared.with_identity_provider_ca(pem);
    }
    let registry = Registry::standard(&shared);
    let config = controller::Config {
        namespaces: args.namespaces.clone(),
        selector: args.selector.clone(),
        concurrency: args.concurrency,
        digest_key,
        cluster_id,
        metrics,
        ready: ready.clone(),
        instance: identity.clone(),
        cleanup_timeout: std::time::Duration::from_secs(args.cleanup_timeout_seconds),
        panic_on: args.test_panic_on.clone(),
        allow_inline_targets: args.allow_inline_targets,
        limits: controller::store_limits::StoreLimits {
            namespaced_store_hosts: args.namespaced_store_hosts.clone(),
            token_audiences: args.token_audiences.clone(),
        },
    };

    if let Some(timing) = timing {
        let leases: Api<Lease> = Api::namespaced(client.clone(), &args.lease_namespace);
        let manager = || async {
            LeaseManagerBuilder::new(client.clone(), &args.lease_name)
                .with_namespace(&args.lease_namespace)
                .with_identity(&identity)
                .with_duration(timing.lease_seconds())
                // Renewals every half renew deadline (see controller::leader).
                .with_grace(timing.manager_grace_seconds())
                // The lease manager's default field manager embeds the identity: server-side apply must see two
                // replicas as two managers, or both would "win" an orphaned lease.
                .build()
                .await
        };
        let (mut leader, mut lease_task) = manager().await?.watch().await;
        tracing::info!(
            lease = %args.lease_name,
            lease_seconds = timing.lease_seconds(),
            renew_deadline_seconds = timing.renew_deadline().as_secs(),
            "waiting to become the leader"
        );
        // A standby replica is ready: it is doing its job. Were only the leader ready, a rolling update's new pod
        // could never become ready while the old one holds the lease, and the rollout would stall.
        ready.store(true, std::sync::atomic::Ordering::SeqCst);
        let elected = loop {
            let mut stop = stop_rx.clone();
            let released = tokio::select! {
                r = leader.wait_for(|l| *l) => { r.context("leader election stopped")?; break true; }
                _ = stop.wait_for(|s| *s) => break false,
                _ = leader::released(&leases, &args.lease_name, timing.check_every()) => true,
            };
            if released {
                // The waiting manager sleeps until the old lease's end: a new one asks at once. It held nothing,
                // so stopping it gives nothing up.
                tracing::info!("the Lease was released; asking for it at once");
                lease_task.abort();
                let _ = (&mut lease_task).await;
                (leader, lease_task) = manager().await?.watch().await;
            }
        };
        if !elected {
            drop(leader);
            let _ = lease_task.await;
            return Ok(());
        }
        // The renew deadline counts from the renewal that won the Lease, as read back from it.
        let renewed = match leader::confirm(&leases, &args.lease_name, &identity, &timing).await {
            Ok(at) => at,
            Err(lost) => leadership_lost(&lost),
        };
        tracing::info!("became the leader; reconciling");
        config.metrics.leader.set(1);
        // Ready again once this replica's watches have synced.
        ready.store(false, std::sync::atomic::Ordering::SeqCst);
        // The leader steps down when no renewal reached the Lease within the renew deadline (kube-lease-manager
        // would go on as leader while its renewals fail), or when the Lease names another holder. Stepping down
        // cancels running reconciles at once: another replica may take the Lease from lease − deadline later.
        let lost = Arc::new(std::sync::OnceLock::new());
        let abort = {
            let lost = lost.clone();
            let mut reported = leader.clone();
            let (name, identity) = (args.lease_name.clone(), identity.clone());
            async move {
                let why = tokio::select! {
                    why = leader::keep(&leases, &name, &identity, &timing, renewed) => why,
                    _ = reported.wait_for(|l| !*l) => leader::Lost::Reported,
                };
                tracing::error!(reason = %why, "stepping down: no longer the leader");
                let _ = lost.set(why);
            }
        };
        // On SIGTERM the leader still holds and renews the Lease while running reconciles finish, and the renew
        // deadline still cuts them off. The grace is kept under the deadline, so under the lease, all the same: a
        // leader being replaced holds the others up no longer than a crashed one would, and a stop (grace, then
        // the Lease released) fits in Kubernetes' 30 s termination grace.
        let grace = timing.shutdown_grace(controller::SHUTDOWN_GRACE);
        controller::run_until(
            client,
            config,
            registry,
            stopped(stop_rx.clone()),
            grace,
            abort,
        )
        .await;
        if let Some(why) = lost.get() {
            leadership_lost(why);
        }
        // Leaving the lease free lets the other replica take over at once instead of after the lease time.
        drop(leader);
        let _ = lease_task.await;
    } else {
        config.metrics.leader.set(1);
        controller::run(client, config, registry, stopped(stop_rx.clone())).await;
    }
    signal.abort();
    let _ = http.await;
    Ok(())
}

/// Exits with status 1 once this replica lost the leadership, as controller-runtime does ("leader election lost"),
/// rather than going back to wait for the Lease: Kubernetes restarts the container, which then starts over as a
/// standby with fresh watches, caches and backoffs, and nothing of the old term (a task winding down, a request in
/// flight) can outlive it. Meanwhile the other replica leads. The Lease is not released: its holder may be
/// another replica by now. `exit` rather than a return: dropping the runtime would wait for its blocking tasks.
fn leadership_lost(why: &leader::Lost) -> ! {
    tracing::error!(reason = %why, "leader election lost; exiting");
    std::process::exit(1)
}

async fn http_servers<F: std::future::Future<Output = ()> + Send + 'static>(
    args: &RunArgs,
    client: &Client,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    stopped: impl Fn() -> F,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use secretsync::http::{MetricsAccess, serve_health, serve_metrics};
    let access = if args.metrics_insecure {
        tracing::warn!("--metrics-insecure: /metrics is served in plain HTTP to anyone");
        MetricsAccess::Open
    } else {
        MetricsAccess::Reviewed {
            client: client.clone(),
            cert_files: args
                .metrics_tls_cert
                .clone()
                .zip(args.metrics_tls_key.clone()),
        }
    };
    let (health_addr, health) = serve_health(args.health_addr, ready, stopped()).await?;
    let (metrics_addr, served) =
        serve_metrics(args.metrics_addr, metrics, access, stopped()).await?;
    tracing::info!(%health_addr, %metrics_addr, tls = !args.metrics_insecure, "serving /healthz and /readyz, and /metrics");
    Ok(tokio::spawn(async move {
        let _ = tokio::join!(health, served);
    }))
}
