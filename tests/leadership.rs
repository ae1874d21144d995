//! Leadership is never doubled: a leader cut off from the API server stops before its Lease can run out, and the
//! other replica takes over only then.
//!
//! Two `secretsync` processes run as in `tests/e2e.rs` (the deploy/ ServiceAccount's token, leader election on), on
//! a Lease and a namespace of this test's own. Replica A reaches the API server through a TCP proxy inside this test;
//! B connects directly. Once A leads and has pushed a SecretSync to the Service Fabric emulator, the proxy stops:
//! its listener closes and every forwarded connection is shut. A must step down within its renew deadline and exit
//! before its lease could expire; B must take over only after that, push a source change exactly once, and A must
//! have made no write after the cut. Last, B stops on SIGTERM and releases the Lease: a third replica waiting as the
//! standby takes it at once, not when the Lease B last renewed would have run out.

use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;

mod support;
use support::env;
#[path = "support/cluster.rs"]
mod cluster;
use cluster::{
    SYSTEM_NS, cluster, install_crds_and_namespace, kubectl, kubectl_json, ready_reason,
    service_account_kubeconfig, sf_writes, wait_for,
};
#[path = "support/replica.rs"]
mod replica;
use replica::{Replica, time};

const LEASE_SECONDS: u64 = 10;
const RENEW_DEADLINE_SECONDS: u64 = 6;

/// A TCP proxy to the API server: plain bytes both ways (TLS stays end to end), until `cut`.
struct Proxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let acceptor = {
            let (stop, open) = (stop.clone(), open.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let Ok((client, _)) = listener.accept() else {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    client.set_nonblocking(false).unwrap();
                    let Ok(server) = TcpStream::connect_timeout(&upstream, Duration::from_secs(5))
                    else {
                        continue;
                    };
                    for (from, to) in [(&client, &server), (&server, &client)] {
                        let (mut from, mut to) =
                            (from.try_clone().unwrap(), to.try_clone().unwrap());
                        std::thread::spawn(move || {
                            let _ = std::io::copy(&mut from, &mut to);
                            let _ = to.shutdown(Shutdown::Write);
                        });
                    }
                    open.lock().unwrap().extend([client, server]);
                }
                // The listener is dropped here: from now on a connection attempt is refused.
            })
        };
        Proxy {
            addr,
            stop,
            open,
            acceptor: Some(acceptor),
        }
    }

    /// Closes the listener, then every connection it forwarded (both ends).
    fn cut(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.join().unwrap();
        }
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}

/// A SecretSync and a Store of its own for `endpoint`.
fn secret_sync(ns: &str, name: &str, endpoint: &str, remote: &str) -> String {
    format!(
        r#"apiVersion: secretsync.io/v1alpha1
kind: Store
metadata: {{name: {name}, namespace: {ns}}}
spec: {{dialect: ServiceFabricMesh, endpoint: "{endpoint}"}}
---
apiVersion: secretsync.io/v1alpha1
kind: SecretSync
metadata: {{name: {name}, namespace: {ns}}}
spec:
  source: {{secretRef: {{name: src, key: k}}}}
  target: {{storeRef: {{kind: Store, name: {name}}}, remoteName: {remote}}}
"#
    )
}

fn source(ns: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: src, namespace: {ns}}}\nstringData: {{k: {value}}}\n"
    )
}

