//! Pagination of list pages: "Showing 26–50 of 240" with Previous/Next links that keep the
//! list's filters. Pages are numbered from 1 in URLs.

/// The pagination bar of one page of a list.
#[derive(Debug, Clone)]
pub struct Pager {
    pub first: i64,
    pub last: i64,
    pub total: i64,
    pub prev_href: Option<String>,
    pub next_href: Option<String>,
}

/// The 0-based page index asked for by `?page=N` (1-based, bounded).
pub fn page_index(page: Option<i64>) -> i64 {
    page.unwrap_or(1).clamp(1, 1_000_000) - 1
}

impl Pager {
    /// `params` are the list's current filters (empty values are left out of the links).
    pub fn new(base: &str, params: &[(&str, &str)], page: i64, per_page: i64, shown: usize, total: i64) -> Self {
        let href = |page: i64| {
            let mut pairs: Vec<(&str, String)> =
                params.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (*k, v.to_string())).collect();
            if page > 0 {
                pairs.push(("page", (page + 1).to_string()));
            }
            let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
            if query.is_empty() { base.to_string() } else { format!("{base}?{query}") }
        };
        let first = page * per_page + 1;
        let last = page * per_page + shown as i64;
        Self {
            first: first.min(last.max(0) + 1).min(total.max(1)),
            last,
            total,
            prev_href: (page > 0).then(|| href(page - 1)),
            next_href: (last < total).then(|| href(page + 1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_keep_filters_and_number_pages_from_one() {
        let pager = Pager::new("/admin/users", &[("q", "ann"), ("sort", "")], 1, 25, 25, 80);
        assert_eq!((pager.first, pager.last, pager.total), (26, 50, 80));
        assert_eq!(pager.prev_href.as_deref(), Some("/admin/users?q=ann"));
        assert_eq!(pager.next_href.as_deref(), Some("/admin/users?q=ann&page=3"));
        let last = Pager::new("/x", &[], 3, 25, 5, 80);
        assert!(last.next_href.is_none());
        assert_eq!(page_index(Some(0)), 0);
        assert_eq!(page_index(Some(-4)), 0);
    }
}
