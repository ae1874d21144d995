//! Who SecretSync is to AWS: an access key from the credentials Secret, or a role assumed with the store's
//! ServiceAccount token (STS `AssumeRoleWithWebIdentity`, as EKS does), and the SigV4 signature of each attempt.

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use chrono::{DateTime, Utc};
use reqwest::Method;
use zeroize::Zeroizing;

use super::super::kit::store_id::StoreId;
use super::super::kit::token_cache::TokenCache;
use super::super::kit::{Auth, Endpoint, Exchange, Idempotency, Pace, Reply, Transport, Verdict};
use crate::dialects::DialectError;
use crate::dialects::kit::credentials;

/// A key pair, with the session token of temporary credentials.
pub struct Keys {
    pub access_key_id: Zeroizing<String>,
    pub secret_access_key: Zeroizing<String>,
    pub session_token: Option<Zeroizing<String>>,
}

/// SigV4 for one service and region: each attempt is signed afresh, with its own time.
pub struct SigV4 {
    pub keys: Arc<Keys>,
    pub region: String,
    pub service: &'static str,
}

impl SigV4 {
    /// The headers the signature adds (`authorization`, `x-amz-date`, `x-amz-security-token`), for a request with
    /// `headers` (besides the host, which the signer takes from `url`).
    pub fn headers(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        time: SystemTime,
    ) -> Result<Vec<(String, String)>, DialectError> {
        let refused = |what: &str| {
            DialectError::credentials(
                "InvalidCredentials",
                format!("the request cannot be signed with these credentials ({what})"),
            )
        };
        let keys = &self.keys;
        let identity = aws_credential_types::Credentials::new(
            keys.access_key_id.as_str(),
            keys.secret_access_key.as_str(),
            keys.session_token.as_deref().map(|t| t.to_string()),
            None,
            "secretsync",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(self.service)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|_| refused("signing parameters"))?
            .into();
        let signable = SignableRequest::new(
            method,
            url,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .map_err(|_| refused("request"))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|_| refused("signature"))?
            .into_parts();
        Ok(instructions
            .headers()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect())
    }
}

#[async_trait]
impl Auth for SigV4 {
    async fn authorize(
        &self,
        mut request: reqwest::RequestBuilder,
        exchange: &Exchange<'_>,
    ) -> Result<reqwest::RequestBuilder, DialectError> {
        let (content_type, body) = exchange.body.unwrap_or(("application/json", &[]));
        let mut signed: Vec<(&str, &str)> = vec![("content-type", content_type)];
        signed.extend(exchange.headers.iter().copied());
        let url = exchange.url;
        for (name, value) in self.headers(
            exchange.method.as_str(),
            url,
            &signed,
            body,
            SystemTime::now(),
        )? {
            request = request.header(name, value);
        }
        Ok(request)
    }
}

/// The key pair of the credentials Secret: `accessKeyId`, `secretAccessKey`, optional `sessionToken`.
pub fn static_keys(creds: &crate::value::Credentials) -> Result<Keys, DialectError> {
    let text = |key: &str| -> Result<Option<Zeroizing<String>>, DialectError> {
        Ok(credentials::ascii(creds, key)?.map(|t| Zeroizing::new(t.to_owned())))
    };
    Ok(Keys {
        access_key_id: text("accessKeyId")?.ok_or_else(|| {
            credentials::missing("accessKeyId", "the access key ID of an IAM user or role")
        })?,
        secret_access_key: text("secretAccessKey")?
            .ok_or_else(|| credentials::missing("secretAccessKey", "the secret access key"))?,
        session_token: text("sessionToken")?,
    })
}

/// How long before their expiry assumed-role credentials are renewed.
const RENEW_BEFORE: chrono::TimeDelta = chrono::TimeDelta::minutes(5);
/// The lifetime asked for (STS's default; a role may allow up to 12 hours).
const SESSION_SECONDS: u32 = 3600;

/// Assumed-role credentials per store and role, shared by every SecretSync of the store.
pub type Sessions = TokenCache<Keys>;

/// Where and as whom one web-identity exchange goes.
pub struct WebIdentity<'a> {
    pub store: &'a StoreId,
    pub role_arn: &'a str,
    pub sts_url: &'a str,
    pub token: &'a str,
    pub client: &'a reqwest::Client,
}

