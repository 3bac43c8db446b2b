//! Bearer tokens and roles (SPEC §5): the roles file is a CSV
//! `bearer_token,role`; any listed bearer may read `/v1/segments`, only role
//! [`CRM`] may read `/v1/customers`.
//!
//! Bearer tokens are kept as SHA-256 digests, so the time a lookup takes says
//! nothing about how much of a valid token a caller guessed, and the secrets
//! never sit in memory in the clear. No error message prints a bearer token.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::source::csv_table::{field, read_csv, SourceError};

/// The role that may read the CRM's 360 view.
pub const CRM: &str = "crm";

/// Why a roles file is refused.
#[derive(Debug, thiserror::Error)]
pub enum RolesError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("roles file {path}:{line}: {message}")]
    Row {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("roles file {path} does not exist")]
    Missing { path: PathBuf },
    #[error("roles file {path}: no column `{column}` (the header must be bearer_token,role)")]
    MissingColumn { path: PathBuf, column: String },
    #[error("roles file {path} lists no bearer token")]
    Empty { path: PathBuf },
}

/// Why a request is refused before it reaches the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No `Authorization: Bearer …` header (401).
    Missing,
    /// A bearer token not in the roles file (401).
    Unknown,
    /// A known bearer without the role the route needs (403).
    Forbidden,
}

/// Bearer token digest → role.
#[derive(Debug, Default)]
pub struct Roles {
    by_digest: HashMap<[u8; 32], Box<str>>,
}

fn digest(bearer: &str) -> [u8; 32] {
    Sha256::digest(bearer.as_bytes()).into()
}

impl Roles {
    /// Reads a roles file: header `bearer_token,role` (extra columns ignored),
    /// both non-empty in every row, each bearer token once, at least one row.
    pub fn load(path: &Path) -> Result<Roles, RolesError> {
        let dir = path.parent().unwrap_or(Path::new(""));
        let rel = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let table = read_csv(dir, &rel, &["bearer_token", "role"], |r| {
            Ok((
                field::required(r.get(0), "bearer_token")?.to_string(),
                field::required(r.get(1), "role")?.to_string(),
            ))
        })
        .map_err(|e| match e {
            // Its message quotes the header line: a file without a header
            // would print a bearer token.
            SourceError::MissingColumn { path, column, .. } => {
                RolesError::MissingColumn { path, column }
            }
            SourceError::MissingFile { path } => RolesError::Missing { path },
            e => e.into(),
        })?;
        let row_error = |line, message: String| RolesError::Row {
            path: path.to_path_buf(),
            line,
            message,
        };
        // Report a bad row by reason only: the raw row holds a secret.
        if let Some(d) = table.dead.first() {
            return Err(row_error(d.line, d.reason.to_string()));
        }
        let mut roles = Roles::default();
        for (line, (bearer, role)) in table.rows {
            if !roles.insert(&bearer, &role) {
                return Err(row_error(line, "bearer token listed twice".into()));
            }
        }
        if roles.by_digest.is_empty() {
            return Err(RolesError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(roles)
    }

    /// Roles from `(bearer_token, role)` pairs (tests, benchmarks, embedding);
    /// a repeated bearer keeps its first role.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Roles {
        let mut roles = Roles::default();
        for (bearer, role) in pairs {
            roles.insert(bearer, role);
        }
        roles
    }

    /// Adds a bearer; false if it is already listed.
    fn insert(&mut self, bearer: &str, role: &str) -> bool {
        let d = digest(bearer);
        if self.by_digest.contains_key(&d) {
            return false;
        }
        self.by_digest.insert(d, role.into());
        true
    }

    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// The role of a bearer token, if it is listed.
    pub fn role_of(&self, bearer: &str) -> Option<&str> {
        self.by_digest.get(&digest(bearer)).map(|r| &**r)
    }

    /// Checks an `Authorization` header value: the bearer must be listed and,
    /// when `need` is given, have that role.
    pub fn authorize(
        &self,
        authorization: Option<&[u8]>,
        need: Option<&str>,
    ) -> Result<(), Denied> {
        let bearer = authorization
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(bearer_of)
            .ok_or(Denied::Missing)?;
        let role = self.role_of(bearer).ok_or(Denied::Unknown)?;
        match need {
            Some(need) if need != role => Err(Denied::Forbidden),
            _ => Ok(()),
        }
    }
}

/// The token of `Bearer <token>` (scheme case-insensitive, RFC 6750), if any.
fn bearer_of(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_forms() {
        assert_eq!(bearer_of("Bearer abc"), Some("abc"));
        assert_eq!(bearer_of("bearer  abc "), Some("abc"));
        assert_eq!(bearer_of("Basic abc"), None);
        assert_eq!(bearer_of("Bearer "), None);
        assert_eq!(bearer_of("abc"), None);
    }

    #[test]
    fn roles_decide_401_and_403() {
        let roles = Roles::from_pairs([("k-crm", CRM), ("k-an", "analyst")]);
        let auth = |h: Option<&str>, need| roles.authorize(h.map(str::as_bytes), need);
        assert_eq!(auth(None, None), Err(Denied::Missing));
        assert_eq!(auth(Some("Bearer nope"), None), Err(Denied::Unknown));
        assert_eq!(auth(Some("Bearer k-an"), None), Ok(()));
        assert_eq!(auth(Some("Bearer k-an"), Some(CRM)), Err(Denied::Forbidden));
        assert_eq!(auth(Some("Bearer k-crm"), Some(CRM)), Ok(()));
    }
}
