//! RabbitMQ's listing parameters, applied to every list the API answers with: `sort` (a dotted
//! key, `message_stats.publish`) and `sort_reverse`, `columns` (dotted keys to keep), and with
//! `?page=N` (and optionally `page_size`, `name`, `use_regex`) one page wrapped in counts;
//! without `page` the answer stays the plain list, as in RabbitMQ.
//!
//! One middleware ([`lists`]) does it for every `GET` that answers with a JSON array, so a
//! handler only builds its list.

use std::cmp::Ordering;
use std::collections::HashMap;

use axum::extract::{Query, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::management::ApiError;

/// The largest list answer the middleware reads back to sort and cut it.
const MAX_LIST_BYTES: usize = 256 << 20;

/// The query parameters that shape a list.
const LIST_PARAMETERS: [&str; 4] = ["page", "sort", "sort_reverse", "columns"];

/// Sorts, cuts into pages and keeps the asked columns of every list a `GET` answers.
pub(crate) async fn lists(request: Request, next: Next) -> Result<Response, ApiError> {
    if request.method() != Method::GET {
        return Ok(next.run(request).await);
    }
    let query: HashMap<String, String> = Query::try_from_uri(request.uri()).map(|Query(q)| q).unwrap_or_default();
    if !LIST_PARAMETERS.iter().any(|p| query.contains_key(*p)) {
        return Ok(next.run(request).await);
    }
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if response.status() != StatusCode::OK || !is_json {
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_LIST_BYTES).await.unwrap_or_default();
    let items = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Array(items)) => items,
        _ => return Ok(Response::from_parts(parts, axum::body::Body::from(bytes))),
    };
    Ok(axum::Json(listing(items, &query)?).into_response())
}

/// RabbitMQ's default and largest page sizes.
const DEFAULT_PAGE_SIZE: u64 = 100;
const MAX_PAGE_SIZE: u64 = 500;

/// The listing as RabbitMQ answers for these query parameters.
pub(crate) fn listing(mut items: Vec<Value>, query: &HashMap<String, String>) -> Result<Value, ApiError> {
    if let Some(key) = query.get("sort").filter(|k| !k.is_empty()) {
        let path: Vec<&str> = key.split('.').collect();
        items.sort_by(|a, b| compare(at(a, &path), at(b, &path)));
    }
    if query.get("sort_reverse").is_some_and(|v| v == "true") {
        items.reverse();
    }
    if let Some(columns) = query.get("columns").filter(|c| !c.is_empty()) {
        let paths: Vec<Vec<&str>> = columns.split(',').map(|c| c.trim().split('.').collect()).collect();
        items = items.iter().map(|item| keep_columns(item, &paths)).collect();
    }
    let Some(page_text) = query.get("page") else {
        return Ok(Value::Array(items));
    };
    let size_text = query.get("page_size").cloned();
    let invalid = || ApiError::InvalidPagination {
        page: page_text.clone(),
        size: size_text.clone().unwrap_or_else(|| "undefined".to_owned()),
    };
    let page: u64 = page_text.parse().map_err(|_| invalid())?;
    let size: u64 = match &size_text {
        Some(text) => text.parse().map_err(|_| invalid())?,
        None => DEFAULT_PAGE_SIZE,
    };
    if page == 0 || size == 0 || size > MAX_PAGE_SIZE {
        return Err(invalid());
    }
    let total = items.len();
    let filtered: Vec<Value> = match query.get("name").filter(|n| !n.is_empty()) {
        None => items,
        Some(name) => {
            let use_regex = query.get("use_regex").is_some_and(|v| v == "true");
            let matches = name_filter(name, use_regex)?;
            items.into_iter().filter(|item| item["name"].as_str().is_some_and(&matches)).collect()
        }
    };
    let len = filtered.len();
    let page_count = len.div_ceil(size as usize);
    if page as usize > page_count.max(1) {
        return Err(ApiError::PageOutOfRange { page, size, len });
    }
    let items: Vec<Value> = filtered.into_iter().skip(((page - 1) * size) as usize).take(size as usize).collect();
    Ok(json!({
        "filtered_count": len,
        "item_count": items.len(),
        "items": items,
        "page": page,
        "page_count": page_count,
        "page_size": size,
        "total_count": total,
    }))
}

/// The value at a dotted path (`None` where it is missing).
fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

