//! Pages as a browser reads them: a response body parsed by an HTML parser (`scraper`), and
//! the questions tests ask of it — the text under a CSS selector, a form field's value, the
//! links, the CSRF and form tokens. Assertions written this way do not break on attribute
//! order, whitespace or entity escaping, and do not pass because a string happens to occur
//! in a script, a comment or another element.

use reqwest::StatusCode;
use scraper::{ElementRef, Html, Selector};

/// A fetched HTML page.
pub struct Page {
    pub status: StatusCode,
    /// The raw body, for the few assertions about markup itself (escaping).
    pub body: String,
    document: Html,
}

impl std::fmt::Debug for Page {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The body, so that a failed assertion shows the page.
        write!(f, "{} {}", self.status, self.body)
    }
}

impl std::fmt::Display for Page {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

fn selector(css: &str) -> Selector {
    Selector::parse(css).unwrap_or_else(|e| panic!("bad CSS selector {css:?}: {e}"))
}

/// Text with runs of whitespace collapsed to one space, as it is rendered.
fn normalized<'a>(parts: impl Iterator<Item = &'a str>) -> String {
    parts.flat_map(str::split_whitespace).collect::<Vec<_>>().join(" ")
}

/// The text of `element` a reader sees: not that of scripts and styles.
fn visible_text<'a>(element: &ElementRef<'a>) -> impl Iterator<Item = &'a str> {
    element.descendants().filter_map(|node| {
        let text = node.value().as_text()?;
        let hidden =
            node.ancestors().any(|a| a.value().as_element().is_some_and(|e| matches!(e.name(), "script" | "style")));
        (!hidden).then_some(&**text)
    })
}

impl Page {
    pub fn new(status: StatusCode, body: String) -> Self {
        let document = Html::parse_document(&body);
        Self { status, body, document }
    }

    /// The elements matching `css`, in document order.
    pub fn select(&self, css: &str) -> Selection<'_> {
        Selection(self.document.select(&selector(css)).collect())
    }

    /// Whether any element matches `css`.
    pub fn has(&self, css: &str) -> bool {
        self.document.select(&selector(css)).next().is_some()
    }

    /// A body already fetched (as a 200 page).
    pub fn parse(html: &str) -> Self {
        Self::new(StatusCode::OK, html.to_string())
    }

    /// The page's text (the body's, whitespace collapsed): what a reader sees.
    pub fn text(&self) -> String {
        self.select("body").text()
    }

    /// Whether the page's text contains `text` (whitespace collapsed in both).
    pub fn says(&self, text: &str) -> bool {
        self.text().contains(&normalized(std::iter::once(text)))
    }

    /// The value a form would submit for the field `name`: an input's value (a checked one
    /// for radio buttons and checkboxes), a text area's text, a select's selected option.
    pub fn field(&self, name: &str) -> Option<String> {
        self.fields(name).into_iter().next()
    }

    /// Every value a form would submit for `name` (checked boxes, selected options).
    pub fn fields(&self, name: &str) -> Vec<String> {
        let mut values = Vec::new();
        for element in self.document.select(&selector(&format!("[name=\"{name}\"]"))) {
            let e = element.value();
            match e.name() {
                "input" if matches!(e.attr("type"), Some("checkbox" | "radio")) && e.attr("checked").is_some() => {
                    values.push(e.attr("value").unwrap_or("on").to_string());
                }
                // An unchecked box submits nothing.
                "input" if matches!(e.attr("type"), Some("checkbox" | "radio")) => {}
                "input" => values.push(e.attr("value").unwrap_or_default().to_string()),
                "textarea" => values.push(element.text().collect()),
                "select" => values.extend(
                    element
                        .select(&selector("option[selected]"))
                        .map(|o| o.value().attr("value").map(str::to_string).unwrap_or_else(|| o.text().collect())),
                ),
                _ => {}
            }
        }
        values
    }

    /// The session's CSRF token, as the page's forms carry it.
    pub fn csrf_token(&self) -> Option<String> {
        self.field("csrf_token")
    }

    /// The one-time token of the page's (create or re-key) form.
    pub fn form_token(&self) -> String {
        self.field("form_token").unwrap_or_else(|| panic!("a form token on {self}"))
    }

    /// The targets of the page's links.
    pub fn links(&self) -> Vec<String> {
        self.select("a[href]").attrs("href")
    }

    /// Whether the page links to exactly `href` (with or without a query).
    pub fn links_to(&self, href: &str) -> bool {
        self.links().iter().any(|l| l == href || l.split_once('?').is_some_and(|(path, _)| path == href))
    }

    /// Whether the page has a form posting to `action`.
    pub fn has_form(&self, action: &str) -> bool {
        self.has(&format!("form[action=\"{action}\"]"))
    }
}

/// Elements of a [`Page`].
pub struct Selection<'a>(Vec<ElementRef<'a>>);

impl Selection<'_> {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The text of all the elements, whitespace collapsed.
    pub fn text(&self) -> String {
        normalized(self.0.iter().flat_map(visible_text))
    }

    /// The text of each element, whitespace collapsed.
    pub fn texts(&self) -> Vec<String> {
        self.0.iter().map(|e| normalized(visible_text(e))).collect()
    }

    /// What the first form control holds, as a browser submits it: a textarea's text, or
    /// another control's `value` attribute.
    pub fn value(&self) -> Option<String> {
        let control = self.0.first()?;
        if control.value().name() == "textarea" {
            Some(control.text().collect())
        } else {
            control.value().attr("value").map(str::to_string)
        }
    }

    /// The attribute `name` of the first element that has it.
    pub fn attr(&self, name: &str) -> Option<String> {
        self.0.iter().find_map(|e| e.value().attr(name)).map(str::to_string)
    }

    /// The attribute `name` of every element that has it.
    pub fn attrs(&self, name: &str) -> Vec<String> {
        self.0.iter().filter_map(|e| e.value().attr(name)).map(str::to_string).collect()
    }
}

#[test]
fn pages_answer_in_terms_of_their_document() {
    let page = Page::new(
        StatusCode::OK,
        r#"<html><body><h1> Keys
            of  Acme</h1><form action="/x"><input type="hidden" value="t1" name="csrf_token">
            <input name="name" value="A &amp; B"><input type="checkbox" name="action" value="a" checked>
            <input type="checkbox" name="action" value="b"><textarea name="comment">hi</textarea>
            <select name="grace"><option value="0">no</option><option value="60" selected>1 h</option></select>
            </form><a href="/account/keys/k1/edit?return_to=/">Edit</a><script>var s = "Delete";</script>
            </body></html>"#
            .into(),
    );
    assert_eq!(page.select("h1").text(), "Keys of Acme");
    assert_eq!(page.csrf_token().as_deref(), Some("t1"));
    assert_eq!(page.field("name").as_deref(), Some("A & B"));
    assert_eq!(page.fields("action"), ["a"]);
    assert_eq!(page.field("comment").as_deref(), Some("hi"));
    assert_eq!(page.field("grace").as_deref(), Some("60"));
    assert!(page.links_to("/account/keys/k1/edit") && !page.links_to("/account/keys/k1"));
    assert!(page.has_form("/x") && !page.has_form("/y"));
    assert!(page.says("Keys of Acme") && !page.says("Delete"), "scripts are not text");
    assert!(page.select("a").texts() == ["Edit"]);
}
