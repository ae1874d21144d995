//! The test bed's cluster as its admin sees it, and namespaces of a test's own.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// A client with the test bed's admin kubeconfig (`KUBECONFIG` from `.testbed/env`).
pub async fn admin() -> Client {
    let kubeconfig = Kubeconfig::read_from(super::env("KUBECONFIG")).expect("kubeconfig readable");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig valid");
    Client::try_from(config).expect("client")
}

/// A namespace named `<prefix>-<8 hex digits>`, created.
pub async fn namespace(client: &Client, prefix: &str) -> String {
    let name = super::unique::unique(prefix);
    let namespace: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))
            .expect("a namespace");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .expect("namespace created");
    name
}
