//! The client against the real sandbox router (Kommo's API at Kommo's paths)
//! on 127.0.0.1:0: the OAuth install flow, every API area the product uses,
//! the sandbox's own rate limit and fault injection.
//!
//! Every client here uses the production budget ([`LocalBudget::kommo`]),
//! so these tests also show the sandbox's 7 rps limiter is never tripped.

use kommo_client::*;
use kommo_sandbox::seed::numbers;
use kommo_sandbox::{FaultConfig, Sandbox, SandboxConfig};
use std::sync::Arc;
use std::time::Duration;

const ANNA: u64 = 8_320_148;
const WEBSITE_REDESIGN_LEAD: u64 = 5_756_100;

struct Kommo {
    sandbox: Sandbox,
    origin: String,
    tokens: Arc<InMemoryTokens>,
    client: KommoClient,
}

fn oauth_app(sb: &Sandbox) -> OAuthApp {
    let cfg = sb.config();
    OAuthApp {
        client_id: cfg.client_id.clone(),
        client_secret: cfg.integration_secret.clone(),
        redirect_uri: cfg.redirect_uri.clone(),
    }
}

/// A seeded sandbox on a random port, and a client installed the way the
/// backend does it: authorization code → tokens → account id.
async fn kommo_with(config: impl FnOnce(SandboxConfig) -> SandboxConfig, client_config: ClientConfig) -> Kommo {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let sandbox = Sandbox::new(config(SandboxConfig::for_tests(&origin)));
    let router = sandbox.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let oauth = OAuthClient::new(&origin, oauth_app(&sandbox), client_config.clone()).unwrap();
    let code = sandbox.authorization_code(ANNA);
    let pair = oauth.exchange_code(&code, &sandbox.config().redirect_uri).await.unwrap();
    let tokens = Arc::new(InMemoryTokens::new(Duration::from_secs(300)));
    let account_id = sandbox.account_id();
    tokens.insert(account_id, oauth, pair);
    let client = KommoClient::builder(&origin, account_id, tokens.clone())
        .budget(Arc::new(LocalBudget::kommo()))
        .config(client_config)
        .build()
        .unwrap();
    Kommo { sandbox, origin, tokens, client }
}

fn quick() -> ClientConfig {
    ClientConfig {
        backoff_base: Duration::from_millis(20),
        backoff_cap: Duration::from_millis(200),
        ..Default::default()
    }
}

async fn kommo() -> Kommo {
    kommo_with(|c| c, quick()).await
}

#[tokio::test]
async fn install_flow_reads_account_and_users() {
    let k = kommo().await;
    let account = k.client.account().await.unwrap();
    assert_eq!(account.id, k.sandbox.account_id());
    assert_eq!(account.subdomain, "acme");
    let users = k.client.users().await.unwrap();
    assert!(users.iter().any(|u| u.id == ANNA), "{users:?}");
}

#[tokio::test]
async fn one_user_comes_with_their_admin_right() {
    let k = kommo().await;
    let anna = k.client.user(ANNA).await.unwrap();
    assert!(anna.rights.is_admin, "Anna administers the demo account: {anna:?}");
    let bruno = k.client.user(kommo_sandbox::seed::demo_users()[1].id).await.unwrap();
    assert!(!bruno.rights.is_admin, "{bruno:?}");
    assert!(matches!(k.client.user(1).await, Err(KommoError::NotFound)));
}

#[tokio::test]
async fn a_used_authorization_code_needs_reauthorization() {
    let k = kommo().await;
    let oauth = OAuthClient::new(&k.origin, oauth_app(&k.sandbox), quick()).unwrap();
    let code = k.sandbox.authorization_code(ANNA);
    oauth.exchange_code(&code, &k.sandbox.config().redirect_uri).await.unwrap();
    let err = oauth.exchange_code(&code, &k.sandbox.config().redirect_uri).await.unwrap_err();
    assert!(matches!(err, KommoError::ReauthorizationNeeded { .. }), "{err:?}");
}

