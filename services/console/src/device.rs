//! A device name people recognise ("Chrome on Linux") from the browser's user agent, sent at
//! sign-in so the devices page lists browsers by name.

/// Browsers by a token of their user agent, most specific first: Edge and Opera also say
/// "Chrome/", and Chrome also says "Safari/".
const BROWSERS: &[(&[&str], &str)] = &[
    (&["Edg/"], "Edge"),
    (&["OPR/"], "Opera"),
    (&["Firefox/"], "Firefox"),
    (&["Chrome/", "Chromium/"], "Chrome"),
    (&["Safari/"], "Safari"),
];

/// Systems likewise: Android and ChromeOS also say "Linux", iOS also says "Mac OS X".
const SYSTEMS: &[(&[&str], &str)] = &[
    (&["Android"], "Android"),
    (&["iPhone", "iPad"], "iOS"),
    (&["CrOS"], "ChromeOS"),
    (&["Windows"], "Windows"),
    (&["Mac OS X", "Macintosh"], "macOS"),
    (&["Linux"], "Linux"),
];

/// The name of the first row with a token the user agent contains, else `unknown`.
fn first_match(ua: &str, table: &[(&[&str], &'static str)], unknown: &'static str) -> &'static str {
    table
        .iter()
        .find(|(tokens, _)| tokens.iter().any(|t| ua.contains(t)))
        .map_or(unknown, |(_, name)| name)
}

/// `(deviceName, deviceType)` for the API's device fields (api.md §4.2).
pub fn describe(user_agent: Option<&str>) -> (String, &'static str) {
    let ua = user_agent.unwrap_or("");
    let browser = first_match(ua, BROWSERS, "Browser");
    let os = first_match(ua, SYSTEMS, "an unknown system");
    let kind = if ua.contains("Mobile") {
        "mobile"
    } else {
        "browser"
    };
    (format!("{browser} on {os}"), kind)
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn common_browsers() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36";
        assert_eq!(
            describe(Some(chrome)),
            ("Chrome on Linux".into(), "browser")
        );
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        assert_eq!(describe(Some(iphone)), ("Safari on iOS".into(), "mobile"));
        assert_eq!(describe(None).0, "Browser on an unknown system");
    }
}
