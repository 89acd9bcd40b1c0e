//! HTTP conventions of the API over real sockets: entity tags and
//! conditional writes, 201 with `Location` on create, cursor paging of
//! listings, bodies that must be JSON objects, and the bounds the OpenAPI
//! document states.

mod common;

use std::collections::BTreeSet;

use common::{Served, call, serve};
use hyper::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};
use weft_core::{MAX_PAGE, Write};
use weft_daemon::model::ListParams;

/// A request with extra headers: status, headers and JSON body.
async fn send(
    s: &Served,
    method: Method,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Value) {
    let body = body.map(|b| serde_json::to_vec(&b).unwrap());
    let (status, headers, bytes) = s
        .client
        .raw_with_headers(method, path, body, headers)
        .await
        .unwrap();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, value)
}

fn etag_of(headers: &HeaderMap) -> String {
    headers
        .get("etag")
        .expect("an ETag")
        .to_str()
        .unwrap()
        .to_owned()
}

/// The entity tag the API documents for these heads.
fn tag_for(heads: &Value) -> String {
    let mut heads: Vec<&str> = heads
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    heads.sort();
    format!("\"{}\"", heads.join("."))
}

#[tokio::test(flavor = "multi_thread")]
async fn etags_and_conditional_writes() {
    let s = serve().await;
    let doc = "/v1/spaces/default/collections/notes/docs/a%2Fb%20c";

    // A put that creates: 201, Location, and the ETag of the heads it answers.
    let (status, headers, made) = send(&s, Method::PUT, doc, Some(json!({"n": 1})), &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(headers["location"], doc);
    let v1 = etag_of(&headers);
    assert_eq!(v1, tag_for(&made["heads"]));
    let (status, headers, read) = send(&s, Method::GET, doc, None, &[]).await;
    assert_eq!((status, read), (StatusCode::OK, json!({"n": 1})));
    assert_eq!(etag_of(&headers), v1);

    // Replacing answers 200 without Location; If-Match of the current tag holds.
    let (status, headers, replaced) = send(
        &s,
        Method::PUT,
        doc,
        Some(json!({"n": 2})),
        &[("if-match", &v1)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert!(headers.get("location").is_none());
    let v2 = etag_of(&headers);
    assert_ne!(v2, v1);
    assert_eq!(v2, tag_for(&replaced["heads"]));

    // The stale tag fails every write with 412 and changes nothing.
    for (method, body) in [
        (Method::PUT, Some(json!({"n": 3}))),
        (Method::PATCH, Some(json!({"n": 3}))),
        (Method::DELETE, None),
    ] {
        let (status, _, err) = send(&s, method.clone(), doc, body, &[("if-match", &v1)]).await;
        assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{method}: {err}");
        assert_eq!(err["error"], "precondition_failed");
    }
    // A tag this API never made, or a weak one, cannot match either.
    for tag in ["\"not-heads\"", &format!("W/{v2}")] {
        let (status, _, _) = send(
            &s,
            Method::PATCH,
            doc,
            Some(json!({"x": 1})),
            &[("if-match", tag)],
        )
        .await;
        assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{tag}");
    }
    // Create-only on an existing document.
    let (status, _, _) = send(
        &s,
        Method::PUT,
        doc,
        Some(json!({})),
        &[("if-none-match", "*")],
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    let (_, headers, read) = send(&s, Method::GET, doc, None, &[]).await;
    assert_eq!((read, etag_of(&headers)), (json!({"n": 2}), v2.clone()));

    // Malformed conditions are a 400, not a guess.
    for (name, value) in [
        ("if-match", "no-quotes"),
        ("if-match", "\"a\", \"b\""),
        ("if-none-match", "\"a\""),
    ] {
        let (status, _, err) = send(&s, Method::PUT, doc, Some(json!({})), &[(name, value)]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {value}: {err}");
    }
    // A condition longer than the stated bound is refused unread.
    let huge = format!("\"{}\"", "a".repeat(70 * 1024));
    let (status, _, _) = send(
        &s,
        Method::PUT,
        doc,
        Some(json!({})),
        &[("if-match", &huge)],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Patch and delete with the current tag; each answers the new tag.
    let (status, headers, patched) = send(
        &s,
        Method::PATCH,
        doc,
        Some(json!({"m": 1})),
        &[("if-match", &v2)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    let v3 = etag_of(&headers);
    assert_eq!(v3, tag_for(&patched["heads"]));
    let (status, headers, deleted) =
        send(&s, Method::DELETE, doc, None, &[("if-match", &v3)]).await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(etag_of(&headers), tag_for(&deleted["heads"]));

    // Absent now: If-Match fails (even `*`), If-None-Match: * creates again.
    let (status, _, _) = send(&s, Method::PUT, doc, Some(json!({})), &[("if-match", "*")]).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    let (status, headers, _) = send(
        &s,
        Method::PUT,
        doc,
        Some(json!({"again": true})),
        &[("if-none-match", "*")],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(headers["location"], doc);
}

#[tokio::test(flavor = "multi_thread")]
async fn of_racing_writes_on_one_tag_exactly_one_wins() {
    let s = serve().await;
    let doc = "/v1/spaces/default/collections/c/docs/race";
    let (_, headers, _) = send(&s, Method::PUT, doc, Some(json!({"n": 0})), &[]).await;
    let tag = etag_of(&headers);
    let writes = (1..=16).map(|i| {
        let client = s.client.clone();
        let tag = tag.clone();
        tokio::spawn(async move {
            let body = serde_json::to_vec(&json!({ "n": i })).unwrap();
            let (status, _, _) = client
                .raw_with_headers(Method::PUT, doc, Some(body), &[("if-match", &tag)])
                .await
                .unwrap();
            status
        })
    });
    let mut statuses = Vec::new();
    for w in writes {
        statuses.push(w.await.unwrap());
    }
    let won = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let lost = statuses
        .iter()
        .filter(|s| **s == StatusCode::PRECONDITION_FAILED)
        .count();
    assert_eq!((won, lost), (1, 15), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn listings_page_by_id_with_next_links() {
    let s = serve().await;
    let ids: Vec<String> = (0..25).map(|i| format!("d/{i:02} ✓")).collect();
    let space = s.node.default_space().to_owned();
    let writes = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let key = weft_core::DocKey::new(&space, "notes", id).unwrap();
            Write::Put(key, json!({ "i": i, "odd": i % 2 == 1 }))
        })
        .collect();
    s.node.batch(writes).await.unwrap();

    // Following `next` from a 7-document page visits every id once, in order.
    let mut path = "/v1/spaces/default/collections/notes/docs?limit=7".to_owned();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let (status, headers, page) = send(&s, Method::GET, &path, None, &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}: {page}");
        let page = page.as_array().unwrap().clone();
        assert!(page.len() <= 7);
        seen.extend(page.iter().map(|d| d["id"].as_str().unwrap().to_owned()));
        pages += 1;
        let Some(link) = headers.get("link") else {
            break;
        };
        let link = link.to_str().unwrap();
        assert!(link.ends_with("; rel=\"next\""), "{link}");
        path = link[1..link.find('>').unwrap()].to_owned();
        assert!(
            path.contains("limit=7") && path.contains("after="),
            "{path}"
        );
    }
    assert_eq!((seen.clone(), pages), (ids.clone(), 4));

    // Filters keep applying across pages.
    let odd = "/v1/spaces/default/collections/notes/docs?where=odd%3Dtrue&limit=5";
    let (_, headers, first) = send(&s, Method::GET, odd, None, &[]).await;
    let link = headers["link"].to_str().unwrap();
    let next = &link[1..link.find('>').unwrap()];
    assert!(next.contains("where=odd%3Dtrue"), "{next}");
    let (_, headers, second) = send(&s, Method::GET, next, None, &[]).await;
    let (_, _, third) = {
        let link = headers["link"].to_str().unwrap();
        send(
            &s,
            Method::GET,
            &link[1..link.find('>').unwrap()],
            None,
            &[],
        )
        .await
    };
    let odd_ids: Vec<_> = [first, second, third]
        .iter()
        .flat_map(|p| p.as_array().unwrap().clone())
        .map(|d| d["doc"]["i"].as_i64().unwrap())
        .collect();
    assert_eq!(odd_ids, (0..25).filter(|i| i % 2 == 1).collect::<Vec<_>>());

    // An ordered listing is one page; `after` with `order` is refused.
    let (status, headers, page) = send(
        &s,
        Method::GET,
        "/v1/spaces/default/collections/notes/docs?order=i&desc=true&limit=3",
        None,
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.get("link").is_none());
    assert_eq!(page[0]["doc"]["i"], 24);
    for bad in [
        "order=i&after=x",
        "limit=0",
        "limit=10001",
        "after=",
        &format!("after={}", "x".repeat(257)),
    ] {
        let path = format!("/v1/spaces/default/collections/notes/docs?{bad}");
        let (status, _, err) = send(&s, Method::GET, &path, None, &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_client_follows_next_past_a_full_page() {
    let s = serve().await;
    let total = MAX_PAGE as usize + 30;
    let space = s.node.default_space().to_owned();
    let writes: Vec<Write> = (0..total)
        .map(|i| {
            let key = weft_core::DocKey::new(&space, "many", format!("{i:06}")).unwrap();
            Write::Put(key, json!({ "i": i }))
        })
        .collect();
    // Batches hold at most MAX_BATCH writes.
    for chunk in writes.chunks(1000) {
        s.node.batch(chunk.to_vec()).await.unwrap();
    }
    let all = s
        .client
        .list(None, "many", &ListParams::default())
        .await
        .unwrap();
    let ids: BTreeSet<_> = all.iter().map(|d| d.id.clone()).collect();
    assert_eq!(
        (all.len(), ids.len()),
        (total, total),
        "no duplicates, no misses"
    );
    let some = ListParams {
        limit: Some(MAX_PAGE + 5),
        ..ListParams::default()
    };
    let capped = s.client.list(None, "many", &some).await.unwrap();
    assert_eq!(capped.len(), MAX_PAGE as usize + 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_that_must_be_objects_refuse_anything_else() {
    let s = serve().await;
    let (_, before) = call(&s, Method::GET, "/v1/spaces", None).await;
    let endpoints = [
        "/v1/spaces",
        "/v1/spaces/default/invites",
        "/v1/join",
        "/v1/peers",
        "/v1/sql",
    ];
    let not_objects = [
        json!([null, null]),
        json!(["team"]),
        json!(null),
        json!("x"),
        json!(3),
    ];
    for path in endpoints {
        for body in &not_objects {
            let (status, _, err) = send(&s, Method::POST, path, Some(body.clone()), &[]).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {err}");
            assert_eq!(err["error"], "invalid_input", "{path} {body}");
        }
    }
    // Nothing was made: no space, no invite entry in the membership log.
    let (_, after) = call(&s, Method::GET, "/v1/spaces", None).await;
    assert_eq!(before, after);
    // An empty object is still a valid invite request (every field optional).
    let (status, _, _) = send(
        &s,
        Method::POST,
        "/v1/spaces/default/invites",
        Some(json!({})),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread")]
async fn stated_bounds_are_enforced() {
    let s = serve().await;
    let node = s.node.node_id().to_string();
    let invites = "/v1/spaces/default/invites";
    let cases: Vec<(Method, String, Option<Value>, StatusCode)> = vec![
        // Space names: 128 characters, not blank, no control characters.
        (
            Method::POST,
            "/v1/spaces".into(),
            Some(json!({"name": "x".repeat(128)})),
            StatusCode::CREATED,
        ),
        (
            Method::POST,
            "/v1/spaces".into(),
            Some(json!({"name": "x".repeat(129)})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/v1/spaces".into(),
            Some(json!({"name": " \u{3000} "})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/v1/spaces".into(),
            Some(json!({"name": "a\u{7}b"})),
            StatusCode::BAD_REQUEST,
        ),
        // Expiries: 100 years at most, exactly as the pattern says.
        (
            Method::POST,
            invites.into(),
            Some(json!({"expires": "5214w"})),
            StatusCode::CREATED,
        ),
        (
            Method::POST,
            invites.into(),
            Some(json!({"expires": "5215w"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            invites.into(),
            Some(json!({"expires": "0d"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            invites.into(),
            Some(json!({"expires": " 7d"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            invites.into(),
            Some(json!({"role": "Admin"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            invites.into(),
            Some(json!({"node": node})),
            StatusCode::CREATED,
        ),
        (
            Method::POST,
            invites.into(),
            Some(json!({"node": format!("{node} ")})),
            StatusCode::BAD_REQUEST,
        ),
        // Join waits: 0 to 86400 seconds.
        (
            Method::POST,
            "/v1/join".into(),
            Some(json!({"token": "weft-invite-x", "timeout_secs": 86400.5})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/v1/join".into(),
            Some(json!({"token": "x".repeat(65_537)})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/v1/peers".into(),
            Some(json!({"addr": format!("/dns/{}", "a".repeat(1020))})),
            StatusCode::BAD_REQUEST,
        ),
        // Path names and ids.
        (
            Method::GET,
            format!("/v1/spaces/{}/collections/c/docs/x", "s".repeat(129)),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            format!("/v1/spaces/default/collections/{}/docs/x", "c".repeat(129)),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            format!("/v1/spaces/default/collections/c/docs/{}", "i".repeat(257)),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/v1/spaces/default/collections/c/docs/a%01b".into(),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            format!("/v1/events?collection={}", "c".repeat(129)),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            format!(
                "/v1/spaces/default/collections/c/docs?order={}",
                "o".repeat(257)
            ),
            None,
            StatusCode::BAD_REQUEST,
        ),
        // Conditions: at most 32.
        (
            Method::GET,
            format!(
                "/v1/spaces/default/collections/c/docs?{}",
                vec!["where=a%3D1"; 33].join("&")
            ),
            None,
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (method, path, body, expected) in cases {
        let (status, _, answer) = send(&s, method.clone(), &path, body.clone(), &[]).await;
        assert_eq!(status, expected, "{method} {path} {body:?}: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_at_a_version_the_client_holds_is_304() {
    let s = serve().await;
    let doc = "/v1/spaces/default/collections/c/docs/cached";
    let (_, headers, _) = send(&s, Method::PUT, doc, Some(json!({"n": 1})), &[]).await;
    let v1 = etag_of(&headers);
    let (status, headers, body) = send(&s, Method::GET, doc, None, &[("if-none-match", &v1)]).await;
    assert_eq!((status, body), (StatusCode::NOT_MODIFIED, Value::Null));
    assert_eq!(etag_of(&headers), v1);
    // Another version: the whole document again.
    send(&s, Method::PATCH, doc, Some(json!({"n": 2})), &[]).await;
    let (status, headers, body) = send(&s, Method::GET, doc, None, &[("if-none-match", &v1)]).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"n": 2})));
    assert_ne!(etag_of(&headers), v1);
    let (status, _, _) = send(&s, Method::GET, doc, None, &[("if-none-match", "garbage")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