#[tokio::test]
async fn caller_id_follows_kommos_rule() {
    let k = kommo().await;
    let hit = k.client.identify_caller(numbers::CONTACT_ONE_ACTIVE_LEAD, &[ANNA]).await.unwrap().unwrap();
    assert_eq!(hit.entity, EntityRef::new(EntityKind::Lead, WEBSITE_REDESIGN_LEAD));
    assert_eq!(hit.query_string.as_deref(), Some("05703077"));
    let company = k.client.identify_caller(numbers::COMPANY_NO_LEADS, &[ANNA]).await.unwrap().unwrap();
    assert_eq!(company.entity.kind, EntityKind::Company);
    let customer = k.client.identify_caller(numbers::CONTACT_ONE_CUSTOMER, &[ANNA]).await.unwrap().unwrap();
    assert_eq!(customer.entity.kind, EntityKind::Customer);
    assert_eq!(k.client.identify_caller(numbers::UNKNOWN, &[ANNA]).await.unwrap(), None);
}

#[tokio::test]
async fn search_get_and_add_a_phone_without_losing_the_others() {
    let k = kommo().await;
    let found = k.client.search::<Contact>(numbers::CONTACT_NO_LEADS, &[]).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    let id = found[0].id;
    let before = k.client.get::<Contact>(id, &[With::Leads]).await.unwrap();
    assert!(before.embedded.leads.is_empty());
    let old_phones: Vec<String> = before.phones().iter().map(|p| p.to_string()).collect();
    assert!(!old_phones.is_empty());

    let contact = EntityRef::new(EntityKind::Contact, id);
    assert!(k.client.add_phone(contact, "+1 (555) 010-9999").await.unwrap());
    // The same number in another format is already there.
    assert!(!k.client.add_phone(contact, "15550109999").await.unwrap());
    let after = k.client.get::<Contact>(id, &[]).await.unwrap();
    for p in &old_phones {
        assert!(after.phones().contains(&p.as_str()), "{p} was dropped: {:?}", after.phones());
    }
    assert!(after.phones().contains(&"+1 (555) 010-9999"));

    let lead = EntityRef::new(EntityKind::Lead, WEBSITE_REDESIGN_LEAD);
    assert!(matches!(k.client.add_phone(lead, "+15550109999").await, Err(KommoError::Unsupported(_))));
    // (Not numbers::UNKNOWN: its last 7 digits are a filler contact's, and
    // contact search matches on 7.)
    assert!(k.client.search::<Contact>("+1 999 000 1234", &[]).await.unwrap().is_empty());
    assert!(matches!(k.client.get::<Lead>(999_999_999, &[]).await, Err(KommoError::NotFound)));

    let lead = k.client.get::<Lead>(WEBSITE_REDESIGN_LEAD, &[With::Contacts]).await.unwrap();
    assert!(lead.is_active());
    assert!(!lead.embedded.contacts.is_empty());
}

#[tokio::test]
async fn calls_are_logged_per_item_and_found_by_uniq() {
    let k = kommo().await;
    let mut known = NewCall::new(Direction::Inbound, 42, "callcard", numbers::CONTACT_ONE_ACTIVE_LEAD);
    known.uniq = Some("pbx-1".into());
    known.call_status = Some(CallStatus::HadConversation);
    let mut unknown = NewCall::new(Direction::Outbound, 0, "callcard", numbers::UNKNOWN);
    unknown.uniq = Some("pbx-2".into());
    let answer = k.client.add_calls(&[known, unknown]).await.unwrap();
    let logged = answer.result_for("0").unwrap().unwrap();
    assert_eq!(logged.entity, EntityRef::new(EntityKind::Lead, WEBSITE_REDESIGN_LEAD));
    let refused = answer.result_for("1").unwrap().unwrap_err();
    assert!(refused.detail.is_some(), "{refused:?}");

    let note = k.client.find_call_note_by_uniq(logged.entity, "pbx-1").await.unwrap().unwrap();
    assert_eq!(note.note_type, "call_in");
    assert_eq!(note.body().unwrap().call().unwrap().duration, 42);
    assert!(k.client.find_call_note_by_uniq(logged.entity, "pbx-2").await.unwrap().is_none());
}

