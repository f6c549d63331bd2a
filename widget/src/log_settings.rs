//! The settings page's call-note switches: which sections of the call note
//! callcard writes (`callcard_calls::note`), per Kommo user over the
//! account's defaults.
//!
//! Two groups, each saved on the backend as soon as a box changes (they are
//! callcard's, not Kommo's widget settings, so Kommo's own Save does not
//! carry them):
//!
//! - **Your call notes**: the user's own switches
//!   (`PUT /widget/log-settings`), each box showing what applies to them;
//!   "Use the account's defaults" forgets their choices.
//! - **Account defaults**: the account's switches and the missed-call task
//!   (`PUT /widget/log-settings/account`); the backend takes them from an
//!   account admin only and the page says so to anyone else. (Kommo shows a
//!   widget's settings page to admins in the accounts we know; unconfirmed
//!   for every role setup, hence the backend's check.)
//!
//! The rules are plain functions ([`mine_with`], [`account_with`],
//! [`LogSettingsState`]); the component only wires them to the boxes.
//!
//! Markup: `.callcard-log-settings[data-state=loading|ready|saving|saved|failed]`
//! holding `fieldset#callcard-log-mine` and `fieldset#callcard-log-account`,
//! boxes `input[type=checkbox][data-section=<name>]` with ids
//! `callcard-log-mine-<name>` / `callcard-log-account-<name>` (names as the
//! API's: `agent_note`, `duration`, `result`, `recording`, `transcript`,
//! `ai_summary`, and `missed_call_task` for the account), the button
//! `#callcard-log-reset`, and the status line `#callcard-log-status[role=status]`.

use crate::api::Backend;
use crate::kommo::{AjaxError, KommoWidget};
use crate::texts::{Texts, Translations};
use callcard_calls::note::{LogSettings, LogSettingsView, Section, UserLogSettings};
use leptos::prelude::*;

/// The sections a user can switch, in the order the page lists them. The
/// subject and start time are always written: a note without them cannot
/// be told apart from other calls' notes.
pub const SWITCHED: [Section; 6] = [
    Section::AgentNote,
    Section::Duration,
    Section::Result,
    Section::Recording,
    Section::Transcript,
    Section::AiSummary,
];

/// A section's name as the API spells it (and the markup and i18n keys).
pub fn section_name(section: Section) -> &'static str {
    match section {
        Section::Subject => "subject",
        Section::StartTime => "start_time",
        Section::Duration => "duration",
        Section::Result => "result",
        Section::Recording => "recording",
        Section::AgentNote => "agent_note",
        Section::Transcript => "transcript",
        Section::AiSummary => "ai_summary",
    }
}

/// The user's choices after they set `section`'s box to `on`. A box set to
/// what the account already says is still a choice: it stays when the
/// account's default changes later.
pub fn mine_with(view: &LogSettingsView, section: Section, on: bool) -> UserLogSettings {
    view.mine.with(section, Some(on))
}

/// The account's defaults after an admin sets `section`'s box to `on`.
pub fn account_with(view: &LogSettingsView, section: Section, on: bool) -> LogSettings {
    view.account.with(section, on)
}

/// What the switches are doing, as the status line and `data-state` say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogSettingsState {
    Loading,
    Ready,
    Saving,
    Saved,
    /// The i18n key of what went wrong.
    Failed(&'static str),
}

impl LogSettingsState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Loading => "loading",
            Self::Ready => "ready",
            Self::Saving => "saving",
            Self::Saved => "saved",
            Self::Failed(_) => "failed",
        }
    }

    /// The status line's i18n key (none while ready).
    pub fn text_key(self) -> Option<&'static str> {
        match self {
            Self::Loading => Some("settings.log_loading"),
            Self::Ready => None,
            Self::Saving => Some("settings.log_saving"),
            Self::Saved => Some("settings.log_saved"),
            Self::Failed(key) => Some(key),
        }
    }

    /// How a failed request reads: an admin-only refusal says so.
    pub fn failure(change: &Change, error: &AjaxError) -> Self {
        match change {
            Change::Load => Self::Failed("settings.log_not_loaded"),
            Change::Account(_) if error.status == 403 => Self::Failed("settings.log_admin_only"),
            _ => Self::Failed("settings.log_not_saved"),
        }
    }
}

