//! The request flow of one resolution: HEAD (or GET), answer a 401
//! challenge once, wait out one 429 when the deadline allows.

use std::time::{Duration, Instant};

use base64::{Engine, engine::general_purpose::STANDARD};
use reqwest::{Method, Response, StatusCode, header};
use serde::Deserialize;

use super::{
    ACCEPT, MANIFEST_LIMIT, RegistryClient, TokenKey, lock, pick, sha256_digest, valid_digest,
};
use crate::pin::{
    challenge::{Challenge, parse_retry_after, parse_www_authenticate},
    error::ResolveError,
    pullsecret::Credential,
    reference::Reference,
};

/// Longest a token is reused, whatever the token service says.
const TOKEN_REUSE_MAX: Duration = Duration::from_secs(300);

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl RegistryClient {
    pub(super) async fn resolve(
        &self,
        r: &Reference,
        credential: Option<&Credential>,
        deadline: Instant,
    ) -> Result<String, ResolveError> {
        let url = format!(
            "{}/v2/{}/manifests/{}",
            self.base_url(r),
            r.repository(),
            r.tag_or_latest()
        );
        let key = TokenKey {
            registry: r.registry().to_owned(),
            repository: r.repository().to_owned(),
            credential: credential.map_or_else(|| "anonymous".to_owned(), Credential::identity),
        };
        let mut auth = self.cached_token(&key);
        let mut method = Method::HEAD;
        let (mut challenged, mut waited) = (false, false);
        for _ in 0..5 {
            let response = self.send(r, method.clone(), &url, auth.as_deref()).await?;
            match response.status() {
                s if s.is_success() => {
                    if let Some(digest) = header_digest(&response) {
                        return checked(r, digest);
                    }
                    if method == Method::HEAD {
                        method = Method::GET;
                        continue;
                    }
                    return Ok(sha256_digest(&read_limited(r, response).await?));
                }
                StatusCode::UNAUTHORIZED if !challenged => {
                    challenged = true;
                    let challenges =
                        parse_www_authenticate(header_str(&response, header::WWW_AUTHENTICATE));
                    auth = Some(
                        self.authorize(r, credential, &challenges, key.clone())
                            .await?,
                    );
                }
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    return Err(refused(r, credential, response.status()));
                }
                StatusCode::NOT_FOUND => {
                    return Err(ResolveError::NotFound {
                        registry: r.registry().to_owned(),
                        repository: r.repository().to_owned(),
                        tag: r.tag_or_latest().to_owned(),
                    });
                }
                StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED
                    if method == Method::HEAD =>
                {
                    method = Method::GET;
                }
                StatusCode::TOO_MANY_REQUESTS => {
                    let wait = parse_retry_after(
                        header_str(&response, header::RETRY_AFTER),
                        jiff::Timestamp::now(),
                    );
                    match wait {
                        Some(wait) if !waited && Instant::now() + wait < deadline => {
                            waited = true;
                            tokio::time::sleep(wait).await;
                        }
                        _ => {
                            return Err(ResolveError::RateLimited {
                                registry: r.registry().to_owned(),
                                retry_after: wait,
                            });
                        }
                    }
                }
                // Some proxies fail HEAD only; GET also brings the error body.
                _ if method == Method::HEAD => method = Method::GET,
                status => return Err(unexpected(r, status, response).await),
            }
        }
        Err(ResolveError::Protocol {
            registry: r.registry().to_owned(),
            detail: "no digest after five round trips".into(),
        })
    }

    async fn send(
        &self,
        r: &Reference,
        method: Method,
        url: &str,
        auth: Option<&str>,
    ) -> Result<Response, ResolveError> {
        let mut request = self
            .client(r.registry())
            .request(method, url)
            .header(header::ACCEPT, ACCEPT);
        if let Some(auth) = auth {
            request = request.header(header::AUTHORIZATION, auth);
        }
        request.send().await.map_err(|e| transport(r, &e))
    }

    fn cached_token(&self, key: &TokenKey) -> Option<String> {
        let mut tokens = lock(&self.tokens);
        match tokens.get(key) {
            Some((token, until)) if *until > Instant::now() => Some(token.clone()),
            _ => None,
        }
    }

    /// The Authorization header answering the registry's challenge.
    async fn authorize(
        &self,
        r: &Reference,
        credential: Option<&Credential>,
        challenges: &[Challenge],
        key: TokenKey,
    ) -> Result<String, ResolveError> {
        match pick(challenges) {
            Some(c) if c.scheme == "bearer" => {
                let (token, reuse) = self.token(r, credential, c).await?;
                let header = format!("Bearer {token}");
                lock(&self.tokens).put(key, (header.clone(), Instant::now() + reuse));
                Ok(header)
            }
            Some(_) => match credential {
                Some(c) => Ok(basic(c)),
                None => Err(refused(r, None, StatusCode::UNAUTHORIZED)),
            },
            None => Err(ResolveError::Protocol {
                registry: r.registry().to_owned(),
                detail: "answered 401 without a usable WWW-Authenticate challenge".into(),
            }),
        }
    }

    /// A pull token from the challenge's realm.
    async fn token(
        &self,
        r: &Reference,
        credential: Option<&Credential>,
        challenge: &Challenge,
    ) -> Result<(String, Duration), ResolveError> {
        let protocol = |detail: String| ResolveError::Protocol {
            registry: r.registry().to_owned(),
            detail,
        };
        let realm = challenge
            .param("realm")
            .ok_or_else(|| protocol("bearer challenge without a realm".into()))?;
        let mut url = reqwest::Url::parse(realm)
            .map_err(|e| protocol(format!("token realm {realm:?}: {e}")))?;
        let plain_ok = url.scheme() == "http" && self.is_plain_http(r.registry());
        if url.scheme() != "https" && !plain_ok {
            return Err(protocol(format!("token realm {realm} is not HTTPS")));
        }
        let scope = format!("repository:{}:pull", r.repository());
        let client = self.client(r.registry());
        let request = match credential {
            Some(Credential::IdentityToken { token, .. }) => {
                let mut form = reqwest::Url::parse("http://form.invalid/")
                    .map_err(|e| protocol(e.to_string()))?;
                form.query_pairs_mut()
                    .append_pair("grant_type", "refresh_token")
                    .append_pair("service", challenge.param("service").unwrap_or(""))
                    .append_pair("scope", &scope)
                    .append_pair("client_id", "gitops-guard")
                    .append_pair("refresh_token", token);
                client
                    .post(url)
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(form.query().unwrap_or("").to_owned())
            }
            other => {
                {
                    let mut query = url.query_pairs_mut();
                    if let Some(service) = challenge.param("service") {
                        query.append_pair("service", service);
                    }
                    query.append_pair("scope", &scope);
                }
                let request = client.get(url);
                match other {
                    Some(c) => request.header(header::AUTHORIZATION, basic(c)),
                    None => request,
                }
            }
        };
        let response = request.send().await.map_err(|e| transport(r, &e))?;
        match response.status() {
            s if s.is_success() => {}
            s @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                return Err(refused(r, credential, s));
            }
            s => return Err(unexpected(r, s, response).await),
        }
        let answer: TokenAnswer = response
            .json()
            .await
            .map_err(|e| protocol(format!("token answer: {e}")))?;
        let token = answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| protocol("token answer without a token".into()))?;
        // Reuse a token for most of its life (the default life is 60 s).
        let life = Duration::from_secs(answer.expires_in.unwrap_or(60));
        Ok((token, (life * 3 / 4).min(TOKEN_REUSE_MAX)))
    }
}