#[tokio::test]
async fn notes_are_created_once_listed_and_edited() {
    let k = kommo().await;
    let lead = EntityRef::new(EntityKind::Lead, WEBSITE_REDESIGN_LEAD);
    let params = CallNoteParams {
        uniq: "pbx-note-1".into(),
        duration: 30,
        source: "callcard".into(),
        link: None,
        phone: numbers::CONTACT_ONE_ACTIVE_LEAD.into(),
        ..CallNoteParams::default()
    };
    let note = NewNote::from(NoteBody::CallOut(params.clone()));
    let (first, created) = k.client.add_call_note_once(lead, &note).await.unwrap();
    assert!(created);
    let (second, created) = k.client.add_call_note_once(lead, &note).await.unwrap();
    assert!(!created);
    assert_eq!(first.id, second.id);

    k.client.add_note(lead, &NoteBody::Common { text: "Asked for a quote".into() }.into()).await.unwrap();
    let service = NoteBody::ServiceMessage { service: "callcard".into(), text: "Call result saved".into() };
    k.client.add_note(lead, &service.into()).await.unwrap();

    let calls = k.client.list_notes(lead, &[NoteType::CallOut]).await.unwrap();
    assert_eq!(calls.iter().filter(|n| n.params["uniq"] == "pbx-note-1").count(), 1);
    assert!(calls.iter().all(|n| n.note_type == "call_out"));
    let all = k.client.list_notes(lead, &[]).await.unwrap();
    assert!(all.iter().any(|n| n.body() == Some(NoteBody::Common { text: "Asked for a quote".into() })));

    // The recording arrives later: the same note gets its link.
    let with_link = NoteBody::CallOut(CallNoteParams { link: Some("https://pbx.example/rec/1.mp3".into()), ..params });
    let edited = k.client.update_note(lead, first.id, &with_link).await.unwrap();
    assert_eq!(edited.id, first.id);
    let note = k.client.find_call_note_by_uniq(lead, "pbx-note-1").await.unwrap().unwrap();
    assert_eq!(note.body(), Some(with_link));
}

#[tokio::test]
async fn tasks_are_created_listed_and_validated() {
    let k = kommo().await;
    let lead = EntityRef::new(EntityKind::Lead, WEBSITE_REDESIGN_LEAD);
    let due = 4_102_444_800; // 2100-01-01
    let refs = k.client.create_tasks(&[NewTask::follow_up(lead, "Call back about the quote", due)]).await.unwrap();
    assert_eq!(refs.len(), 1);
    let open = k.client.list_tasks(Some(lead), true).await.unwrap();
    let task = open.iter().find(|t| t.id == refs[0].id).expect("the new task is listed");
    assert_eq!(task.text, "Call back about the quote");
    assert_eq!(task.entity(), Some(lead));

    let bad = NewTask { task_type_id: Some(999), ..NewTask::follow_up(lead, "x", due) };
    let err = k.client.create_tasks(&[bad]).await.unwrap_err();
    let KommoError::Validation(problem) = err else { panic!("{err:?}") };
    let paths: Vec<_> =
        problem.validation_errors.iter().flat_map(|v| &v.errors).filter_map(|e| e.path.clone()).collect();
    assert!(paths.iter().any(|p| p == "task_type_id"), "{problem:?}");
}

fn incoming(uniq: &str, phone: &str) -> NewSipUnsorted {
    NewSipUnsorted {
        source_uid: uniq.into(),
        source_name: "callcard".into(),
        pipeline_id: None,
        created_at: None,
        embedded: NewUnsortedEmbedded {
            leads: vec![NewUnsortedLead { name: format!("Call from {phone}"), ..Default::default() }],
            contacts: vec![NewUnsortedContact::with_phone(phone, phone)],
        },
        metadata: SipMetadata {
            uniq: uniq.into(),
            from: phone.into(),
            phone: "101".into(),
            called_at: 1_700_000_000,
            duration: 12,
            link: None,
            service_code: "callcard".into(),
            is_call_event_needed: true,
        },
        request_id: None,
    }
}

#[tokio::test]
async fn incoming_leads_are_created_read_accepted_and_declined() {
    let k = kommo().await;
    let created = k.client.add_sip_unsorted(&[incoming("pbx-u1", numbers::UNKNOWN)]).await.unwrap();
    assert_eq!(created.len(), 1);
    let uid = created[0].uid.clone();
    let read = k.client.get_unsorted(&uid).await.unwrap();
    assert_eq!(read.sip_metadata().unwrap().uniq, "pbx-u1");
    assert_eq!(read.embedded.contacts.len(), 1);
    let accepted = k.client.accept_unsorted(&uid, Some(ANNA), None).await.unwrap();
    assert_eq!(accepted.uid, uid);
    assert_eq!(accepted.embedded.leads.len(), 1);
    // The accepted lead is a real lead now.
    let lead = k.client.get::<Lead>(accepted.embedded.leads[0].id, &[With::Contacts]).await.unwrap();
    assert!(lead.is_active());

    let other = k.client.add_sip_unsorted(&[incoming("pbx-u2", "+15035550112")]).await.unwrap();
    let declined = k.client.decline_unsorted(&other[0].uid, Some(ANNA)).await.unwrap();
    assert_eq!(declined.uid, other[0].uid);
    // Deciding twice is refused (which is why accept/decline are never retried blindly).
    assert!(k.client.decline_unsorted(&other[0].uid, Some(ANNA)).await.is_err());
}

