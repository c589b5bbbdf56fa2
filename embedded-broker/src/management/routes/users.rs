//! `/api/users[/{user}]`: list, show, create or update (clear-text password or
//! a RabbitMQ password hash), delete.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::{Map, Value, json};

use warren_definitions::password;

use super::written;
use crate::management::{Api, ApiError, body};
use crate::state::auth::User;

pub(crate) async fn list(State(api): State<Api>) -> Json<Vec<Value>> {
    Json(api.state.users().iter().map(view).collect())
}

pub(crate) async fn show(State(api): State<Api>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let user = api.state.user(&name).ok_or(ApiError::ObjectNotFound)?;
    Ok(Json(view(&user)))
}

/// Creates or replaces a user. Without `password` or `password_hash` an existing user keeps its
/// hash (so tags can change alone) and a new user gets none (it cannot log in with a password).
pub(crate) async fn put(State(api): State<Api>, Path(name): Path<String>, bytes: Bytes) -> Result<Response, ApiError> {
    let map = body::object(&bytes)?;
    let existing = api.state.user(&name);
    let user = user_from_body(&name, &map, existing.as_ref())?;
    api.state.put_user(user);
    Ok(written(existing.is_none()))
}

pub(crate) async fn remove(State(api): State<Api>, Path(name): Path<String>) -> Result<Response, ApiError> {
    api.state.user(&name).ok_or(ApiError::ObjectNotFound)?;
    api.state.delete_user(&name)?;
    Ok(written(false))
}

/// Builds a user from a `PUT` body or a definitions entry, with RabbitMQ's rules for passwords.
pub(crate) fn user_from_body(name: &str, map: &Map<String, Value>, existing: Option<&User>) -> Result<User, ApiError> {
    let text = |key: &str| map.get(key).and_then(Value::as_str);
    let algorithm = password::resolve(text("hashing_algorithm"), text("password_hash").unwrap_or_default())
        .map_err(|e| ApiError::PasswordHash { problem: e.to_string() })?;
    let tags = match map.get("tags") {
        Some(value) => body::tags(value)?,
        None => existing.map(|u| u.tags.clone()).unwrap_or_default(),
    };
    let (password_hash, algorithm_name) = match (text("password"), text("password_hash")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::PasswordHash {
                problem: "both password and password_hash are given; send one".to_owned(),
            });
        }
        (Some(clear), None) => (password::hash(clear, algorithm), algorithm),
        // An empty hash is a user without a password.
        (None, Some("")) => (String::new(), algorithm),
        (None, Some(hash)) => {
            password::check(hash, algorithm).map_err(|e| ApiError::PasswordHash { problem: e.to_string() })?;
            (hash.to_owned(), algorithm)
        }
        (None, None) => match existing {
            Some(user) => (user.password_hash.clone(), user.hashing_algorithm),
            None => (String::new(), algorithm),
        },
    };
    Ok(User { name: name.to_owned(), password_hash, hashing_algorithm: algorithm_name, tags })
}

/// A user as RabbitMQ lists it (the hash included: `warren` compares passwords through it).
pub(crate) fn view(user: &User) -> Value {
    json!({
        "name": user.name,
        "password_hash": user.password_hash,
        "hashing_algorithm": user.hashing_algorithm.as_str(),
        "tags": user.tags,
        "limits": {},
    })
}