/// The role's credentials: cached ones until [`RENEW_BEFORE`] their expiry, else fresh ones from STS (one
/// exchange at a time per store and role).
pub async fn assume_role(
    sessions: &Sessions,
    sts: &Transport,
    who: &WebIdentity<'_>,
) -> Result<Arc<Keys>, DialectError> {
    let key = format!("{}|{}|{}", who.store.store_key(), who.role_arn, who.sts_url);
    sessions
        .get_or_fetch(&key, || async {
            let body = Zeroizing::new(
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("Action", "AssumeRoleWithWebIdentity")
                    .append_pair("Version", "2011-06-15")
                    .append_pair("RoleArn", who.role_arn)
                    .append_pair("RoleSessionName", "secretsync")
                    .append_pair("DurationSeconds", &SESSION_SECONDS.to_string())
                    .append_pair("WebIdentityToken", who.token)
                    .finish(),
            );
            let method = Method::POST;
            // A repeat asks for another session with the same token: nothing is done twice.
            let exchange = Exchange::new("AssumeRoleWithWebIdentity", &method, who.sts_url)
                .body("application/x-www-form-urlencoded", body.as_bytes())
                .accept("text/xml")
                .idempotency(Idempotency::Idempotent);
            let endpoint = Endpoint {
                client: who.client,
                pace: Pace::Store {
                    key: who.sts_url,
                    rate: None,
                },
                auth: &super::super::kit::NoAuth,
            };
            let reply = sts.send(&endpoint, &exchange).await?;
            let (keys, expires) = parse_session(&reply.body)?;
            let renew_in = (expires - RENEW_BEFORE - Utc::now())
                .to_std()
                .unwrap_or_default();
            Ok((keys, renew_in))
        })
        .await
}

/// The text of the first `<tag>…</tag>` in `xml` (STS's answers hold each credential field once; an XML error, one
/// `<Code>`).
pub(super) fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let len = xml[start..].find(&format!("</{tag}>"))?;
    Some(xml[start..start + len].trim())
}

/// The credentials and their expiry from an `AssumeRoleWithWebIdentity` answer.
pub fn parse_session(body: &[u8]) -> Result<(Keys, DateTime<Utc>), DialectError> {
    let bad = || {
        DialectError::retry(
            "BadResponse",
            "STS AssumeRoleWithWebIdentity: the answer holds no credentials",
        )
    };
    let xml = std::str::from_utf8(body).map_err(|_| bad())?;
    let field = |tag| {
        element(xml, tag)
            .filter(|v| !v.is_empty())
            .map(|v| Zeroizing::new(v.to_owned()))
            .ok_or_else(bad)
    };
    let expires = element(xml, "Expiration")
        .and_then(|e| DateTime::parse_from_rfc3339(e).ok())
        .map(|e| e.with_timezone(&Utc))
        .ok_or_else(bad)?;
    Ok((
        Keys {
            access_key_id: field("AccessKeyId")?,
            secret_access_key: field("SecretAccessKey")?,
            session_token: Some(field("SessionToken")?),
        },
        expires,
    ))
}

/// STS's documented error codes that may be shown.
const STS_CODES: &[&str] = &[
    "InvalidIdentityToken",
    "ExpiredTokenException",
    "IDPRejectedClaim",
    "IDPCommunicationError",
    "AccessDenied",
    "InvalidParameterValue",
    "MalformedPolicyDocument",
    "PackedPolicyTooLarge",
    "RegionDisabledException",
    "Throttling",
];

/// STS's reading of an answer (XML, `<Error><Code>`): a token or role it refuses is a credentials error; its own
/// trouble, throttling and 5xx are retried.
pub fn decode_sts(reply: &Reply) -> Verdict {
    if reply.ok() {
        return Verdict::Success;
    }
    let code = std::str::from_utf8(&reply.body)
        .ok()
        .and_then(|xml| element(xml, "Code"))
        .and_then(|c| super::super::kit::text::known_code(c, STS_CODES));
    let message = match code {
        Some(code) => format!("STS AssumeRoleWithWebIdentity answered {code}"),
        None => format!(
            "STS AssumeRoleWithWebIdentity answered HTTP {}",
            reply.status
        ),
    };
    Verdict::Error(match (code, reply.status) {
        (Some("IDPCommunicationError"), _) => DialectError::retry("IdentityProviderError", message),
        (Some("Throttling"), _) | (_, 429) => {
            DialectError::retry(super::super::kit::retry::THROTTLED, message)
                .with_retry_after(reply.retry_after())
        }
        (_, 500..=599) => {
            DialectError::retry("BackendError", message).with_retry_after(reply.retry_after())
        }
        (_, 300..=399) => DialectError::redirected(reply.status),
        _ => DialectError::credentials("WebIdentityRefused", message),
    })
}
