//! Trace context passed on to participants, so a saga's calls join the trace of the request that
//! started it: W3C `traceparent` and AWS X-Ray's `X-Amzn-Trace-Id` over HTTP, and the same two
//! as Pulsar message properties.
//!
//! A saga keeps its trace as a `traceparent` in its record, taken at start from the request's
//! `traceparent`, else its `X-Amzn-Trace-Id`, else the Lambda invocation's X-Ray trace
//! (from the runtime's invocation context), else a new trace. Each call gets a span id of its own.

/// The W3C trace context header.
pub const TRACEPARENT: &str = "traceparent";
/// AWS X-Ray's trace header.
pub const XRAY_HEADER: &str = "X-Amzn-Trace-Id";

/// A trace a saga belongs to: its 128-bit id (32 lowercase hex digits) and sampling flag.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TraceContext {
    trace_id: String,
    sampled: bool,
}

fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl TraceContext {
    /// Parses a W3C `traceparent` (`00-{trace id}-{parent id}-{flags}`); `None` when invalid.
    pub fn from_traceparent(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let (version, trace_id, parent, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let valid = is_hex(version, 2)
            && version != "ff"
            && (version != "00" || parts.next().is_none())
            && is_hex(trace_id, 32)
            && trace_id.bytes().any(|b| b != b'0')
            && is_hex(parent, 16)
            && parent.bytes().any(|b| b != b'0')
            && is_hex(flags, 2);
        valid.then(|| Self {
            trace_id: trace_id.to_string(),
            sampled: u8::from_str_radix(flags, 16).is_ok_and(|f| f & 1 == 1),
        })
    }

    /// Parses an X-Ray header (`Root=1-{8 hex}-{24 hex};Parent=...;Sampled=1`); `None` when it
    /// has no valid root.
    pub fn from_xray(header: &str) -> Option<Self> {
        let mut root = None;
        let mut sampled = false;
        for field in header.split(';') {
            match field.trim().split_once('=') {
                Some(("Root", value)) => root = Some(value),
                Some(("Sampled", value)) => sampled = value == "1",
                _ => {}
            }
        }
        let mut parts = root?.split('-');
        let (version, time, unique) = (parts.next()?, parts.next()?, parts.next()?);
        let valid = version == "1"
            && parts.next().is_none()
            && is_hex(time, 8)
            && is_hex(unique, 24)
            && (time.bytes().chain(unique.bytes())).any(|b| b != b'0');
        valid.then(|| Self {
            trace_id: format!("{time}{unique}"),
            sampled,
        })
    }

    /// A new sampled trace; its first 8 hex digits are the time in seconds, as X-Ray requires.
    pub fn new(now_ms: i64) -> Self {
        let seconds = (now_ms / 1000) as u32;
        Self {
            trace_id: format!("{seconds:08x}{:024x}", fastrand::u128(..) >> 32),
            sampled: true,
        }
    }

    /// The first valid context of: a `traceparent`, an X-Ray header, the invocation's X-Ray
    /// trace; else a new trace.
    pub fn pick(
        traceparent: Option<&str>,
        xray: Option<&str>,
        invocation_xray: Option<&str>,
        now_ms: i64,
    ) -> Self {
        traceparent
            .and_then(Self::from_traceparent)
            .or_else(|| xray.and_then(Self::from_xray))
            .or_else(|| invocation_xray.and_then(Self::from_xray))
            .unwrap_or_else(|| Self::new(now_ms))
    }

    /// The trace id, 32 lowercase hex digits.
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    /// The `traceparent` of a call made under `span_id` (16 hex digits).
    pub fn traceparent(&self, span_id: &str) -> String {
        format!(
            "00-{}-{span_id}-{}",
            self.trace_id,
            if self.sampled { "01" } else { "00" }
        )
    }

    /// The X-Ray header of a call made under `span_id`.
    pub fn xray(&self, span_id: &str) -> String {
        let (time, unique) = self.trace_id.split_at(8);
        format!(
            "Root=1-{time}-{unique};Parent={span_id};Sampled={}",
            u8::from(self.sampled)
        )
    }

    /// Both headers for one call, under a new span id.
    pub fn call_headers(&self) -> [(String, String); 2] {
        let span_id = format!("{:016x}", fastrand::u64(1..));
        [
            (TRACEPARENT.to_string(), self.traceparent(&span_id)),
            (XRAY_HEADER.to_string(), self.xray(&span_id)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn traceparent_round_trips_through_both_formats() {
        let trace = TraceContext::from_traceparent(PARENT).unwrap();
        assert_eq!(trace.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(trace.traceparent("00f067aa0ba902b7"), PARENT);
        let xray = trace.xray("00f067aa0ba902b7");
        assert_eq!(
            xray,
            "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"
        );
        assert_eq!(TraceContext::from_xray(&xray), Some(trace));
    }

    #[test]
    fn invalid_headers_are_ignored() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::from_traceparent(bad), None, "{bad}");
        }
        assert_eq!(
            TraceContext::from_xray("Root=2-5759e988-bd862e3fe1be46a994272793"),
            None
        );
        assert_eq!(TraceContext::from_xray("Parent=53995c3f42cd8ad8"), None);
    }

    #[test]
    fn the_first_valid_source_wins() {
        let xray = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0";
        let picked = TraceContext::pick(Some("junk"), Some(xray), None, 0);
        assert_eq!(picked.trace_id(), "5759e988bd862e3fe1be46a994272793");
        assert_eq!(
            picked.traceparent("1111111111111111"),
            "00-5759e988bd862e3fe1be46a994272793-1111111111111111-00"
        );
        let fresh = TraceContext::pick(None, None, Some("junk"), 1_700_000_000_000);
        assert!(
            fresh
                .trace_id()
                .starts_with(&format!("{:08x}", 1_700_000_000u32))
        );
        assert!(TraceContext::from_traceparent(&fresh.call_headers()[0].1).is_some());
    }
}
