//! RabbitMQ's paginated listings: with `?page=N` (and optionally `page_size`,
//! `name`, `use_regex`) the vhost, exchange and queue listings answer with one
//! page wrapped in counts; without `page` they answer with the plain list.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::management::ApiError;

/// RabbitMQ's default and largest page sizes.
const DEFAULT_PAGE_SIZE: u64 = 100;
const MAX_PAGE_SIZE: u64 = 500;

/// The listing as RabbitMQ answers for these query parameters.
pub(crate) fn listing(items: Vec<Value>, query: &HashMap<String, String>) -> Result<Value, ApiError> {
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
}