#[tokio::test]
async fn links_are_added_and_removed() {
    let k = kommo().await;
    let contact = k.client.search::<Contact>(numbers::CONTACT_NO_LEADS, &[]).await.unwrap()[0].id;
    let lead = EntityRef::new(EntityKind::Lead, WEBSITE_REDESIGN_LEAD);
    let target = EntityRef::new(EntityKind::Contact, contact);
    let links = k.client.link(lead, &[Link::to(target)]).await.unwrap();
    assert!(links.iter().any(|l| l.target() == target), "{links:?}");
    // Linking twice is harmless.
    k.client.link(lead, &[Link::to(target)]).await.unwrap();
    let linked = k.client.get::<Lead>(lead.id, &[With::Contacts]).await.unwrap();
    assert!(linked.embedded.contacts.iter().any(|c| c.id == contact));

    k.client.unlink(lead, &[Link::to(target)]).await.unwrap();
    let unlinked = k.client.get::<Lead>(lead.id, &[With::Contacts]).await.unwrap();
    assert!(!unlinked.embedded.contacts.iter().any(|c| c.id == contact));
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed_on_401() {
    let k = kommo_with(|c| c.with_access_token_ttl(Duration::from_secs(1)), quick()).await;
    // Pretend we believe the token lasts a day, so only Kommo's 401 tells us.
    let account = k.sandbox.account_id();
    let mut pair = k.tokens.tokens(account).unwrap();
    pair.expires_at += 86_400;
    let oauth = OAuthClient::new(&k.origin, oauth_app(&k.sandbox), quick()).unwrap();
    k.tokens.insert(account, oauth, pair);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    k.client.account().await.unwrap();
    assert_eq!(k.tokens.refresh_count(account), 1);
}

#[tokio::test]
async fn revoked_tokens_need_reauthorization() {
    let k = kommo().await;
    k.client.account().await.unwrap();
    k.sandbox.revoke_all_tokens();
    let err = k.client.account().await.unwrap_err();
    assert!(err.needs_reauthorization(), "{err:?}");
}

#[tokio::test]
async fn the_sandbox_rate_limit_is_never_hit() {
    // No retries: a single 429 from the sandbox would fail a call.
    let k = kommo_with(|c| c, ClientConfig { max_retries: 0, ..quick() }).await;
    let calls = (0..16).map(|_| {
        let c = k.client.clone();
        tokio::spawn(async move { c.account().await })
    });
    for r in futures::future::join_all(calls).await {
        r.unwrap().unwrap();
    }
}

#[tokio::test]
async fn injected_faults_are_retried_or_reported() {
    let k = kommo().await;
    k.sandbox.set_faults(FaultConfig { script: vec!["503".into(), "502".into()], ..Default::default() });
    k.client.account().await.unwrap();

    k.sandbox.set_faults(FaultConfig { script: vec!["429".into()], retry_after: Some(1), ..Default::default() });
    let started = std::time::Instant::now();
    k.client.account().await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));

    // A dropped connection on a create: it may have landed, so no blind retry.
    k.sandbox.set_faults(FaultConfig { script: vec!["drop".into()], ..Default::default() });
    let call = NewCall::new(Direction::Inbound, 5, "callcard", numbers::CONTACT_NO_LEADS);
    let err = k.client.add_calls(std::slice::from_ref(&call)).await.unwrap_err();
    assert!(err.may_have_been_applied(), "{err:?}");
    // The script is used up: the next request goes through.
    assert_eq!(k.client.add_calls(&[call]).await.unwrap().calls.len(), 1);
}

/// Creates `n` contacts over the API (as a person importing them would),
/// each with its own number; returns their ids.
async fn import_contacts(k: &Kommo, n: usize) -> Vec<u64> {
    let token = k.sandbox.issue_tokens(ANNA).access_token;
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(250) {
        let body: Vec<serde_json::Value> = chunk
            .iter()
            .map(|i| {
                serde_json::json!({"name": format!("Imported {i}"),
                "custom_fields_values": [{"field_code": "PHONE", "values": [{"value": format!("+1 212 {i:07}")}]}]})
            })
            .collect();
        let answer: serde_json::Value = http
            .post(format!("{}/api/v4/contacts", k.origin))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.extend(answer["_embedded"]["contacts"].as_array().unwrap().iter().map(|c| c["id"].as_u64().unwrap()));
    }
    ids
}

