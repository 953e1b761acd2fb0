//! Local paths to return to after an action (`return_to`, `next`): only plain paths of this
//! site, so no open redirect and nothing a `Location` header could choke on.

/// `given` if it is a local path starting with `prefix` and made of URL-safe characters only.
pub fn safe_local_path(given: &str, prefix: &str) -> Option<String> {
    let safe = given.starts_with('/')
        && given.starts_with(prefix)
        && !given.starts_with("//")
        && given.len() <= 512
        && given.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-._~?=&%+:@,".contains(&b));
    safe.then(|| given.to_string())
}

#[cfg(test)]
mod tests {
    use super::safe_local_path;

    #[test]
    fn only_plain_local_paths_pass() {
        assert_eq!(safe_local_path("/admin/keys?page=2", "/admin").as_deref(), Some("/admin/keys?page=2"));
        for bad in ["//evil.example", "https://evil.example", "/admin\\x", "/admin/keys\n", "/admin/\u{0}", "/account"]
        {
            assert_eq!(safe_local_path(bad, "/admin"), None, "{bad:?}");
        }
        assert_eq!(safe_local_path("/admin/keys\r\nSet-Cookie: x", "/admin"), None);
    }
}
