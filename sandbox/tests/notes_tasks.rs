//! Notes (four types, every record kind, PATCH) and tasks.
mod common;

use serde_json::{json, Value};

#[tokio::test]
async fn four_note_types_on_every_kind() {
    let k = common::start().await;
    let targets = [
        ("leads", 5756100),
        ("contacts", k.id_of("contacts", "Maria Gonzalez").await),
        ("companies", k.id_of("companies", "Globex Corporation").await),
        ("customers", k.id_of("customers", "Kim Bakery weekly order").await),
    ];
    for (kind, id) in targets {
        let body = json!([
            {"note_type": "call_in", "params": {"uniq": "c1", "duration": 60, "source": "callcard", "link": "https://x/r.mp3", "phone": "+18305703077"}, "request_id": "in"},
            {"note_type": "call_out", "params": {"uniq": "c2", "duration": 0, "source": "callcard", "phone": "+18305703077"}},
            {"note_type": "common", "params": {"text": "Asked for a discount"}},
            {"note_type": "service_message", "params": {"service": "callcard", "text": "Call summary saved"}}
        ]);
        let v = k.post_ok(&format!("/api/v4/{kind}/{id}/notes"), body).await;
        let made = v["_embedded"]["notes"].as_array().unwrap();
        assert_eq!(made.len(), 4);
        assert_eq!(made[0]["request_id"], "in");
        assert_eq!(made[1]["request_id"], "1");
        assert_eq!(made[0]["entity_id"], id);
        let list = k.get_ok(&format!("/api/v4/{kind}/{id}/notes?filter[note_type][]=call_in")).await;
        let notes = list["_embedded"]["notes"].as_array().unwrap();
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0]["params"]["link"], "https://x/r.mp3");
        // The entity_id form of the batch endpoint.
        let v = k
            .post_ok(
                &format!("/api/v4/{kind}/notes"),
                json!([{"entity_id": id, "note_type": "common", "params": {"text": "x"}}]),
            )
            .await;
        assert_eq!(v["_embedded"]["notes"][0]["entity_id"], id);
    }
}

#[tokio::test]
async fn notes_are_validated() {
    let k = common::start().await;
    let r = k
        .post(
            "/api/v4/leads/5756100/notes",
            json!([{"note_type": "call_in", "params": {"uniq": "c1"}}, {"note_type": "attachment", "params": {}}, {"note_type": "common"}]),
        )
        .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    let ve = v["validation-errors"].as_array().unwrap();
    assert_eq!(ve.len(), 3);
    let first: Vec<&str> = ve[0]["errors"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(first, ["params.source", "params.phone", "params.duration"]);
    assert_eq!(ve[1]["errors"][0]["code"], "NotSupportedChoice");
    assert_eq!(ve[2]["errors"][0]["path"], "params");
    assert_eq!(
        k.post("/api/v4/leads/1/notes", json!([{"note_type": "common", "params": {"text": "x"}}])).await.status(),
        404
    );
    let r =
        k.post("/api/v4/leads/notes", json!([{"entity_id": 1, "note_type": "common", "params": {"text": "x"}}])).await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn notes_are_edited_with_patch() {
    let k = common::start().await;
    let v = k
        .post_ok(
            "/api/v4/leads/5756100/notes",
            json!([{"note_type": "call_in", "params": {"uniq": "c1", "duration": 60, "source": "callcard", "phone": "+18305703077"}}]),
        )
        .await;
    let id = v["_embedded"]["notes"][0]["id"].as_u64().unwrap();
    // The late recording: only the link is sent, the rest stays.
    let r =
        k.patch(&format!("/api/v4/leads/5756100/notes/{id}"), json!({"params": {"link": "https://x/late.mp3"}})).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], id);
    let n = k.get_ok(&format!("/api/v4/leads/notes/{id}")).await;
    assert_eq!(n["params"]["link"], "https://x/late.mp3");
    assert_eq!(n["params"]["duration"], 60);
    // Batch PATCH.
    let v =
        k.patch("/api/v4/leads/notes", json!([{"id": id, "note_type": "call_in", "params": {"duration": 75}}])).await;
    assert_eq!(v.status(), 200);
    assert_eq!(k.get_ok(&format!("/api/v4/leads/5756100/notes/{id}")).await["params"]["duration"], 75);
    // The type cannot change; params stay valid; other records' notes are not reachable.
    assert_eq!(k.patch(&format!("/api/v4/leads/notes/{id}"), json!({"note_type": "common"})).await.status(), 400);
    assert_eq!(k.patch(&format!("/api/v4/leads/notes/{id}"), json!({"params": {"duration": "x"}})).await.status(), 400);
    assert_eq!(k.patch(&format!("/api/v4/contacts/notes/{id}"), json!({"params": {}})).await.status(), 404);
    assert_eq!(k.get(&format!("/api/v4/leads/5756101/notes/{id}")).await.status(), 404);
}

#[tokio::test]
async fn tasks_create_list_complete() {
    let k = common::start().await;
    let v = k
        .post_ok(
            "/api/v4/tasks",
            json!([{"text": "Call back about the quote", "complete_till": 1900000000, "entity_id": 5756100, "entity_type": "leads",
                    "task_type_id": 1, "responsible_user_id": 8375357, "request_id": "t1"},
                   {"text": "Demo meeting", "complete_till": 1900003600, "task_type_id": 2}]),
        )
        .await;
    let tasks = v["_embedded"]["tasks"].as_array().unwrap();
    assert_eq!(tasks[0]["request_id"], "t1");
    let id = tasks[0]["id"].as_u64().unwrap();
    let list = k.get_ok("/api/v4/tasks?filter[entity_type]=leads&filter[entity_id]=5756100").await;
    let found = list["_embedded"]["tasks"].as_array().unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["text"], "Call back about the quote");
    assert_eq!(found[0]["entity_type"], "leads");
    assert_eq!(found[0]["responsible_user_id"], 8375357);
    assert_eq!(found[0]["complete_till"], 1900000000);
    assert_eq!(found[0]["is_completed"], false);
    let r = k.patch(&format!("/api/v4/tasks/{id}"), json!({"is_completed": true, "result": {"text": "done"}})).await;
    assert_eq!(r.status(), 200);
    let t = k.get_ok(&format!("/api/v4/tasks/{id}")).await;
    assert_eq!(t["is_completed"], true);
    assert_eq!(t["result"]["text"], "done");
    assert_eq!(k.get("/api/v4/tasks?filter[entity_id]=5756100&filter[is_completed]=0").await.status(), 204);
    // Required fields and existing records.
    let r = k.post("/api/v4/tasks", json!([{"entity_id": 1, "entity_type": "leads", "task_type_id": 9}])).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    let paths: Vec<&str> =
        v["validation-errors"][0]["errors"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["text", "complete_till", "task_type_id", "entity_id"]);
    // The inspection view shows the task on its lead.
    let doc = k.inspect().await;
    let lead = doc["leads"].as_array().unwrap().iter().find(|l| l["id"] == 5756100).unwrap().clone();
    assert!(lead["tasks"].as_array().unwrap().iter().any(|t| t["id"] == id));
}
