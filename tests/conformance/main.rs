//! One conformance suite: the same scenarios, written once, against each of the seven dialects on its real
//! test-bed backend (`make testbed`, then `set -a; source .testbed/env; set +a`). Each dialect's adapter
//! (`stores/*.rs`) only says how to reach its store and how to look at it from the outside: read what it holds,
//! remove a secret behind SecretSync's back, and create one that no SecretSync owns. Everything the scenarios
//! drive goes through the `Dialect` trait and the real planner, as one reconcile does.
//!
//! Tests that exercise behaviour only one store has stay in `tests/<dialect>.rs`.

#[path = "../support/aws_call.rs"]
mod aws_call;
#[path = "../support/dialect_case.rs"]
mod dialect_case;
#[path = "../support/ssm_call.rs"]
mod ssm_call;
#[path = "../support/vault_cli.rs"]
mod vault_cli;

mod case;
mod scenarios;
mod several;
mod stores;

use case::Store;

/// One test per scenario and store, named `<store>::<scenario>`.
macro_rules! conformance {
    ($($store:ident => $adapter:expr),* $(,)?) => {$(
        mod $store {
            use super::*;

            fn store() -> Box<dyn Store> {
                Box::new($adapter)
            }

            #[tokio::test]
            async fn create_no_op_change_delete() {
                scenarios::create_no_op_change_delete(&*store()).await
            }

            #[tokio::test]
            async fn removed_behind_our_back_is_written_again() {
                scenarios::removed_behind_our_back_is_written_again(&*store()).await
            }

            #[tokio::test]
            async fn a_foreign_secret_is_refused_until_adopted() {
                scenarios::a_foreign_secret_is_refused_until_adopted(&*store()).await
            }

            #[tokio::test]
            async fn another_secretsyncs_secret_is_refused_and_left_alone() {
                scenarios::another_secretsyncs_secret_is_refused_and_left_alone(&*store()).await
            }

            #[tokio::test]
            async fn retain_leaves_the_secret_and_delete_removes_only_ours() {
                scenarios::retain_leaves_the_secret_and_delete_removes_only_ours(&*store()).await
            }

            #[tokio::test]
            async fn a_crash_after_any_request_converges_without_a_duplicate() {
                scenarios::a_crash_after_any_request_converges_without_a_duplicate(&*store()).await
            }

            #[tokio::test]
            async fn the_stores_rate_limit_paces_every_request() {
                scenarios::the_stores_rate_limit_paces_every_request(&*store()).await
            }

            #[tokio::test]
            async fn wrong_credentials_are_a_credentials_error_without_secrets() {
                scenarios::wrong_credentials_are_a_credentials_error_without_secrets(&*store()).await
            }

            #[tokio::test]
            async fn two_keys_into_two_properties_of_one_remote_secret() {
                several::two_keys_into_two_properties_of_one_remote_secret(&*store()).await
            }

            #[tokio::test]
            async fn a_regex_entry_writes_each_matching_key() {
                several::a_regex_entry_writes_each_matching_key(&*store()).await
            }

            #[tokio::test]
            async fn a_selector_source_writes_one_remote_per_secret_and_lets_go() {
                several::a_selector_source_writes_one_remote_per_secret_and_lets_go(&*store()).await
            }

            #[tokio::test]
            async fn a_template_makes_a_url_from_two_keys() {
                several::a_template_makes_a_url_from_two_keys(&*store()).await
            }

            #[tokio::test]
            async fn a_change_of_one_key_writes_one_remote_secret_once() {
                several::a_change_of_one_key_writes_one_remote_secret_once(&*store()).await
            }
        }
    )*};
}

conformance! {
    service_fabric_mesh => stores::ServiceFabricMesh,
    azure_key_vault => stores::AzureKeyVault,
    barbican => stores::Barbican,
    docker_swarm => stores::DockerSwarm,
    tencent_ssm => stores::TencentSsm,
    aws_secrets_manager => stores::AwsSecretsManager,
    vault => stores::Vault,
}
