//! Tokens of the ServiceAccounts that stores name for workload identity, from the TokenRequest API.
//!
//! A token is reused until half its life has passed, so that many SecretSyncs through one store cost one
//! TokenRequest (and, because the token stays the same, one exchange at the identity provider) per period.

use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{
    TokenRequest, TokenRequestSpec, TokenReview, TokenReviewSpec,
};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::api::PostParams;

use crate::controller::Context;
use crate::controller::sync::Error;
use crate::dialects::kit::bounded::Lru;
use crate::value::SecretValue;

/// What Microsoft Entra ID expects in a federated token's `aud`.
pub const DEFAULT_AUDIENCE: &str = "api://AzureADTokenExchange";
/// The shortest lifetime the API server grants; the token is renewed after half of it.
const LIFETIME: Duration = Duration::from_secs(600);

/// Tokens kept at most (one per store's ServiceAccount and audience); past it the least recently used goes.
const MAX_CACHED: usize = 1024;

type Key = (String, String, String);

/// Tokens by (namespace, ServiceAccount, audience).
pub struct Cache {
    tokens: Lru<Key, (SecretValue, Instant)>,
}

impl Default for Cache {
    fn default() -> Self {
        Cache {
            tokens: Lru::new(MAX_CACHED),
        }
    }
}

impl Cache {
    fn get(&self, key: &Key) -> Option<SecretValue> {
        self.tokens
            .get(key)
            .filter(|(_, renew_at)| Instant::now() < *renew_at)
            .map(|(token, _)| token)
    }

    fn put(&self, key: Key, token: SecretValue, lifetime: Duration) {
        self.tokens.put(key, (token, Instant::now() + lifetime / 2));
    }
}

/// A token for `namespace/name` with `audience` (default [`DEFAULT_AUDIENCE`]).
pub async fn token(
    ctx: &Context,
    namespace: &str,
    name: &str,
    audience: Option<&str>,
) -> Result<SecretValue, Error> {
    let audience = audience.unwrap_or(DEFAULT_AUDIENCE).to_owned();
    ctx.limits.admit_audience(&audience)?;
    let key = (namespace.to_owned(), name.to_owned(), audience.clone());
    if let Some(token) = ctx.tokens.get(&key) {
        return Ok(token);
    }
    let accounts: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), namespace);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![audience],
            expiration_seconds: Some(LIFETIME.as_secs() as i64),
            bound_object_ref: None,
        },
        ..Default::default()
    };
    let granted = accounts
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .map_err(|e| match e {
            kube::Error::Api(status) if status.code == 404 => {
                Error::Refused(crate::controller::stores::resolve::Refusal::InvalidSpec(
                    format!("the store's ServiceAccount {namespace}/{name} does not exist"),
                ))
            }
            kube::Error::Api(status) if status.code == 403 => Error::Refused(
                crate::controller::stores::resolve::Refusal::TokenNotGranted(not_granted(
                    namespace, name,
                )),
            ),
            e => Error::Kube(e),
        })?;
    let token = granted
        .status
        .map(|s| SecretValue::from(s.token.as_str()))
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Error::Refused(crate::controller::stores::resolve::Refusal::InvalidSpec(
                format!("the TokenRequest for ServiceAccount {namespace}/{name} returned no token"),
            ))
        })?;
    refuse_if_the_cluster_accepts(ctx, &token, namespace, name, &key.2).await?;
    ctx.tokens.put(key, token.clone(), LIFETIME);
    Ok(token)
}

/// What a namespace admin runs to let the controller request tokens for one ServiceAccount of theirs (and no
/// other): the controller holds no cluster-wide right to, so the API server decides, not the Store's author.
fn not_granted(namespace: &str, name: &str) -> String {
    let role = format!("secretsync-token-{name}");
    format!(
        "the API server refused a token for ServiceAccount {namespace}/{name}: this namespace has not let the \
         controller request one. A namespace admin grants it with: kubectl -n {namespace} create role {role} \
         --verb=create --resource=serviceaccounts/token --resource-name={name} && kubectl -n {namespace} create \
         rolebinding {role} --role={role} --serviceaccount={}",
        controller_account()
    )
}

/// The controller's own ServiceAccount as `namespace:name` (from the pod's environment; deploy/'s by default).
fn controller_account() -> String {
    let namespace = std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "secretsync-system".into());
    let account =
        std::env::var("SECRETSYNC_SERVICE_ACCOUNT").unwrap_or_else(|_| "secretsync".into());
    format!("{namespace}:{account}")
}

/// A store's admin picks the audience and the identity provider the token goes to: a token this cluster's own API
/// server would accept (its audience is one of the API server's) would hand that admin the ServiceAccount's
/// Kubernetes permissions. Such a token is never sent: a TokenReview asks the API server whether it accepts it.
async fn refuse_if_the_cluster_accepts(
    ctx: &Context,
    token: &SecretValue,
    namespace: &str,
    name: &str,
    audience: &str,
) -> Result<(), Error> {
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: token.expose_str().map(str::to_owned),
            audiences: None,
        },
        ..Default::default()
    };
    let reviews: Api<TokenReview> = Api::all(ctx.client.clone());
    let answer = reviews.create(&PostParams::default(), &review).await?;
    if answer.status.and_then(|s| s.authenticated) == Some(true) {
        return Err(Error::Refused(
            crate::controller::stores::resolve::Refusal::StoreNotAllowed(format!(
                "a token for ServiceAccount {namespace}/{name} with audience {audience:?} would be accepted by this cluster's API server, so it is not sent to the store's identity provider: set serviceAccountRef.audience to the audience the identity provider expects"
            )),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_reused_until_half_its_life_then_renewed() {
        let cache = Cache::default();
        let key: Key = ("a".into(), "sa".into(), DEFAULT_AUDIENCE.into());
        assert!(cache.get(&key).is_none());
        cache.put(
            key.clone(),
            SecretValue::from("t1"),
            Duration::from_secs(600),
        );
        assert_eq!(cache.get(&key), Some(SecretValue::from("t1")));
        let other: Key = ("b".into(), "sa".into(), DEFAULT_AUDIENCE.into());
        assert!(cache.get(&other).is_none(), "tokens are per ServiceAccount");
        cache.put(key.clone(), SecretValue::from("t2"), Duration::ZERO);
        assert!(cache.get(&key).is_none(), "an expired entry is not served");
    }
}