#[test]
fn a_leader_cut_off_from_the_api_server_steps_down_before_its_lease_ends() {
    // What the controller needs, as a user installs it (idempotent; tests/e2e.rs checks the install itself).
    install_crds_and_namespace();
    let _binding = cluster::AdmissionBinding;
    kubectl(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-k",
            "deploy/",
        ],
        None,
    );

    // A namespace, a Lease and a remote secret of this test's own, so other tests' controllers never meet it.
    let id = format!("{:08x}", rand::random::<u32>());
    let ns = format!("lead-{id}");
    let lease = format!("lead-{id}");
    let remote = format!("instant-lead-{id}");
    let (v1, v2) = (format!("first-{id}"), format!("second-{id}"));
    kubectl(&["create", "namespace", &ns], None);
    kubectl(&["apply", "-f", "-"], Some(&source(&ns, &v1)));

    let dir = tempfile::tempdir().unwrap();
    let server = cluster()["server"].as_str().unwrap().to_owned();
    let url = url::Url::parse(&server).unwrap();
    let upstream = url.socket_addrs(|| None).unwrap()[0];
    let mut proxy = Proxy::start(upstream);
    // The same host name, so the API server's certificate still matches; only the port is the proxy's.
    let proxied = format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap(),
        proxy.addr.port()
    );
    let direct = service_account_kubeconfig(&dir.path().join("direct.kubeconfig"), Some(&server));
    let via_proxy =
        service_account_kubeconfig(&dir.path().join("proxied.kubeconfig"), Some(&proxied));

    let (lease_seconds, renew_deadline) = (
        LEASE_SECONDS.to_string(),
        RENEW_DEADLINE_SECONDS.to_string(),
    );
    let replica_args = [
        "--lease-name",
        lease.as_str(),
        "--namespace",
        ns.as_str(),
        "--lease-seconds",
        lease_seconds.as_str(),
        "--renew-deadline-seconds",
        renew_deadline.as_str(),
    ];
    let mut a = Replica::start(
        &format!("lead-a-{id}"),
        &via_proxy,
        dir.path(),
        &replica_args,
    );
    wait_for("replica A leads", Duration::from_secs(60), || a.leads());
    let mut b = Replica::start(&format!("lead-b-{id}"), &direct, dir.path(), &replica_args);
    wait_for(
        "replica B waits for the Lease",
        Duration::from_secs(30),
        || b.ready(),
    );

    kubectl(
        &["apply", "-f", "-"],
        Some(&secret_sync(&ns, "db", &env("SF_ENDPOINT"), &remote)),
    );
    let status = || kubectl_json(&["-n", &ns, "get", "ssync", "db"]);
    wait_for("A pushes the SecretSync", Duration::from_secs(60), || {
        ready_reason(&status()) == "True/Synced"
    });
    let version1 = status()["status"]["remote"]["version"].clone();
    assert_eq!(a.writes().len(), 1, "A's log:\n{}", a.log());
    assert!(
        b.writes().is_empty() && !b.leads(),
        "the standby acted:\n{}",
        b.log()
    );

    // While connected, A renews and stays the leader past its renew deadline and its lease.
    let elected = a.logged("became the leader")[0];
    std::thread::sleep(
        (elected + Duration::from_secs(LEASE_SECONDS + 1))
            .duration_since(SystemTime::now())
            .unwrap_or_default(),
    );
    let held = kubectl_json(&["-n", SYSTEM_NS, "get", "lease", &lease]);
    assert_eq!(held["spec"]["holderIdentity"], json!(a.name), "{held}");
    assert!(
        time(held["spec"]["renewTime"].as_str().unwrap())
            > elected - Duration::from_secs(1) + Duration::from_secs(RENEW_DEADLINE_SECONDS / 2),
        "A did not renew: {held}"
    );
    assert!(
        a.exited().is_none() && a.logged("stepping down").is_empty(),
        "A stepped down while connected:\n{}",
        a.log()
    );

    // Cut A off. The Lease as the API server has it now holds A's last renewal: it expires a lease later.
    let before_cut = sf_writes(&remote);
    proxy.cut();
    let cut = SystemTime::now();
    let held = kubectl_json(&["-n", SYSTEM_NS, "get", "lease", &lease]);
    assert_eq!(held["spec"]["holderIdentity"], json!(a.name), "{held}");
    assert_eq!(held["spec"]["leaseDurationSeconds"], json!(LEASE_SECONDS));
    let renewed = time(held["spec"]["renewTime"].as_str().unwrap());
    let expiry = renewed + Duration::from_secs(LEASE_SECONDS);
    eprintln!(
        "cut {} ms after A's last renewal",
        cut.duration_since(renewed).unwrap_or_default().as_millis()
    );

    // A steps down within its renew deadline, and its process is gone before the lease could expire.
    let mut exit = None;
    wait_for(
        "A exits after stepping down",
        Duration::from_secs(LEASE_SECONDS + 5),
        || {
            exit = a.exited().map(|s| (s, SystemTime::now()));
            exit.is_some()
        },
    );
    let (status_a, exited_at) = exit.unwrap();
    let stepped_down = a.logged("stepping down");
    assert_eq!(stepped_down.len(), 1, "A's log:\n{}", a.log());
    let stepped_down = stepped_down[0];
    eprintln!(
        "A stepped down {} ms after its last renewal (deadline {RENEW_DEADLINE_SECONDS} s, lease {LEASE_SECONDS} s), exited with {status_a}",
        stepped_down
            .duration_since(renewed)
            .unwrap_or_default()
            .as_millis()
    );
    assert!(
        stepped_down
            <= renewed + Duration::from_secs(RENEW_DEADLINE_SECONDS) + Duration::from_secs(1),
        "A stepped down after its renew deadline:\n{}",
        a.log()
    );
    assert!(
        exited_at < expiry,
        "A was still running when its lease expired:\n{}",
        a.log()
    );
    assert_eq!(status_a.code(), Some(1), "A: {status_a}");
    assert!(a.log().contains("leader election lost; exiting"));
    // A wrote nothing after the cut.
    assert!(
        a.writes().iter().all(|w| *w < cut),
        "A wrote after the cut:\n{}",
        a.log()
    );

    // B takes over, only once the lease has expired.
    wait_for(
        "B takes over",
        Duration::from_secs(LEASE_SECONDS + 30),
        || b.leads(),
    );
    let took_over = b.logged("became the leader")[0];
    eprintln!(
        "B took over {} ms after A's last renewal",
        took_over
            .duration_since(renewed)
            .unwrap_or_default()
            .as_millis()
    );
    assert!(
        took_over >= expiry,
        "B took over {} ms before A's lease expired",
        expiry.duration_since(took_over).unwrap().as_millis()
    );
    wait_for("B's watches sync", Duration::from_secs(30), || b.ready());
    assert_eq!(
        sf_writes(&remote),
        before_cut,
        "the remote secret was written during the handover"
    );

    // A source change after the takeover is pushed once, by B alone: one new value version and the description
    // that lists the versions. Two writers would double it.
    kubectl(&["apply", "-f", "-"], Some(&source(&ns, &v2)));
    wait_for("B pushes the change", Duration::from_secs(60), || {
        let s = status();
        s["status"]["remote"]["version"] != version1 && ready_reason(&s) == "True/Synced"
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        sf_writes(&remote) - before_cut,
        2,
        "writes for one change\nA:\n{}\nB:\n{}",
        a.log(),
        b.log()
    );
    let b_writes = b.writes();
    assert_eq!(b_writes.len(), 1, "B's log:\n{}", b.log());
    assert!(b_writes[0] > took_over);
    assert_eq!(a.writes().len(), 1, "A's log:\n{}", a.log());

    // On SIGTERM, a reconcile that hangs (a store that accepts and never answers) gets a grace shorter than the
    // lease, not the 20 s of a controller without leader election; then the Lease is released.
    let hanging = TcpListener::bind("127.0.0.1:0").unwrap();
    let hanging_url = format!("http://{}", hanging.local_addr().unwrap());
    let accepted = Arc::new(Mutex::new(Vec::new()));
    {
        let accepted = accepted.clone();
        std::thread::spawn(move || {
            for stream in hanging.incoming().flatten() {
                accepted.lock().unwrap().push(stream);
            }
        });
    }
    kubectl(
        &["apply", "-f", "-"],
        Some(&secret_sync(
            &ns,
            "stuck",
            &hanging_url,
            &format!("stuck-{id}"),
        )),
    );
    wait_for(
        "B's reconcile reaches the hanging store",
        Duration::from_secs(30),
        || !accepted.lock().unwrap().is_empty(),
    );
    // A third replica waits as the standby: when B stops and releases the Lease, C must take it at once rather
    // than when the lease B last renewed would have run out.
    let c = Replica::start(&format!("lead-c-{id}"), &direct, dir.path(), &replica_args);
    wait_for("C is a ready standby", Duration::from_secs(30), || {
        c.ready()
    });
    assert!(!c.leads());
    let sigterm = Instant::now();
    let pid = b.pid().expect("B runs").to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let mut status_b = None;
    wait_for("B stops on SIGTERM", Duration::from_secs(30), || {
        status_b = b.exited();
        status_b.is_some()
    });
    let stopping = sigterm.elapsed();
    eprintln!("B stopped {} ms after SIGTERM", stopping.as_millis());
    assert!(status_b.unwrap().success(), "B: {status_b:?}\n{}", b.log());
    assert!(
        b.log()
            .contains("reconciles still running after the shutdown grace period"),
        "B's log:\n{}",
        b.log()
    );
    assert!(
        stopping >= Duration::from_secs(RENEW_DEADLINE_SECONDS)
            && stopping < Duration::from_secs(RENEW_DEADLINE_SECONDS + 3),
        "B stopped {stopping:?} after SIGTERM; the grace is the renew deadline, {RENEW_DEADLINE_SECONDS} s"
    );
    // B renewed at most half a renew deadline before it stopped, so the Lease it last renewed runs for at least
    // 7 s more: a takeover within 4 s shows that B released it and that C asked at once.
    let stopped = Instant::now();
    wait_for(
        "C takes the released Lease",
        Duration::from_secs(LEASE_SECONDS + 10),
        || c.leads(),
    );
    let handover = stopped.elapsed();
    eprintln!("C led {} ms after B stopped", handover.as_millis());
    assert!(
        c.log()
            .contains("the Lease was released; asking for it at once"),
        "C's log:\n{}",
        c.log()
    );
    assert!(
        handover < Duration::from_secs(4),
        "C took the Lease {handover:?} after B stopped; B's Lease would have run out only ~7 s later"
    );
    assert_eq!(
        kubectl_json(&["-n", SYSTEM_NS, "get", "lease", &lease])["spec"]["holderIdentity"],
        json!(c.name)
    );

    if std::env::var_os("LEADERSHIP_TEST_LOGS").is_some() {
        eprintln!("A:\n{}\nB:\n{}", a.log(), b.log());
    }
    for replica in [&a, &b, &c] {
        let log = replica.log();
        assert!(
            !log.contains(&v1) && !log.contains(&v2),
            "a value leaked into the log of {}",
            replica.name
        );
    }
    // The objects go; the namespace stays (without the node the test bed runs no namespace controller).
    kubectl(
        &["-n", &ns, "delete", "ssync", "db", "stuck", "--wait=true"],
        None,
    );
    kubectl(&["-n", &ns, "delete", "secret", "src"], None);
    kubectl(&["-n", SYSTEM_NS, "delete", "lease", &lease], None);
}
