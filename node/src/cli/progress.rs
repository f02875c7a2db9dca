//! A long job waited for on the command line: its progress bar's counts and rates, and a failed job's
//! error.

use std::time::Duration;

use indicatif::HumanCount;

/// A count of the wire's (never negative) as a progress bar's.
pub fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Why a waited-for export or import failed.
pub fn failure(what: &str, arn: &str, code: &str, message: &str) -> String {
    let code = if code.is_empty() { "no FailureCode" } else { code };
    format!("{what} {arn} FAILED ({code}): {message}")
}

/// The table name an ARN ends with (`...:table/NAME`), or the ARN.
pub fn table_name(arn: &str) -> String {
    arn.rsplit_once(":table/").map_or(arn, |(_, name)| name.split('/').next().unwrap_or(name)).to_string()
}

/// A count and its rate over `elapsed`, for a progress bar's message.
pub fn with_rate(count: u64, what: &str, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    let rate = if seconds > 0.0 { (count as f64 / seconds) as u64 } else { 0 };
    format!("{} {what} ({}/s)", HumanCount(count), HumanCount(rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_name_is_read_from_its_arn() {
        assert_eq!(table_name("arn:tern:dynamodb:us-east:table/Music"), "Music");
        assert_eq!(table_name("arn:tern:dynamodb:us-east:table/Music/export/01"), "Music");
        assert_eq!(table_name("something"), "something");
    }
}
