//! SecretSync's CRDs, from `crds/`, on the test bed's API server.
#![allow(dead_code)]

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};

/// Applies the SecretSync, Store and ClusterStore CRDs and waits until each is Established.
pub async fn install_crds(client: &Client) {
    for text in [
        include_str!("../../crds/secretsync.io_secretsyncs.yaml"),
        include_str!("../../crds/secretsync.io_stores.yaml"),
        include_str!("../../crds/secretsync.io_clusterstores.yaml"),
    ] {
        install_crd(client, yaml_serde::from_str(text).expect("a CRD")).await;
    }
}

/// Applies one CRD and waits until it is Established.
pub async fn install_crd(client: &Client, crd: CustomResourceDefinition) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.metadata.name.clone().expect("a CRD has a name");
    crds.patch(
        &name,
        &PatchParams::apply("secretsync-tests").force(),
        &Patch::Apply(&crd),
    )
    .await
    .expect("CRD applied");
    let established = kube::runtime::wait::await_condition(
        crds,
        &name,
        kube::runtime::wait::conditions::is_crd_established(),
    );
    tokio::time::timeout(Duration::from_secs(30), established)
        .await
        .expect("CRD Established within 30 s")
        .expect("watch ok");
}
