//! Barong's pagination (§9.1): `page` (from 1) and `limit` (1 to 100, default 100) parameters
//! with their unprefixed error codes, and the `Total`, `Page`, `Per-Page` and RFC 5988 `Link`
//! headers of the answer.

use http::{HeaderMap, HeaderValue};

use super::error::{ApiError, ApiResult};
use super::params::Params;
use crate::routes::{In, Param, param};

/// The parameters every paginated route documents.
pub const PARAMS: [Param; 2] = [
    param("page", In::Query, false, "Page number (from 1)").integer(),
    param("limit", In::Query, false, "Results per page (1 to 100)").integer(),
];

const MAX_LIMIT: i64 = 100;

/// One page of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub page: i64,
    pub limit: i64,
}

impl Page {
    /// `page` and `limit` from the request, or Barong's 422 with every code.
    pub fn from_params(params: &Params) -> ApiResult<Page> {
        let mut codes = Vec::new();
        match Page::collect(params, &mut codes) {
            Some(page) if codes.is_empty() => Ok(page),
            _ => Err(ApiError::many(
                http::StatusCode::UNPROCESSABLE_ENTITY,
                codes,
            )),
        }
    }

    /// `page` and `limit`, adding their codes to `codes` (for routes that report them with
    /// their other parameters' codes, as Grape does); `None` when either is refused.
    pub fn collect(params: &Params, codes: &mut Vec<String>) -> Option<Page> {
        let before = codes.len();
        let page = integer(params, "page", 1, "non_integer_page", codes);
        if page.is_some_and(|page| page <= 0) {
            codes.push("non_positive_page".into());
        }
        let limit = integer(params, "limit", MAX_LIMIT, "non_integer_limit", codes);
        if limit.is_some_and(|limit| !(1..=MAX_LIMIT).contains(&limit)) {
            codes.push("invalid_limit".into());
        }
        match (page, limit) {
            (Some(page), Some(limit)) if codes.len() == before => Some(Page { page, limit }),
            _ => None,
        }
    }

    /// Rows to skip.
    pub fn offset(&self) -> i64 {
        (self.page - 1).saturating_mul(self.limit)
    }

    /// `Total`, `Page`, `Per-Page` and `Link` (first, prev, next, last) for `total` rows of
    /// the list the request `uri` asked for: each link keeps the request's other parameters
    /// (its filters), with `page` and `limit` set.
    pub fn headers(&self, total: i64, uri: &http::Uri) -> HeaderMap {
        let kept: Vec<&str> = uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|pair| {
                let name = pair.split('=').next().unwrap_or("");
                !pair.is_empty() && name != "page" && name != "limit"
            })
            .collect();
        let mut path = uri.path().to_string();
        path.push('?');
        for pair in kept {
            path.push_str(pair);
            path.push('&');
        }
        self.headers_at(total, &path)
    }

    /// The headers, with links to `base` followed by `page=…&limit=…`.
    fn headers_at(&self, total: i64, base: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("total", HeaderValue::from(total));
        headers.insert("page", HeaderValue::from(self.page));
        headers.insert("per-page", HeaderValue::from(self.limit));
        let last = ((total + self.limit - 1) / self.limit).max(1);
        let link = |page: i64, rel: &str| {
            format!("<{base}page={page}&limit={}>; rel=\"{rel}\"", self.limit)
        };
        let mut links = Vec::new();
        if self.page > 1 {
            links.push(link(1, "first"));
            links.push(link((self.page - 1).min(last), "prev"));
        }
        if self.page < last {
            links.push(link(self.page + 1, "next"));
            links.push(link(last, "last"));
        }
        if let Ok(value) = HeaderValue::from_str(&links.join(", "))
            && !links.is_empty()
        {
            headers.insert(http::header::LINK, value);
        }
        headers
    }
}

/// An integer parameter as Grape coerces it: absent → `default`, anything not an integer →
/// the code.
fn integer(
    params: &Params,
    name: &str,
    default: i64,
    code: &str,
    codes: &mut Vec<String>,
) -> Option<i64> {
    match params.text(name) {
        None => Some(default),
        Some(text) => {
            let parsed = text.trim().parse::<i64>().ok();
            if parsed.is_none() {
                codes.push(code.into());
            }
            parsed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(query: &str) -> ApiResult<Page> {
        Page::from_params(&Params::from_query(Some(query)))
    }

    #[test]
    fn page_and_limit_follow_barongs_rules() {
        assert_eq!(
            page("").unwrap(),
            Page {
                page: 1,
                limit: 100
            }
        );
        assert_eq!(page("page=3&limit=10").unwrap().offset(), 20);
        let code = |query: &str| page(query).unwrap_err().codes[0].clone();
        assert_eq!(code("page=x"), "non_integer_page");
        assert_eq!(code("page=0"), "non_positive_page");
        assert_eq!(code("limit=1.5"), "non_integer_limit");
        assert_eq!(code("limit=0"), "invalid_limit");
        assert_eq!(code("limit=101"), "invalid_limit");
    }

    #[test]
    fn headers_count_and_link_the_pages() {
        let uri: http::Uri = "/x?uid=ID1&page=2&limit=10".parse().unwrap();
        let headers = Page { page: 2, limit: 10 }.headers(25, &uri);
        assert_eq!(headers["total"], "25");
        assert_eq!(headers["page"], "2");
        assert_eq!(headers["per-page"], "10");
        let link = headers[http::header::LINK].to_str().unwrap();
        assert!(
            link.contains("</x?uid=ID1&page=1&limit=10>; rel=\"first\""),
            "{link}"
        );
        assert!(
            link.contains("</x?uid=ID1&page=3&limit=10>; rel=\"next\""),
            "{link}"
        );
        assert!(
            link.contains("</x?uid=ID1&page=3&limit=10>; rel=\"last\""),
            "{link}"
        );
        assert!(
            Page { page: 1, limit: 10 }
                .headers(5, &"/x".parse().unwrap())
                .get(http::header::LINK)
                .is_none()
        );
    }
}