/// One request of the page.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    Load,
    Mine(UserLogSettings),
    Account(LogSettings),
}

/// The two groups of switches, loaded from and saved to `backend`.
#[component]
pub fn LogSettingsPanel(widget: KommoWidget, backend: Backend, texts: Translations) -> impl IntoView {
    let view_now = RwSignal::new(None::<LogSettingsView>);
    let state = RwSignal::new(LogSettingsState::Loading);
    let request = Action::new_local(move |change: &Change| {
        let (widget, backend, change) = (widget.clone(), backend.clone(), change.clone());
        async move {
            let answer = match &change {
                Change::Load => backend.log_settings(&widget).await,
                Change::Mine(mine) => backend.save_my_log_settings(&widget, mine).await,
                Change::Account(defaults) => backend.save_account_log_settings(&widget, defaults).await,
            };
            (change, answer)
        }
    });
    request.dispatch_local(Change::Load);
    Effect::new(move |_| {
        if request.pending().get() {
            state.set(if view_now.get_untracked().is_some() {
                LogSettingsState::Saving
            } else {
                LogSettingsState::Loading
            });
            return;
        }
        match request.value().get() {
            Some((change, Ok(answer))) => {
                view_now.set(Some(answer));
                state.set(if change == Change::Load { LogSettingsState::Ready } else { LogSettingsState::Saved });
            }
            Some((change, Err(error))) => {
                web_sys::console::warn_1(&format!("callcard: log settings: {error}").into());
                state.set(LogSettingsState::failure(&change, &error));
                // The boxes go back to what the backend holds.
                view_now.set(view_now.get_untracked());
            }
            None => {}
        }
    });
    let busy = move || view_now.get().is_none() || request.pending().get();

    let mine_boxes = SWITCHED
        .into_iter()
        .map(|section| {
            let name = section_name(section);
            let id = format!("callcard-log-mine-{name}");
            let label_for = id.clone();
            let checked = move || view_now.get().is_some_and(|v| v.applied.enabled(section));
            view! {
                <label class="callcard-log-switch" for=label_for>
                    <input type="checkbox" id=id data-section=name prop:checked=checked disabled=busy
                        on:change=move |ev| {
                            if let Some(v) = view_now.get_untracked() {
                                request.dispatch_local(Change::Mine(mine_with(&v, section, event_target_checked(&ev))));
                            }
                        } />
                    <span>{texts.text(&format!("settings.section_{name}"))}</span>
                </label>
            }
        })
        .collect_view();
    let account_boxes = SWITCHED
        .into_iter()
        .map(|section| {
            let name = section_name(section);
            let id = format!("callcard-log-account-{name}");
            let label_for = id.clone();
            let checked = move || view_now.get().is_some_and(|v| v.account.enabled(section));
            view! {
                <label class="callcard-log-switch" for=label_for>
                    <input type="checkbox" id=id data-section=name prop:checked=checked disabled=busy
                        on:change=move |ev| {
                            if let Some(v) = view_now.get_untracked() {
                                request.dispatch_local(Change::Account(account_with(&v, section, event_target_checked(&ev))));
                            }
                        } />
                    <span>{texts.text(&format!("settings.section_{name}"))}</span>
                </label>
            }
        })
        .collect_view();
    let missed_checked = move || view_now.get().is_some_and(|v| v.account.missed_call_task);
    let follows_account = move || view_now.get().is_none_or(|v| v.mine == UserLogSettings::default());
    let status = {
        let texts = texts.clone();
        move || state.get().text_key().map(|key| texts.text(key)).unwrap_or_default()
    };
    view! {
        <div class="callcard-log-settings" data-state=move || state.get().as_str()>
            <fieldset id="callcard-log-mine" class="callcard-log-group">
                <legend>{texts.text("settings.log_mine")}</legend>
                <p class="callcard-log-hint">{texts.text("settings.log_mine_hint")}</p>
                {mine_boxes}
                <button type="button" id="callcard-log-reset" class="button callcard-log-reset"
                    disabled=move || busy() || follows_account()
                    on:click=move |_| {
                        request.dispatch_local(Change::Mine(UserLogSettings::default()));
                    }>
                    {texts.text("settings.log_reset")}
                </button>
            </fieldset>
            <fieldset id="callcard-log-account" class="callcard-log-group">
                <legend>{texts.text("settings.log_account")}</legend>
                <p class="callcard-log-hint">{texts.text("settings.log_account_hint")}</p>
                {account_boxes}
                <label class="callcard-log-switch" for="callcard-log-account-missed_call_task">
                    <input type="checkbox" id="callcard-log-account-missed_call_task" data-section="missed_call_task"
                        prop:checked=missed_checked disabled=busy
                        on:change=move |ev| {
                            if let Some(v) = view_now.get_untracked() {
                                let defaults = LogSettings { missed_call_task: event_target_checked(&ev), ..v.account };
                                request.dispatch_local(Change::Account(defaults));
                            }
                        } />
                    <span>{texts.text("settings.missed_call_task")}</span>
                </label>
            </fieldset>
            <p id="callcard-log-status" class="callcard-log-status" role="status" aria-live="polite"
                data-state=move || state.get().as_str()>
                {status}
            </p>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(account: LogSettings, mine: UserLogSettings) -> LogSettingsView {
        LogSettingsView { account, mine, applied: account.for_user(&mine) }
    }

    #[test]
    fn a_box_becomes_the_users_own_choice_and_keeps_the_others() {
        let v = view(
            LogSettings { recording: false, ..LogSettings::default() },
            UserLogSettings { duration: Some(false), ..UserLogSettings::default() },
        );
        let mine = mine_with(&v, Section::Transcript, false);
        assert_eq!(
            mine,
            UserLogSettings { duration: Some(false), transcript: Some(false), ..UserLogSettings::default() }
        );
        // Switching on what the account has off is the user's choice, kept.
        let mine = mine_with(&v, Section::Recording, true);
        assert_eq!(mine.recording, Some(true));
        assert!(v.account.for_user(&mine).recording);
    }

    #[test]
    fn an_admins_box_changes_one_default_and_keeps_the_missed_call_task() {
        let v = view(LogSettings { missed_call_task: true, ..LogSettings::default() }, UserLogSettings::default());
        let defaults = account_with(&v, Section::AiSummary, false);
        assert!(!defaults.ai_summary && defaults.missed_call_task && defaults.transcript);
    }

    #[test]
    fn every_switched_section_has_a_distinct_name() {
        let names: std::collections::BTreeSet<_> = SWITCHED.into_iter().map(section_name).collect();
        assert_eq!(names.len(), SWITCHED.len());
        // The names are the API's: a body built from them is accepted.
        for name in names {
            let body = format!(r#"{{"{name}": false}}"#);
            assert!(serde_json::from_str::<UserLogSettings>(&body).is_ok(), "{name}");
            assert!(serde_json::from_str::<LogSettings>(&body).is_ok(), "{name}");
        }
    }

    #[test]
    fn failures_read_as_what_the_manager_can_do() {
        let refused = AjaxError::new(403, "not an admin");
        let down = AjaxError::new(0, "offline");
        assert_eq!(
            LogSettingsState::failure(&Change::Account(LogSettings::default()), &refused).text_key(),
            Some("settings.log_admin_only")
        );
        assert_eq!(
            LogSettingsState::failure(&Change::Account(LogSettings::default()), &down).text_key(),
            Some("settings.log_not_saved")
        );
        assert_eq!(
            LogSettingsState::failure(&Change::Mine(UserLogSettings::default()), &refused).text_key(),
            Some("settings.log_not_saved")
        );
        assert_eq!(LogSettingsState::failure(&Change::Load, &down).as_str(), "failed");
        assert_eq!(LogSettingsState::Ready.text_key(), None);
    }
}
