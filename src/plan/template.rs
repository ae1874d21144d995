//! `spec.template` (issue #30's building block): values composed from a Secret's keys (a connection URL from a
//! user and a password), rendered before `data[]` selects keys. Pure.
//!
//! minijinja, with no loader (no `include` or `import` of files), no environment or network access, a fuel
//! budget that bounds the work of one rendering and a bound on what it writes. The keys are `data` in the
//! template: `postgres://{{ data.user }}:{{ data.password | uri_component }}@db:5432/app` (`data["tls.crt"]` for
//! keys that are not names). An error names the template key and the line, never a value: minijinja's own
//! messages can quote what they were rendering.

use std::collections::BTreeMap;

use crate::value::SecretValue;

/// The most the templates of one Secret may write together.
pub const MAX_OUTPUT: usize = 1 << 20;
/// The work one rendering may do (minijinja's fuel: about one unit per instruction).
const FUEL: u64 = 200_000;

/// Whether the rendered keys replace the source's keys or join them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Merge {
    /// Only the templated keys.
    #[default]
    Replace,
    /// The source's keys, with the templated ones added (or replacing those of the same name).
    Merge,
}

/// Why a template could not be rendered: the template key, the line and what kind of error, never a value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("spec.template.data[{key:?}]{at}: {what}")]
pub struct TemplateError {
    pub key: String,
    at: String,
    what: String,
}

impl TemplateError {
    fn new(key: &str, err: Option<&minijinja::Error>, what: impl Into<String>) -> Self {
        let at = err
            .and_then(minijinja::Error::line)
            .map(|l| format!(" line {l}"))
            .unwrap_or_default();
        TemplateError {
            key: key.to_owned(),
            at,
            what: what.into(),
        }
    }

    fn of(key: &str, err: &minijinja::Error) -> Self {
        use minijinja::ErrorKind as K;
        let what = match err.kind() {
            K::SyntaxError => "the template does not parse",
            K::UndefinedError => "it uses a key or variable that is not there",
            K::UnknownFilter => "it uses an unknown filter",
            K::UnknownTest => "it uses an unknown test",
            K::UnknownFunction => "it uses an unknown function",
            K::UnknownMethod => "it uses an unknown method",
            K::OutOfFuel => "it does too much work",
            K::TemplateNotFound => "templates cannot include or import others",
            K::InvalidOperation => "it uses an operation on a value that does not support it",
            K::TooManyArguments | K::MissingArgument => "a call has the wrong number of arguments",
            K::BadEscape => "it has a bad escape sequence",
            _ => "it cannot be rendered",
        };
        TemplateError::new(key, Some(err), what)
    }
}

/// Renders each template of `templates` over `data` (text keys only; a key that is not UTF-8 is left out, and a
/// template that uses it fails as undefined), then merges by `merge`.
pub fn render(
    templates: &BTreeMap<String, String>,
    data: &BTreeMap<String, SecretValue>,
    merge: Merge,
) -> Result<BTreeMap<String, SecretValue>, TemplateError> {
    let mut env = minijinja::Environment::new();
    env.set_fuel(Some(FUEL));
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_filter("uri_component", uri_component);
    // minijinja holds what it renders in its own values, which are not wiped: they live only as long as this call.
    let text: BTreeMap<String, String> = data
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.expose_str()?.to_owned())))
        .collect();
    let ctx = minijinja::context! { data => text };
    let mut out = match merge {
        Merge::Replace => BTreeMap::new(),
        Merge::Merge => data.clone(),
    };
    let mut left = MAX_OUTPUT;
    for (key, source) in templates {
        let template = env
            .template_from_str(source)
            .map_err(|e| TemplateError::of(key, &e))?;
        let mut rendered = Bounded(zeroize::Zeroizing::new(Vec::new()), left);
        template
            .render_captured_to(&ctx, &mut rendered)
            .map(drop)
            .map_err(|e| match e.kind() {
                minijinja::ErrorKind::WriteFailure => TemplateError::new(
                    key,
                    None,
                    format!("the templates write more than {MAX_OUTPUT} bytes"),
                ),
                _ => TemplateError::of(key, &e),
            })?;
        left -= rendered.0.len();
        out.insert(
            key.clone(),
            SecretValue::new(std::mem::take(&mut *rendered.0)),
        );
    }
    Ok(out)
}

/// Percent-encodes all but the unreserved characters (RFC 3986), as a user name or password inside a URL needs:
/// the `urlencode` filter leaves `/` as it is.
fn uri_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// A buffer that refuses to grow past what is left of [`MAX_OUTPUT`] and is wiped when dropped.
struct Bounded(zeroize::Zeroizing<Vec<u8>>, usize);

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > self.1 {
            return Err(std::io::Error::other("template output bound"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
