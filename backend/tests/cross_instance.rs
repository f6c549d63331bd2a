//! Two backend instances on one PostgreSQL database, as behind a load
//! balancer: an event posted to one reaches a widget connected to the other
//! (through LISTEN/NOTIFY), in order and only for its user; tickets, one-time
//! token replays and feed offsets hold across instances; shutdown closes
//! feeds with "going away"; an instance alone announces nothing, and one
//! that joins is known to the others before it serves.

mod common;

use callcard_calls::feed::FeedMessage;
use common::*;
use futures::StreamExt;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_received_by_one_instance_reaches_a_widget_on_another() {
    let db = Db::postgres().await;
    let a = Instance::start(config(&db)).await;
    let b = Instance::start(config(&db)).await;
    let acme = Account::random();
    acme.provision(&a.backend, &[(11, "101"), (12, "102")]).await;

    // The ticket comes from instance A, the feed is opened on B.
    let mut anna_on_b = connect(&b, &ticket(&a.base, &acme, 11).await, Some(0)).await;
    let mut bruno_on_b = connect(&b, &ticket(&b.base, &acme, 12).await, Some(0)).await;
    let t0 = now_ms();
    deliver(&a.base, &acme, &event("ringing", "c-1", "101", t0)).await;
    deliver(&a.base, &acme, &event("answered", "c-1", "101", t0 + 1)).await;
    // Offsets are shared: an event for the same user on B continues at 3.
    deliver(&b.base, &acme, &event("ended", "c-1", "101", t0 + 2)).await;
    assert_eq!(event_of(next(&mut anna_on_b, SOON).await), (1, "c-1".into()));
    assert_eq!(event_of(next(&mut anna_on_b, SOON).await), (2, "c-1".into()));
    assert_eq!(event_of(next(&mut anna_on_b, SOON).await), (3, "c-1".into()));
    assert_eq!(next(&mut bruno_on_b, QUIET).await, None, "Bruno must not see Anna's call");
    assert!(b.backend.metrics_text().contains("callcard_feed_notifications_total 2"), "{}", b.backend.metrics_text());

    // A one-time token used on A is refused on B.
    let token = one_time_token(&acme, 11, |_| {});
    let ok = client().post(format!("{}/widget/ticket", a.base)).header("x-auth-token", &token).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let replay =
        client().post(format!("{}/widget/ticket", b.base)).header("x-auth-token", &token).send().await.unwrap();
    assert_eq!(replay.status(), 401);

    // Shutting B down closes its feeds with 1001 ("going away"), so widgets
    // reconnect elsewhere; A still serves them from the same offset.
    b.backend.close_feeds().await;
    let mut saw_close = false;
    while let Ok(Some(Ok(frame))) = tokio::time::timeout(Duration::from_secs(5), anna_on_b.next()).await {
        if let Message::Close(Some(frame)) = frame {
            assert_eq!(u16::from(frame.code), 1001);
            saw_close = true;
            break;
        }
    }
    assert!(saw_close, "the feed was not closed with 1001");
    let mut anna_on_a = connect(&a, &ticket(&a.base, &acme, 11).await, Some(3)).await;
    deliver(&a.base, &acme, &event("recording_ready", "c-1", "101", t0 + 5)).await;
    assert_eq!(event_of(next(&mut anna_on_a, SOON).await), (4, "c-1".into()));
    assert!(matches!(next(&mut anna_on_a, QUIET).await, None | Some(FeedMessage::Heartbeat { .. })));

    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_alone_announces_nothing_and_a_newcomer_is_known_before_it_serves() {
    let db = Db::postgres().await;
    let a = Instance::start(config(&db)).await;
    let acme = Account::random();
    acme.provision(&a.backend, &[(11, "101")]).await;
    let t0 = now_ms();
    deliver(&a.base, &acme, &event("ringing", "c-1", "101", t0)).await;
    let alone = a.backend.metrics_text();
    for line in [
        "callcard_feed_peers 0",
        "callcard_feed_notices_total{outcome=\"alone\"} 1",
        "callcard_feed_notices_total{outcome=\"announced\"} 0",
    ] {
        assert!(alone.contains(line), "{line} missing in\n{alone}");
    }

    // B's start returns once A answered its hello, and A noted B before
    // answering: A already announces to B when B serves its first feed.
    let b = Instance::start(config(&db)).await;
    assert!(a.backend.metrics_text().contains("callcard_feed_peers 1"), "{}", a.backend.metrics_text());
    assert!(b.backend.metrics_text().contains("callcard_feed_peers 1"), "{}", b.backend.metrics_text());
    let mut anna_on_b = connect(&b, &ticket(&b.base, &acme, 11).await, Some(1)).await;
    deliver(&a.base, &acme, &event("answered", "c-1", "101", t0 + 1)).await;
    assert_eq!(event_of(next(&mut anna_on_b, SOON).await), (2, "c-1".into()));
    assert!(a.backend.metrics_text().contains("callcard_feed_notices_total{outcome=\"announced\"} 1"));
    assert!(
        b.backend.metrics_text().contains("callcard_feed_notifications_total 1"),
        "the event must come by A's notice, not a catch-up:\n{}",
        b.backend.metrics_text()
    );

    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_is_dropped_and_heartbeats_flow() {
    let db = Db::sqlite().await;
    let mut cfg = config(&db);
    cfg.heartbeat_interval = Duration::from_millis(300);
    let node = Instance::start(cfg).await;
    let acme = Account::random();
    acme.provision(&node.backend, &[(11, "101")]).await;
    let mut ws = connect(&node, &ticket(&node.base, &acme, 11).await, None).await;
    // Stay silent (tungstenite answers pings only while it is being read):
    // the server sends heartbeats meanwhile, then gives up on us.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut heartbeats = 0;
    let mut closed = false;
    while let Ok(frame) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
        match frame {
            Some(Ok(Message::Text(text))) => {
                if let FeedMessage::Heartbeat { latest_offset } = serde_json::from_str(&text).unwrap() {
                    assert_eq!(latest_offset, 0);
                    heartbeats += 1;
                }
            }
            Some(Ok(Message::Ping(_))) => {} // deliberately not answered
            Some(Ok(_)) => {}
            Some(Err(_)) | None => {
                closed = true;
                break;
            }
        }
    }
    assert!(heartbeats >= 1, "no heartbeat was sent");
    assert!(closed, "a peer silent for two heartbeats must be dropped");
    node.stop().await;
}
