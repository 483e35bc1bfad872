//! Error messages for logs: an error and every source under it, since the top message alone
//! often hides the cause ("client error (Connect)" without "Connection refused").

/// `error` and its sources joined by ": ", a message left out when an earlier one already says it.
///
/// Only for errors whose sources carry no secret (API and transport errors): the sources are
/// shown as they are.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut messages: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(current) = next {
        let message = current.to_string();
        let message = message.trim();
        if !message.is_empty() && !messages.iter().any(|m| m.contains(message)) {
            messages.push(message.to_string());
        }
        next = current.source();
    }
    messages.join(": ")
}

#[cfg(test)]
mod tests {
    use super::chain;

    #[derive(Debug, thiserror::Error)]
    #[error("client error (Connect)")]
    struct Connect(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("patching status: {0}")]
    struct Patch(#[source] Connect);

    #[test]
    fn the_cause_shows_once() {
        let refused =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let error = Patch(Connect(refused));
        assert_eq!(
            chain(&error),
            "patching status: client error (Connect): Connection refused"
        );
    }
}