fn user_of(c: &Credential) -> &str {
    match c {
        Credential::Basic { username, .. } | Credential::IdentityToken { username, .. } => username,
    }
}

fn basic(c: &Credential) -> String {
    let (user, secret) = match c {
        Credential::Basic { username, password } => (username, password),
        Credential::IdentityToken { username, token } => (username, token),
    };
    format!("Basic {}", STANDARD.encode(format!("{user}:{secret}")))
}

fn header_str(response: &Response, name: header::HeaderName) -> &str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn header_digest(response: &Response) -> Option<String> {
    let value = header_str(
        response,
        header::HeaderName::from_static("docker-content-digest"),
    );
    (!value.is_empty()).then(|| value.trim().to_owned())
}

fn checked(r: &Reference, digest: String) -> Result<String, ResolveError> {
    if valid_digest(&digest) {
        Ok(digest)
    } else {
        Err(ResolveError::Protocol {
            registry: r.registry().to_owned(),
            detail: format!("Docker-Content-Digest {digest:?} is not a digest"),
        })
    }
}

async fn read_limited(r: &Reference, mut response: Response) -> Result<Vec<u8>, ResolveError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| transport(r, &e))? {
        if body.len() + chunk.len() > MANIFEST_LIMIT {
            return Err(ResolveError::Protocol {
                registry: r.registry().to_owned(),
                detail: "manifest larger than 4 MiB".into(),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn refused(r: &Reference, credential: Option<&Credential>, status: StatusCode) -> ResolveError {
    let detail = match credential {
        None => format!(
            "HTTP {}: anonymous access refused and no pull secret has credentials for {}",
            status.as_u16(),
            r.registry()
        ),
        Some(c) => format!(
            "HTTP {}: the pull secret's credentials for user {:?} were refused",
            status.as_u16(),
            user_of(c)
        ),
    };
    ResolveError::Unauthorized {
        registry: r.registry().to_owned(),
        repository: r.repository().to_owned(),
        detail,
    }
}

async fn unexpected(r: &Reference, status: StatusCode, response: Response) -> ResolveError {
    let body = response.text().await.unwrap_or_default();
    let detail: String = body.chars().take(200).collect();
    ResolveError::Status {
        registry: r.registry().to_owned(),
        status: status.as_u16(),
        detail: detail.trim().to_owned(),
    }
}

fn transport(r: &Reference, e: &reqwest::Error) -> ResolveError {
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        detail = cause.to_string();
        source = cause.source();
    }
    ResolveError::Unreachable {
        registry: r.registry().to_owned(),
        detail,
    }
}
