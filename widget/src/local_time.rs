//! Local dates and times, by the browser's clock and time zone.
//!
//! A `datetime-local` value has no zone: it means the wall-clock time where
//! the manager sits. [`to_unix`] asks `js_sys::Date` for the instant of those
//! fields (`new Date(y, m, d, h, mi, s)`), so the zone's offset is the one in
//! force at that very time, on the day clocks change too.

use crate::summary::{days_to_next_working_day, LocalDate, LocalDateTime};

/// A `datetime-local` value as Unix seconds, in the browser's time zone.
/// A wall-clock time the zone skips (the hour clocks jump over) is the
/// browser's reading of it, as `new Date` gives.
pub fn to_unix(value: &str) -> Option<i64> {
    let t = LocalDateTime::parse(value)?;
    let date = js_sys::Date::new_with_year_month_day_hr_min_sec(
        u32::try_from(t.year).ok()?,
        t.month as i32 - 1,
        t.day as i32,
        t.hour as i32,
        t.minute as i32,
        t.second as i32,
    );
    let ms = date.get_time();
    ms.is_finite().then(|| (ms / 1000.0).floor() as i64)
}

fn local_date(date: &js_sys::Date) -> LocalDate {
    LocalDate {
        year: date.get_full_year() as i32,
        month: date.get_month() + 1,
        day: date.get_date(),
        weekday: date.get_day(),
    }
}

/// `2026-12-01 14:05`: the wall-clock time of Unix milliseconds `ms` where
/// the manager sits.
pub fn wall_clock(ms: i64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
    let day = local_date(&date);
    format!("{:04}-{:02}-{:02} {:02}:{:02}", day.year, day.month, day.day, date.get_hours(), date.get_minutes())
}

/// The next working day (see [`days_to_next_working_day`]).
pub fn next_working_day() -> LocalDate {
    let date = js_sys::Date::new_0();
    let today = local_date(&date);
    // `setDate` past the month's end rolls over into the next month, as wanted.
    date.set_date(date.get_date() + days_to_next_working_day(today));
    local_date(&date)
}
