//! Request parsing: SCIM JSON bodies, query parameters, `If-Match`, and the public base URL.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use scimd_proto::ScimError;
use serde_json::Value;

/// A JSON body sent as `application/scim+json` or `application/json` (any parameters).
pub struct ScimBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for ScimBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let essence = ct.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            if essence != "application/scim+json" && essence != "application/json" {
                return Err(ScimError::new(
                    415,
                    None,
                    format!("unsupported content type '{essence}'; send application/scim+json"),
                )
                .into());
            }
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ScimError::new(413, None, "the request body is larger than this server accepts")
            } else {
                ScimError::invalid_syntax(format!("could not read the request body: {rejection}"))
            }
        })?;
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            ScimError::invalid_syntax(format!("the request body is not valid UTF-8 (byte {})", e.valid_up_to()))
        })?;
        let value: Value = serde_json::from_str(text)
            .map_err(|e| ScimError::invalid_syntax(format!("the request body is not valid JSON: {e}")))?;
        Ok(ScimBody(value))
    }
}

/// Query parameters with case-insensitive names (`startIndex`, `startindex`, …); of a name
/// given twice, the last. (A handful of pairs: found by a scan, without hashing or lowering.)
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }
    pub fn owned(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_string)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let pairs: Vec<(String, String)> = serde_urlencoded_pairs(query)
            .map_err(|e| ScimError::invalid_value(format!("malformed query string: {e}")))?;
        Ok(Params(pairs))
    }
}

/// Decodes `application/x-www-form-urlencoded` query text.
fn serde_urlencoded_pairs(query: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.push((percent_decode(k)?, percent_decode(v)?));
    }
    Ok(out)
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => return Err(format!("bad percent-escape at byte {i}")),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "the query string is not valid UTF-8".to_string())
}

/// `If-Match` as a version: None when absent or `*`.
pub struct IfMatch(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let text = value.to_str().unwrap_or("").trim();
        if text == "*" {
            return Ok(IfMatch(None));
        }
        // An ETag this server never issued can match nothing: the precondition fails.
        match scimd_proto::resource::parse_etag(text) {
            Some(v) => Ok(IfMatch(Some(v))),
            None => {
                Err(ScimError::precondition_failed(format!("If-Match '{text}' matches no version of this resource"))
                    .into())
            }
        }
    }
}

/// The public URL of the SCIM root: the configured `base_url`, or else the request's
/// host and the path the router is mounted under.
pub struct BaseUrl(pub String);

#[derive(Clone, Debug, Default)]
pub struct ConfiguredBase(pub Option<String>);

/// A path parameter by name (percent-decoded), whatever other parameters the path the
/// router is mounted under has.
async fn path_param(parts: &mut Parts, name: &str) -> Option<String> {
    let params = axum::extract::RawPathParams::from_request_parts(parts, &()).await.ok()?;
    params.iter().find(|(n, _)| *n == name).map(|(_, value)| value.to_string())
}

/// The `{tenant}` of the path the router is mounted under, if it has one.
pub async fn url_tenant(parts: &mut Parts) -> Option<String> {
    path_param(parts, "tenant").await
}

/// The `{id}` of a resource's URL. (`Path<String>` would refuse a route under
/// `/t/{tenant}`, which has two parameters.)
pub struct Id(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // An id that is not UTF-8 once decoded names nothing here.
        path_param(parts, "id").await.map(Id).ok_or_else(|| ScimError::not_found("no such resource").into())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for BaseUrl {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ConfiguredBase(Some(base))) = parts.extensions.get::<ConfiguredBase>().cloned() {
            return Ok(BaseUrl(match url_tenant(parts).await {
                Some(tenant) => base.replace("{tenant}", &tenant),
                None => base,
            }));
        }
        let original =
            OriginalUri::from_request_parts(parts, state).await.map(|o| o.0).unwrap_or_else(|_| parts.uri.clone());
        let prefix = original.path().strip_suffix(parts.uri.path()).unwrap_or("").trim_end_matches('/').to_string();
        let host = parts.headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
        let scheme = parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .filter(|s| *s == "https")
            .unwrap_or("http");
        Ok(BaseUrl([scheme, "://", host, &prefix].concat()))
    }
}

/// The authenticated caller, the public URL its responses refer to, and the request's id
/// (`x-request-id`, as a request-id layer sets it), if any.
pub struct Caller {
    pub principal: crate::auth::Principal,
    pub base_url: String,
    pub request_id: Option<String>,
}

impl Caller {
    pub fn ctx(&self) -> scimd_core::Ctx<'_> {
        scimd_core::Ctx {
            tenant: &self.principal.tenant,
            base_url: &self.base_url,
            delete_policy: self.principal.settings.delete_policy,
            request_id: self.request_id.as_deref(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let principal = parts
            .extensions
            .remove::<crate::auth::Principal>()
            .ok_or_else(|| ApiError::Internal("the authentication layer is missing".into()))?;
        let BaseUrl(base_url) = BaseUrl::from_request_parts(parts, state).await?;
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.len() <= 200)
            .map(str::to_string);
        Ok(Caller { principal, base_url, request_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parameter_is_found_by_any_case_and_the_last_of_a_name_counts() {
        let p = Params(serde_urlencoded_pairs("startIndex=1&COUNT=5&startindex=3").unwrap());
        assert_eq!(p.get("startIndex"), Some("3"));
        assert_eq!(p.get("count"), Some("5"));
        assert_eq!(p.get("filter"), None);
    }

    #[test]
    fn decodes_queries_like_browsers_and_identity_providers() {
        let pairs = serde_urlencoded_pairs("filter=userName%20eq%20%22a%2Bb%40x.com%22&count=10&x").unwrap();
        assert_eq!(pairs[0].1, "userName eq \"a+b@x.com\"");
        assert_eq!(pairs[1], ("count".into(), "10".into()));
        assert_eq!(pairs[2], ("x".into(), "".into()));
        assert_eq!(serde_urlencoded_pairs("a=b+c").unwrap()[0].1, "b c");
        assert!(serde_urlencoded_pairs("a=%zz").is_err());
        assert!(serde_urlencoded_pairs("a=%ff").is_err());
    }
}
