//! Windows FILETIME: 100-nanosecond ticks since 1601-01-01 UTC, the time stamp of registry
//! keys, NTFS files, WIM dentries and XML data, and event records.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// A FILETIME, in 100 ns ticks since 1601-01-01 UTC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileTime(pub u64);

impl FileTime {
    /// Ticks in one second.
    pub const TICKS_PER_SECOND: u64 = 10_000_000;
    /// 1970-01-01 00:00:00 UTC, the Unix epoch.
    pub const UNIX_EPOCH: FileTime = FileTime(116_444_736_000_000_000);

    /// The current time. A clock set before 1970 gives the Unix epoch.
    pub fn now() -> FileTime {
        FileTime::from_system_time(SystemTime::now())
    }

    /// The FILETIME of `time`; a time before 1970 gives the Unix epoch, one past the year
    /// 60056 saturates.
    pub fn from_system_time(time: SystemTime) -> FileTime {
        let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        FileTime::from_unix(since_epoch.as_secs(), since_epoch.subsec_nanos() / 100)
    }

    /// `seconds` after the Unix epoch plus `ticks` (100 ns units), saturating.
    pub fn from_unix(seconds: u64, ticks: u32) -> FileTime {
        FileTime(
            seconds
                .saturating_mul(Self::TICKS_PER_SECOND)
                .saturating_add(u64::from(ticks))
                .saturating_add(Self::UNIX_EPOCH.0),
        )
    }

    /// Whole seconds since the Unix epoch (negative before 1970).
    pub fn to_unix_seconds(self) -> i64 {
        let ticks = i128::from(self.0) - i128::from(Self::UNIX_EPOCH.0);
        // Fits: u64::MAX ticks are about 1.8e12 seconds.
        ticks.div_euclid(i128::from(Self::TICKS_PER_SECOND)) as i64
    }
}

/// `YYYY-MM-DDTHH:MM:SS.fffffffZ` (UTC, every tick shown).
impl fmt::Display for FileTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.0 / Self::TICKS_PER_SECOND;
        let ticks = self.0 % Self::TICKS_PER_SECOND;
        let (days, second_of_day) = (seconds / 86_400, seconds % 86_400);
        let (year, month, day) = civil_from_days_since_1601(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ticks:07}Z",
            second_of_day / 3600,
            second_of_day / 60 % 60,
            second_of_day % 60
        )
    }
}

/// The proleptic Gregorian date `days` after 1601-01-01 (Howard Hinnant's civil_from_days,
/// with 1601 as the start of a 400-year era, so no day is negative).
fn civil_from_days_since_1601(days: u64) -> (u64, u64, u64) {
    // Shift the start of the year to March 1st, so the leap day is the last day of a year.
    let days = days + 306; // 1601-01-01 is day 306 of the year that starts on 1600-03-01.
    let era = days / 146_097;
    let day_of_era = days % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = 1600 + era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::FileTime;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn the_unix_epoch_is_116444736000000000() {
        assert_eq!(FileTime::UNIX_EPOCH.0, 116_444_736_000_000_000);
        assert_eq!(FileTime::from_system_time(UNIX_EPOCH), FileTime::UNIX_EPOCH);
        assert_eq!(FileTime::from_unix(0, 0), FileTime::UNIX_EPOCH);
        assert_eq!(FileTime::UNIX_EPOCH.to_unix_seconds(), 0);
        assert_eq!(FileTime(0).to_unix_seconds(), -11_644_473_600);
    }

    #[test]
    fn unix_times_convert_both_ways() {
        // 2024-05-14T09:12:03.5Z is 1715677923.5 s after the Unix epoch.
        let time = UNIX_EPOCH + Duration::from_millis(1_715_677_923_500);
        let filetime = FileTime::from_system_time(time);
        assert_eq!(
            filetime.0,
            116_444_736_000_000_000 + 1_715_677_923 * 10_000_000 + 5_000_000
        );
        assert_eq!(filetime, FileTime::from_unix(1_715_677_923, 5_000_000));
        assert_eq!(filetime.to_unix_seconds(), 1_715_677_923);
        assert_eq!(filetime.to_string(), "2024-05-14T09:12:03.5000000Z");
    }

    #[test]
    fn display_covers_the_whole_range() {
        assert_eq!(FileTime(0).to_string(), "1601-01-01T00:00:00.0000000Z");
        assert_eq!(
            FileTime::UNIX_EPOCH.to_string(),
            "1970-01-01T00:00:00.0000000Z"
        );
        // A leap day and the last tick of a century year that is not a leap year.
        let leap_day = FileTime::from_unix(951_782_400, 0);
        assert_eq!(leap_day.to_string(), "2000-02-29T00:00:00.0000000Z");
        let end_of_2100 = FileTime::from_unix(4_133_980_799, 9_999_999);
        assert_eq!(end_of_2100.to_string(), "2100-12-31T23:59:59.9999999Z");
        assert_eq!(
            FileTime(u64::MAX).to_string(),
            "60056-05-28T05:36:10.9551615Z"
        );
    }

    #[test]
    fn now_is_after_2024() {
        assert!(FileTime::now().to_unix_seconds() > 1_704_067_200);
    }
}