/// RabbitMQ's order for sorting: missing values first, then numbers, then text by bytes.
fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    fn rank(v: Option<&Value>) -> u8 {
        match v {
            None | Some(Value::Null) => 0,
            Some(Value::Bool(_)) => 1,
            Some(Value::Number(_)) => 2,
            Some(Value::String(_)) => 3,
            Some(Value::Array(_)) => 4,
            Some(Value::Object(_)) => 5,
        }
    }
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            x.as_f64().unwrap_or(0.0).total_cmp(&y.as_f64().unwrap_or(0.0))
        }
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// The item with only the given dotted paths; a path whose end is missing keeps the objects
/// on the way, as RabbitMQ answers `columns=arguments.x` with `"arguments": {}`.
fn keep_columns(item: &Value, paths: &[Vec<&str>]) -> Value {
    let mut out = Map::new();
    for path in paths {
        copy_path(item, path, &mut out);
    }
    Value::Object(out)
}

fn copy_path(from: &Value, path: &[&str], into: &mut Map<String, Value>) {
    let Some((first, rest)) = path.split_first() else { return };
    let Some(value) = from.get(first) else { return };
    if rest.is_empty() || !value.is_object() {
        if rest.is_empty() {
            into.insert((*first).to_owned(), value.clone());
        }
        return;
    }
    let entry = into.entry((*first).to_owned()).or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(inner) = entry {
        copy_path(value, rest, inner);
    }
}

/// A case-insensitive substring match, or a regular expression with `use_regex=true`.
fn name_filter(name: &str, use_regex: bool) -> Result<impl Fn(&str) -> bool, ApiError> {
    let pattern = if use_regex { name.to_owned() } else { regex::escape(name) };
    let re = regex::RegexBuilder::new(&pattern)
        .case_insensitive(true)
        .build()
        .map_err(|e| ApiError::BadBody(serde::de::Error::custom(format!("name is not a regular expression: {e}"))))?;
    Ok(move |candidate: &str| re.is_match(candidate))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<Value> {
        (0..n).map(|i| json!({ "name": format!("item-{i}") })).collect()
    }

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn pages_are_cut_and_counted_like_rabbitmq() {
        let page = listing(names(7), &query(&[("page", "2"), ("page_size", "3")])).expect("page 2");
        assert_eq!(page["items"].as_array().map(Vec::len), Some(3));
        assert_eq!(page["items"][0]["name"], "item-3");
        assert_eq!((page["page_count"].as_u64(), page["total_count"].as_u64()), (Some(3), Some(7)));
        let plain = listing(names(2), &query(&[("page_size", "1")])).expect("no page, no pagination");
        assert!(plain.is_array());
        let empty = listing(Vec::new(), &query(&[("page", "1")])).expect("page 1 of nothing");
        assert_eq!(empty["page_count"], 0);
    }

    #[test]
    fn names_filter_and_bad_parameters_are_refused() {
        let filtered = listing(names(12), &query(&[("page", "1"), ("name", "ITEM-1")])).expect("filtered");
        assert_eq!(filtered["filtered_count"], 3, "item-1, item-10, item-11");
        let regex =
            listing(names(12), &query(&[("page", "1"), ("name", "^item-1$"), ("use_regex", "true")])).expect("regex");
        assert_eq!(regex["filtered_count"], 1);
        let out = listing(names(7), &query(&[("page", "9"), ("page_size", "3")])).expect_err("out of range");
        assert_eq!(out.to_string(), "Page out of range, page: 9 page size: 3, len: 7");
        let invalid = listing(names(7), &query(&[("page", "0")])).expect_err("page 0");
        assert_eq!(invalid.to_string(), "Invalid pagination parameters: page number 0, page size undefined");
        assert!(listing(names(7), &query(&[("page", "1"), ("page_size", "1000")])).is_err());
    }

    #[test]
    fn lists_sort_by_dotted_keys_and_keep_the_asked_columns() {
        let items = vec![
            json!({ "name": "b", "message_stats": { "publish": 5 }, "arguments": {} }),
            json!({ "name": "a", "message_stats": { "publish": 10 }, "arguments": {} }),
            json!({ "name": "C", "arguments": {} }),
        ];
        let sorted =
            listing(items.clone(), &query(&[("sort", "message_stats.publish"), ("columns", "name")])).expect("sorted");
        assert_eq!(sorted, json!([{ "name": "C" }, { "name": "b" }, { "name": "a" }]), "missing first, numeric");
        let by_name =
            listing(items.clone(), &query(&[("sort", "name"), ("sort_reverse", "true"), ("columns", "name")]))
                .expect("reversed");
        assert_eq!(by_name, json!([{ "name": "b" }, { "name": "a" }, { "name": "C" }]), "bytes order, reversed");
        let nested =
            listing(items, &query(&[("columns", "message_stats.publish,arguments.x"), ("page", "1")])).expect("paged");
        assert_eq!(nested["items"][0], json!({ "message_stats": { "publish": 5 }, "arguments": {} }));
        assert_eq!(nested["items"][2], json!({ "arguments": {} }));
    }
}
