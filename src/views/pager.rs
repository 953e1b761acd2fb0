//! Pagination of list pages: "Showing 26–50 of 240" with Previous/Next links that keep the
//! list's filters. Pages are numbered from 1 in URLs.
//!
//! Lists count and page through at most [`MAX_COUNTED`] rows: counting or skipping more
//! costs more than the page is worth at 100,000 keys, and nobody reads that far. Beyond it
//! the bar says "more than 1,000" and points to the search and filters.
//!
//! Why 1,000 (issue 15): a count stops at the bound, so it reads up to that many matching
//! rows. For a term matching half of 100,000 keys, counting to 10,001 read 20,000 rows and
//! cost 70-140 ms, ten times the rest of the page; counting to 1,001 costs about 2 ms. The
//! same bound keeps the deepest `OFFSET` (975 rows) cheap under any filter.

/// The most rows a list counts and pages through.
pub const MAX_COUNTED: i64 = 1_000;

/// `n` with a comma between groups of three digits ("10,000"), as the pages show counts.
pub fn grouped(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// The pagination bar of one page of a list.
#[derive(Debug, Clone)]
pub struct Pager {
    pub first: i64,
    pub last: i64,
    /// The number of matching rows, at most [`MAX_COUNTED`].
    pub total: i64,
    /// `total` as the page shows it ("1,000").
    pub total_label: String,
    /// More rows match than were counted (`total` is a lower bound).
    pub more: bool,
    pub prev_href: Option<String>,
    pub next_href: Option<String>,
}

/// The 0-based page index asked for by `?page=N` (1-based, bounded to the counted rows).
pub fn page_index(page: Option<i64>, per_page: i64) -> i64 {
    page.unwrap_or(1).clamp(1, (MAX_COUNTED / per_page.max(1)).max(1)) - 1
}

impl Pager {
    /// `params` are the list's current filters (empty values are left out of the links);
    /// `total` is a count bounded by `MAX_COUNTED + 1` (see `db::count`).
    pub fn new(base: &str, params: &[(&str, &str)], page: i64, per_page: i64, shown: usize, total: i64) -> Self {
        let more = total > MAX_COUNTED;
        let total = total.min(MAX_COUNTED);
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
            total_label: grouped(total),
            more,
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
        assert_eq!(page_index(Some(0), 25), 0);
        assert_eq!(page_index(Some(-4), 25), 0);
    }

    #[test]
    fn beyond_the_counted_rows_the_bar_asks_for_filters() {
        assert_eq!(page_index(Some(1_000_000), 25), 39, "no deeper than the counted rows");
        let deep = Pager::new("/x", &[], 39, 25, 25, MAX_COUNTED + 1);
        assert!(deep.more && deep.next_href.is_none());
        assert_eq!((deep.first, deep.last, deep.total), (976, 1_000, 1_000));
        assert_eq!(deep.total_label, "1,000");
        let exact = Pager::new("/x", &[], 0, 25, 25, 30);
        assert!(!exact.more && exact.next_href.is_some());
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        let shown: Vec<String> = [0, 999, 1_000, 25_000, 1_000_000, -1_234].into_iter().map(grouped).collect();
        assert_eq!(shown, ["0", "999", "1,000", "25,000", "1,000,000", "-1,234"]);
    }
}