#[tokio::test]
async fn a_listing_reads_every_record_once_page_by_page_and_resumes() {
    let k = kommo_with(|c| c.with_rate_limit(None), quick()).await;
    let imported = import_contacts(&k, 300).await;
    let total = k.sandbox.store().contacts.len();
    assert!(total > 300);

    let mut seen = Vec::new();
    let mut listing = Listing::from_start(&[With::Leads]);
    let mut pages = 0;
    loop {
        let page = k.client.list_page::<Contact>(&listing).await.unwrap();
        pages += 1;
        seen.extend(page.records.iter().map(|c| c.id));
        // A restart resumes from the saved listing: simulate it by cloning.
        match page.next {
            Some(next) => listing = next.clone(),
            None => break,
        }
    }
    assert_eq!(pages, total.div_ceil(250));
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (total, total), "every contact exactly once");
    assert!(imported.iter().all(|id| seen.contains(id)));
}

#[tokio::test]
async fn changed_since_lists_only_what_changed_oldest_change_first() {
    let k = kommo_with(|c| c.with_rate_limit(None), quick()).await;
    let token = k.sandbox.issue_tokens(ANNA).access_token;
    let future = 4_000_000_000i64;
    let (a, b) = {
        let st = k.sandbox.store();
        let mut ids = st.contacts.keys().copied();
        (ids.next().unwrap(), ids.next().unwrap())
    };
    // b changes before a: the listing gives b first.
    for (id, at) in [(b, future), (a, future + 5)] {
        let r = reqwest::Client::new()
            .patch(format!("{}/api/v4/contacts/{id}", k.origin))
            .bearer_auth(&token)
            .json(&serde_json::json!({"name": format!("Changed {id}"), "updated_at": at}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let page = k.client.list_page::<Contact>(&Listing::changed_since(future, &[])).await.unwrap();
    assert_eq!(page.records.iter().map(|c| c.id).collect::<Vec<_>>(), [b, a]);
    assert!(page.next.is_none());
    let later = k.client.list_page::<Contact>(&Listing::changed_since(future + 6, &[])).await.unwrap();
    assert!(later.records.is_empty());
}

#[tokio::test]
async fn webhooks_subscribe_once_per_destination_and_unsubscribe() {
    let k = kommo().await;
    assert!(k.client.webhooks().await.unwrap().is_empty());
    let hook = "https://callcard.example/kommo/31415926/hook";
    let first = k.client.subscribe_webhook(hook, &["add_contact", "update_contact"]).await.unwrap();
    let again = k.client.subscribe_webhook(hook, &["add_contact", "status_lead"]).await.unwrap();
    assert_eq!(first.id, again.id);
    let all = k.client.webhooks().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].settings, ["add_contact", "status_lead"]);
    let refused = k.client.subscribe_webhook(hook, &["explode_lead"]).await.unwrap_err();
    assert!(matches!(refused, KommoError::Validation(_)), "{refused:?}");
    k.client.unsubscribe_webhook(hook).await.unwrap();
    k.client.unsubscribe_webhook(hook).await.unwrap();
    assert!(k.client.webhooks().await.unwrap().is_empty());
}

#[tokio::test]
async fn what_the_sandbox_delivers_reads_back_as_the_change_made() {
    let k = kommo_with(|c| c.with_rate_limit(None), quick()).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let tx = tx.clone();
            async move {
                tx.send(body).unwrap();
                axum::http::StatusCode::OK
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    k.client.subscribe_webhook(&hook, &["update_contact", "status_lead"]).await.unwrap();

    let contact = k.client.search::<Contact>(numbers::CONTACT_NO_LEADS, &[]).await.unwrap()[0].id;
    k.client.add_phone(EntityRef::new(EntityKind::Contact, contact), "+1 415 555 0199").await.unwrap();
    let body = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
    let delivery = Delivery::parse(&body).unwrap();
    assert_eq!(delivery.account_id, Some(k.sandbox.account_id()));
    let change = &delivery.changes[0];
    assert_eq!((change.record, change.action), (EntityRef::new(EntityKind::Contact, contact), ChangeAction::Update));
    let phones = change.phones.clone().unwrap();
    assert!(phones.contains(&"+1 415 555 0199".to_string()) && phones.len() >= 2, "{phones:?}");
}
