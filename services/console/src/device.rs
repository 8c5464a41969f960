//! A device name people recognise ("Chrome on Linux") from the browser's user agent, sent at
//! sign-in so the devices page lists browsers by name.

/// `(deviceName, deviceType)` for the API's device fields (api.md §4.2).
pub fn describe(user_agent: Option<&str>) -> (String, &'static str) {
    let ua = user_agent.unwrap_or("");
    let browser = if ua.contains("Edg/") {
        "Edge"
    } else if ua.contains("OPR/") {
        "Opera"
    } else if ua.contains("Firefox/") {
        "Firefox"
    } else if ua.contains("Chrome/") || ua.contains("Chromium/") {
        "Chrome"
    } else if ua.contains("Safari/") {
        "Safari"
    } else {
        "Browser"
    };
    let os = if ua.contains("Android") {
        "Android"
    } else if ua.contains("iPhone") || ua.contains("iPad") {
        "iOS"
    } else if ua.contains("CrOS") {
        "ChromeOS"
    } else if ua.contains("Windows") {
        "Windows"
    } else if ua.contains("Mac OS X") || ua.contains("Macintosh") {
        "macOS"
    } else if ua.contains("Linux") {
        "Linux"
    } else {
        "an unknown system"
    };
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
